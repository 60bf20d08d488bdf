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

from lightning_recipes._tables import format_table, markdown_table

RESULTS = Path(__file__).with_name("results")


def quiet_trainer(**kwargs: Any) -> Trainer:
    """A CPU Trainer without progress bar, logger or checkpoints."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
    }
    defaults.update(kwargs)
    return Trainer(**defaults)


def machine() -> str:
    """One line describing where the figures were measured."""
    return (
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python "
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
