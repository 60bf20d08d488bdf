"""BatchSizeFinder: the CPU refusal, the budget search (power and binsearch), bad input."""

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn

from lightning_recipes import BatchSizeFinder, DigitsDataModule
from lightning_recipes.batch_size import batch_size_finder as finder_module
from lightning_recipes.errors import RecipeConfigError


class Digits(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(64, 10)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(finder: BatchSizeFinder, root: Path) -> DigitsDataModule:
    data = DigitsDataModule(batch_size=4)
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[finder],
    )
    trainer.fit(Digits(), datamodule=data)
    return data


def test_on_the_cpu_it_refuses_to_search_without_a_budget(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="no out-of-memory limit to find"):
        fit(BatchSizeFinder(), tmp_path)


@pytest.mark.parametrize(("mode", "budget", "expected"), [("power", 40, 32), ("binsearch", 24, 22)])
def test_the_cpu_search_keeps_the_largest_batch_under_the_budget(
    mode: str, budget: int, expected: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake peak of 1 MiB per example: ``budget`` MiB allow ``budget`` examples."""
    data_holder: dict[str, Any] = {}
    real_trial = BatchSizeFinder._trial

    def trial(self: BatchSizeFinder, trainer: Trainer, module: LightningModule, size: int) -> int:
        data_holder["size"] = ran = real_trial(self, trainer, module, size)
        return ran

    monkeypatch.setattr(BatchSizeFinder, "_trial", trial)
    monkeypatch.setattr(finder_module, "peak_rss", lambda: data_holder["size"] * 2**20)
    finder = BatchSizeFinder(mode=mode, init_val=16, steps_per_trial=1, max_memory=budget * 2**20)  # type: ignore[arg-type]
    data = fit(finder, tmp_path)
    assert finder.stopped_by == "memory budget"
    assert finder.optimal_batch_size == data.batch_size == expected  # binsearch: 24 less 5 %
    assert sorted(finder.trial_peaks) == (
        [16, 32, 64] if mode == "power" else [16, 24, 25, 26, 28, 32]
    )
    summary = finder.run_summary()
    assert summary.facts["batch size"] == expected
    assert list(tmp_path.iterdir()) == []  # the trials' checkpoints are gone


def test_a_budget_below_the_first_trial_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(finder_module, "peak_rss", lambda: 10 * 2**30)
    with pytest.raises(RecipeConfigError, match="raise max_memory or lower init_val"):
        fit(BatchSizeFinder(init_val=8, steps_per_trial=1, max_memory=2**30), tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "linear"}, "mode"),
        ({"steps_per_trial": 0}, "steps_per_trial"),
        ({"init_val": 0}, "init_val"),
        ({"max_val": 8, "init_val": 16}, "max_val"),
        ({"margin": 1.0}, "margin"),
        ({"batch_arg_name": ""}, "batch_arg_name"),
        ({"max_memory": 1.5}, "max_memory"),
        ({"max_memory": 1000}, "max_memory"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(RecipeConfigError, match=match):
        BatchSizeFinder(**kwargs)
