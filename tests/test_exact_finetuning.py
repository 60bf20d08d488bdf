"""The Freezer's schedule epoch by epoch, and the rate formulas, by hand."""

from collections.abc import Callable

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes.finetuning import Freezer, layer_decay_lrs, spread_lrs, unfrozen_at


class _Net(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)
        )
        self.head = nn.Linear(2, 2)

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return self.head(self.backbone(batch[0])).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Trainable(Callback):
    """Which backbone layers train in each epoch (read at the first batch)."""

    def __init__(self) -> None:
        self.per_epoch: list[list[bool]] = []

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        layers = [pl_module.backbone[i] for i in (0, 2, 4)]
        self.per_epoch.append([layer.weight.requires_grad for layer in layers])


def test_gradual_unfreezing_every_two_epochs_top_group_first(
    make_trainer: Callable[..., Trainer],
) -> None:
    freezer, seen = Freezer(unfreeze="gradual", every_n_epochs=2), _Trainable()
    loader = DataLoader(TensorDataset(torch.ones(2, 2)), batch_size=2)
    make_trainer(max_epochs=7, callbacks=[freezer, seen]).fit(_Net(), loader)
    no, yes = False, True
    assert seen.per_epoch == [
        [no, no, no], [no, no, no],  # epochs 0, 1: the head only
        [no, no, yes], [no, no, yes],  # epochs 2, 3: the top group
        [no, yes, yes], [no, yes, yes],
        [yes, yes, yes],  # epoch 6: everything
    ]  # fmt: skip
    assert [freezer.target(e) for e in range(9)] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert freezer.unfreeze_epochs() == [6, 4, 2]


def test_a_scheduled_count_holds_from_its_epoch_on() -> None:
    schedule = {1: 1, 3: 2, 5: 4}
    assert [unfrozen_at(schedule, e) for e in range(7)] == [0, 1, 1, 2, 2, 4, 4]


def test_rates_by_hand() -> None:
    assert layer_decay_lrs(2.0, 4, 0.5) == [2.0 * 0.5**4, 2.0 * 0.5**3, 2.0 * 0.25, 2.0 * 0.5]
    spread = spread_lrs(1e-3, 1e-1, 5)
    expected = [1e-3 * (100 ** (i / 4)) for i in range(5)]
    assert all(abs(a - b) <= 1e-12 for a, b in zip(spread, expected, strict=True))
    assert spread_lrs(1e-3, 1e-1, 1) == [1e-1]


class _WarmUp(Callback):
    """The rate of the last optimizer group at each step, and the warm-up left after it."""

    def __init__(self) -> None:
        self.rates: list[float] = []
        self.left: list[dict[int, int]] = []

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        self.rates.append(optimizer.param_groups[-1]["lr"])

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: object, batch: object, i: int
    ) -> None:
        freezer = next(c for c in trainer.callbacks if isinstance(c, Freezer))  # type: ignore[attr-defined]
        self.left.append(dict(freezer.state_dict()["warmup"]))


def test_a_warm_up_ramps_over_exactly_warmup_steps_steps(
    make_trainer: Callable[..., Trainer],
) -> None:
    freezer, seen = Freezer(unfreeze={1: 3}, warmup_steps=3), _WarmUp()
    loader = DataLoader(TensorDataset(torch.ones(10, 2)), batch_size=2)
    make_trainer(max_epochs=2, callbacks=[freezer, seen]).fit(_Net(), loader)
    unfrozen = seen.rates[5:]  # epoch 1: the three backbone groups join at step 5
    assert unfrozen[:3] == [0.1 * 1 / 4, 0.1 * 2 / 4, 0.1 * 3 / 4]
    assert unfrozen[3:] == [0.1, 0.1]
    assert [len(left) for left in seen.left[5:]] == [3, 3, 0, 0, 0]  # 3 groups; none after 3
