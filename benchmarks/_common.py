"""Shared helpers for benchmark scripts: quiet trainers and result tables."""

import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from lightning_recipes._core.tables import format_table, markdown_table

RESULTS = Path(__file__).with_name("results")


def quiet_args(**kwargs: Any) -> dict[str, Any]:
    """The arguments of `quiet_trainer` (e.g. for a LightningCLI config's ``trainer``)."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
    }
    defaults.update(kwargs)
    return defaults


def quiet_trainer(**kwargs: Any) -> Trainer:
    """A CPU Trainer without progress bar, logger or checkpoints."""
    return Trainer(**quiet_args(**kwargs))


def machine() -> str:
    """One line describing where the figures were measured."""
    threads = torch.get_num_threads()
    return (
        f"{platform.machine()}, {threads} torch thread{'' if threads == 1 else 's'}, Python "
        f"{sys.version.split()[0]}, torch {torch.__version__}, lightning {lightning.__version__}"
    )


def publish(
    name: str,
    title: str,
    headers: list[str],
    rows: list[list[Any]],
    notes: str,
    command: str | None = None,
) -> Path:
    """Print the table and write it, with how to reproduce it, to results/<name>.md.

    ``command`` replaces the default reproduce line (a script run in another venv).
    """
    print(format_table(headers, rows))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    path.write_text(
        f"# {title}\n\n{markdown_table(headers, rows)}\n{notes.strip()}\n\n"
        f"Measured {stamp} on {machine()}.\n"
        + (
            f"Reproduce: `{command}`.\n"
            if command
            else f"Reproduce: `.venv/bin/python benchmarks/{name}.py` (or `make bench`).\n"
        )
    )
    print(f"written to {path}")
    return path


def mean_std(values: list[float], sign: bool = False) -> str:
    """``mean ± std`` over seeds (std 0 for one value), signed for paired differences."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):{'+' if sign else ''}.3f} ± {sd:.3f}"


def timed_fit(trainer: Trainer, model: LightningModule, datamodule: LightningDataModule) -> float:
    """``trainer.fit`` and its wall time in seconds."""
    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    return time.perf_counter() - start


def test_log_probs(model: LightningModule, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``model`` on ``data.test_dataset`` (whole split), and its targets."""
    assert data.test_dataset is not None
    model.eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(data.test_dataset.features), -1)
    return logp, data.test_dataset.targets


def accuracy_nll(logp: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean negative log-likelihood of the true class."""
    acc = float((logp.argmax(-1) == targets).float().mean())
    nll = float(-logp[torch.arange(len(targets)), targets].mean())
    return acc, nll


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict, for ``torch.equal`` comparisons."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts are equal bit for bit, tensor by tensor."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def paired_verdict(ours: list[float], peer: list[float], higher_is_better: bool = True) -> str:
    """``level``, ``ahead`` or ``behind``: the paired mean difference against twice its SEM.

    A difference within two standard errors of the mean (about a 95% interval over seeds) is
    called level, so a zero effect is never called a win; so is one below 1e-5 of the values'
    size (float rounding: two implementations of the same sums can differ by a few ulps on
    every seed alike, a std of almost 0 that would otherwise make 1e-6 "ahead").
    """
    diffs = [a - b for a, b in zip(ours, peer, strict=True)]
    mean = statistics.mean(diffs)
    sem = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    rounding = 1e-5 * max(abs(v) for v in [*ours, *peer])
    if abs(mean) <= max(2 * sem, rounding):
        return "level"
    return "ahead" if (mean > 0) == higher_is_better else "behind"


def publish_peers(
    name: str, rows: list[dict[str, Any]], command: str | None = None, own_figure: bool = False
) -> Path:
    """Write the machine-readable summary of one ``peers_*`` benchmark to results/<name>.json.

    Each row is one comparison, per-seed values paired by position::

        {"recipe": "MixUp(0.4)", "peer": "timm Mixup + SoftTargetCrossEntropy",
         "metric": "test accuracy", "higher_is_better": True,
         "ours": [...], "theirs": [...],          # one value per seed
         "time_ratio": [...] or None,             # ours / peer fit time per seed
         "note": "adversarial examples identical"}

    ``benchmarks/peers_report.py`` builds ``results/peers.md``'s summary table and the recipe
    pages' figures from these files (not the figure of a script that draws its own:
    ``own_figure``).
    """
    import json

    RESULTS.mkdir(exist_ok=True)
    for row in rows:
        if row.get("theirs") is not None:
            row.setdefault(
                "verdict",
                paired_verdict(row["ours"], row["theirs"], row.get("higher_is_better", True)),
            )
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "script": f"benchmarks/{name}.py",
                "own_figure": own_figure,
                "command": command or f".venv/bin/python benchmarks/{name}.py",
                "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                "machine": machine(),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    return path
