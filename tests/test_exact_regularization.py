"""Exact behaviour of initialisation and penalties, against the formulas by hand."""

from collections.abc import Callable
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes.initialization import WeightInit, lsuv_


def test_lsuv_variance_is_about_the_mean_and_matches_the_formula() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(6, 5)
    with torch.no_grad():
        layer.bias.fill_(3.0)  # a mean far from 0: E[x^2] would be about 10
    x = torch.randn(512, 6) * 4
    result = lsuv_(lambda: layer(x), [("layer", layer)], tol=0.01, max_iter=20)
    with torch.no_grad():
        out = layer(x).double()
    by_hand = float(((out - out.mean()) ** 2).mean())
    assert result["layer"] == pytest.approx(by_hand, rel=1e-6)
    assert abs(by_hand - 1) < 0.01
    assert float(layer.bias.detach()[0]) == 3.0  # only the weight is scaled


def test_lsuv_leaves_a_layer_with_zero_output_variance_alone() -> None:
    layer = nn.Linear(3, 2)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    result = lsuv_(lambda: layer(torch.randn(8, 3)), [("layer", layer)])
    assert result == {"layer": 0.0}
    assert bool(torch.all(layer.weight == 0))  # not divided by zero


class _BatchNormDropoutNet(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class _AtFirstBatch(Callback):
    """What LSUV left: the BatchNorm buffers and the eval-mode output variance."""

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self.tracked = -1
        self.running_mean = torch.empty(0)
        self.variance = 0.0

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx:
            return
        norm = pl_module.net[1]
        self.tracked = int(norm.num_batches_tracked)
        self.running_mean = norm.running_mean.clone()
        pl_module.eval()
        with torch.no_grad():
            self.variance = float(pl_module(self.x).double().var(unbiased=False))
        pl_module.train()


def test_lsuv_measures_in_eval_mode_and_leaves_batchnorm_statistics_alone(
    make_trainer: Callable[..., Trainer],
) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=generator) * 3
    loader = DataLoader(TensorDataset(x, torch.arange(256) % 4), batch_size=256)
    init, seen = WeightInit("lsuv", lsuv_tol=0.05), _AtFirstBatch(x)
    torch.manual_seed(0)
    make_trainer(max_steps=1, callbacks=[init, seen]).fit(_BatchNormDropoutNet(), loader)
    assert seen.tracked == 0  # no forward in training mode before the first step
    assert float(seen.running_mean.abs().max()) == 0.0
    # The variance LSUV reached is the one the model gives at inference (dropout off).
    assert abs(init.variances["net.4"] - 1) < 0.05
    assert abs(seen.variance - 1) < 0.05, seen.variance
