"""Shared helpers for benchmark scripts: quiet trainers and result tables."""

import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning
import torch
from lightning.pytorch import Trainer

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
