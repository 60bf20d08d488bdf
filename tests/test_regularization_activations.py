"""ActivationMonitor: the statistics, hooks only on monitored steps, an observer, the figure."""

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from lightning_recipes.activations import ActivationMonitor, activation_stats, summarize
from lightning_recipes.errors import RecipeConfigError, RecipeWarning
from tests.registry import assert_same, fit, state_of


def test_stats_math() -> None:
    out = torch.tensor([[0.0, 1.0, 3.0], [0.0, 2.0, -1.0]])
    stats = summarize(activation_stats(out, "relu", bins=4, hist_max=4.0), "relu")
    assert stats["dead"] == pytest.approx(1 / 3)
    assert stats["mean"] == pytest.approx(float(out.mean()))
    assert stats["std"] == pytest.approx(float(out.std(unbiased=False)))
    assert math.isnan(stats["saturated"])
    hist = activation_stats(out, "relu", bins=4, hist_max=4.0)[6:]
    assert hist.tolist() == [3.0, 1.0, 1.0, 1.0]  # -1 clamped into the first bin
    # Tanh: unit 0 sits at +-1 (saturated), unit 1 does not; conv outputs: units = channels.
    tanh = torch.tensor([[0.999, 0.1], [-0.995, 0.9999]])
    assert summarize(activation_stats(tanh, "tanh"), "tanh")["saturated"] == 0.5
    conv = torch.zeros(2, 3, 4, 4)
    conv[:, 0] = 1.0
    assert summarize(activation_stats(conv, "relu"), "relu")["dead"] == pytest.approx(2 / 3)
    # Sums from two batches (or ranks) add up: moments and histogram as for the joint
    # batch; dead / saturated fractions become the average over the parts.
    a, b = torch.randn(8, 5), torch.randn(8, 5)
    both = activation_stats(a, "other") + activation_stats(b, "other")
    joint = activation_stats(torch.cat([a, b]), "other")
    keep = [0, 1, 2, *range(6, len(joint))]
    assert torch.allclose(both[keep], joint[keep])


class CountHooks(Callback):
    """Count forward hooks on the module at every batch's start and end of forward."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor
    ) -> None:
        self.counts.append(sum(len(m._forward_hooks) for m in pl_module.modules()))


def test_hooks_only_on_monitored_steps_and_training_untouched(tmp_path: Path) -> None:
    monitor, counter = ActivationMonitor(log_every_n_steps=4, plot=False), CountHooks()
    _, watched = fit([monitor, counter], tmp_path / "a", dropout=0.3)
    _, plain = fit([], tmp_path / "b", dropout=0.3)
    assert_same(state_of(watched), state_of(plain))  # bitwise: an observer
    # 9 steps (3 epochs x 3 batches); monitored: 0, 4, 8; 2 ReLUs hooked then, none else.
    assert monitor.steps == [0, 4, 8]
    assert counter.counts == [2 if s in (0, 4, 8) else 0 for s in range(9)]
    assert sum(len(m._forward_hooks) for m in watched.modules()) == 0
    names = [n for n, _, _ in monitor._layers]
    assert names == ["backbone.2", "backbone.5"]
    for _, record in monitor.history:
        for stats in record.values():
            assert 0 <= stats["dead"] <= 1
            assert stats["std"] > 0
    assert len(monitor.histograms["backbone.2"]) == 3


class DyingNet(LightningModule):
    """A ReLU layer whose pre-activations are all negative, and a saturated tanh."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 16)
        self.relu = nn.ReLU()
        self.big = nn.Linear(16, 16)
        self.tanh = nn.Tanh()
        self.head = nn.Linear(32, 10)
        with torch.no_grad():
            self.lin.bias.fill_(-100.0)
            self.big.weight.mul_(100.0)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        h = self.relu(self.lin(x))
        t = self.tanh(self.big(x[:, :16] * 10))
        return nn.functional.cross_entropy(self.head(torch.cat([h, t], 1)), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_warns_once_for_dead_and_saturated_layers_and_draws(tmp_path: Path) -> None:
    from lightning_recipes.data import DigitsDataModule

    monitor = ActivationMonitor(log_every_n_steps=1)
    trainer = Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[monitor],
        logger=TensorBoardLogger(tmp_path),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(DyingNet(), DigitsDataModule(batch_size=32))
    ours = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
    assert len(ours) == 2, ours
    assert any("'relu'" in m and "dead" in m for m in ours)
    assert any("'tanh'" in m and "saturated" in m for m in ours)
    assert monitor.warned == {"relu": "dead", "tanh": "saturated"}
    assert monitor.figure_path is not None
    assert monitor.figure_path.exists()
    summary = monitor.run_summary()
    assert summary.facts["dead layers"] == ["relu"]
    assert summary.facts["monitored steps"] == 4


def test_nothing_to_watch_fails_at_fit_start(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="types"):
        fit([ActivationMonitor(types=["Sigmoid"], plot=False)], tmp_path)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"log_every_n_steps": 0}, "log_every_n_steps"),
    ({"log_every_n_steps": 1.5}, "log_every_n_steps"),
    ({"types": "ReLU"}, "types"),
    ({"types": []}, "types"),
    ({"names": "relu"}, "names"),
    ({"exclude": [None]}, "exclude"),
    ({"bins": 0}, "bins"),
    ({"bins": True}, "bins"),
    ({"hist_max": 0}, "hist_max"),
    ({"hist_max": float("inf")}, "hist_max"),
    ({"dead_threshold": 0}, "dead_threshold"),
    ({"dead_threshold": 1.5}, "dead_threshold"),
    ({"saturated_threshold": -0.1}, "saturated_threshold"),
    ({"saturation_eps": 0.5}, "saturation_eps"),
    ({"plot": "yes"}, "plot"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD)
def test_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        ActivationMonitor(**kwargs)


def test_every_n_steps_is_the_deprecated_name_of_log_every_n_steps() -> None:
    with pytest.warns(DeprecationWarning, match=r"pass log_every_n_steps="):
        monitor = ActivationMonitor(every_n_steps=3, plot=False)
    assert monitor.log_every_n_steps == 3
    with pytest.raises(RecipeConfigError, match="not both"):
        ActivationMonitor(log_every_n_steps=2, every_n_steps=3, plot=False)
