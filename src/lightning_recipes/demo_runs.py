"""Where a demo run goes: its own version folder, its logger, and what the run returns."""

from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from lightning_recipes._core.optional import require
from lightning_recipes.report import RunReport

__all__ = ["DemoResult", "new_version_dir"]


@dataclass
class DemoResult:
    """What `run_demo` produced.

    Attributes:
        run_dir: This run's own folder (``<out_dir>/<name>/version_<n>``) holding the
            report, metrics, figures and logs.
        report: The measured figures.
        files: The report files written, by kind.
        seconds: Wall-clock time of the whole run.
    """

    run_dir: Path
    report: RunReport
    files: dict[str, Path]
    seconds: float


def new_version_dir(folder: Path) -> Path:
    """Create and return ``folder/version_<n>``, one past the highest version already there.

    Lightning's logger convention: every run gets its own folder, so a second run never
    mixes its logs, checkpoints or report with the first one's.

    Args:
        folder: The folder holding the versions (created if needed).

    Returns:
        The new, empty version folder.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> [new_version_dir(root).name for _ in range(2)]
        ['version_0', 'version_1']
    """
    folder.mkdir(parents=True, exist_ok=True)
    taken = [
        int(entry.name.removeprefix("version_"))
        for entry in folder.iterdir()
        if entry.name.startswith("version_") and entry.name.removeprefix("version_").isdigit()
    ]
    version = max(taken, default=-1) + 1
    while True:
        candidate = folder / f"version_{version}"
        try:
            candidate.mkdir()  # fails if a concurrent run took it: try the next one
        except FileExistsError:
            version += 1
            continue
        return candidate


def _logger(run_dir: Path) -> Logger:
    try:
        require("tensorboard", extra="demo", feature="The demo's TensorBoard log")
    except ImportError:
        return CSVLogger(save_dir=run_dir, name="", version="logs")
    return TensorBoardLogger(save_dir=run_dir, name="", version="logs", default_hp_metric=False)
