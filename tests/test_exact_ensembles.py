"""Exact values of the ensembles' math, against the formulas written by hand."""

from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes.averaging import WeightAverage


class _Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(3, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.5)


class _AfterEachStep(Callback):
    def __init__(self) -> None:
        self.weights: list[Tensor] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self.weights.append(pl_module.net.weight.detach().clone())


def _loader() -> DataLoader[tuple[Tensor, ...]]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(20, 3, generator=generator)
    y = torch.randint(0, 2, (20,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=4)


def test_ema_is_decay_times_the_average_plus_one_minus_decay_times_the_weights(
    make_trainer: Callable[..., Trainer],
) -> None:
    decay = 0.7
    record = _AfterEachStep()
    model = _Tiny()
    make_trainer(callbacks=[record, WeightAverage("ema", decay=decay)]).fit(model, _loader())
    assert len(record.weights) == 5
    expected = record.weights[0]  # the first update copies the weights
    for weights in record.weights[1:]:
        expected = decay * expected + (1 - decay) * weights
    torch.testing.assert_close(model.net.weight.detach(), expected)
    # ... and not the live weights, nor the swapped formula.
    assert not torch.allclose(model.net.weight, record.weights[-1])


def test_swa_is_the_equal_weight_mean_of_the_epoch_end_weights(
    make_trainer: Callable[..., Trainer],
) -> None:
    record = _AfterEachStep()
    model = _Tiny()
    trainer = make_trainer(max_epochs=3, callbacks=[record, WeightAverage("swa", start_epoch=1)])
    trainer.fit(model, _loader())
    ends = [record.weights[4], record.weights[9], record.weights[14]]  # 5 steps an epoch
    torch.testing.assert_close(model.net.weight.detach(), (ends[1] + ends[2]) / 2)


class _WithNorm(_Tiny):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


class _BuffersAfterEachStep(Callback):
    def __init__(self) -> None:
        self.tracked: list[int] = []
        self.means: list[Tensor] = []

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        norm = pl_module.net[1]
        self.tracked.append(int(norm.num_batches_tracked))
        self.means.append(norm.running_mean.clone())


def test_ema_averages_the_buffers_float_and_integer_by_the_same_formula(
    make_trainer: Callable[..., Trainer],
) -> None:
    decay = 0.75
    record, model = _BuffersAfterEachStep(), _WithNorm()
    average = WeightAverage("ema", decay=decay, update_bn=False)
    make_trainer(callbacks=[record, average]).fit(model, _loader())
    assert record.tracked == [1, 2, 3, 4, 5]
    tracked, mean = record.tracked[0], record.means[0]
    for count, current in zip(record.tracked[1:], record.means[1:], strict=True):
        tracked = int(tracked * decay + count * (1 - decay))  # an integer buffer truncates
        mean = decay * mean + (1 - decay) * current
    assert int(model.net[1].num_batches_tracked) == tracked == 2
    torch.testing.assert_close(model.net[1].running_mean, mean)
