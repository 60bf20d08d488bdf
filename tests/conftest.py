"""Shared fixtures: quiet single-process Trainers and the DDP harness."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch import Trainer

from tests.ddp.harness import run_ddp


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., Trainer]:
    """Build a quiet CPU Trainer writing under tmp_path; keyword arguments override."""

    def build(**kwargs: Any) -> Trainer:
        defaults: dict[str, Any] = {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "logger": False,
            "default_root_dir": tmp_path,
        }
        defaults.update(kwargs)
        return Trainer(**defaults)

    return build


@pytest.fixture
def ddp(tmp_path: Path) -> Callable[..., list[dict[str, Any]]]:
    """Run a case of tests/ddp/cases.py on 2 CPU processes; returns each rank's payload."""

    def run(case: str, **params: Any) -> list[dict[str, Any]]:
        return run_ddp(case, tmp_path, **params)

    return run
