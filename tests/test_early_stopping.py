"""EarlyStopping in a Trainer: Lightning's behaviour, best weights, resume, bad input."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import EarlyStopping, MissingMetricError, RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier
from tests.ddp.cases import ShakeFrom

MakeTrainer = Callable[..., Trainer]


class Scripted(LightningModule):
    """Logs a scripted validation value per epoch (and trains a dummy layer)."""

    def __init__(self, values: list[float], name: str = "val_loss") -> None:
        super().__init__()
        self.values = values
        self.name = name
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.log("train_loss", 1.0)
        return self.layer(batch[0]).sum()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log(self.name, float(self.values[self.current_epoch]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader() -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=4)


def fit_scripted(
    make_trainer: MakeTrainer, callback: Callback, values: list[float], **trainer_kwargs: Any
) -> Trainer:
    trainer = make_trainer(max_epochs=len(values), callbacks=[callback], **trainer_kwargs)
    trainer.fit(Scripted(values), train_dataloaders=loader(), val_dataloaders=loader())
    return trainer


def fit_scripted_named(
    make_trainer: MakeTrainer, callback: Callback, values: list[float]
) -> Trainer:
    trainer = make_trainer(max_epochs=len(values), callbacks=[callback])
    trainer.fit(Scripted(values, "val_acc"), train_dataloaders=loader(), val_dataloaders=loader())
    return trainer


# ------------------------------------------------ Lightning's behaviour, same results

SCENARIOS: list[tuple[list[float], dict[str, Any]]] = [
    ([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9], {"patience": 3}),  # patience
    ([5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9], {"patience": 1}),
    ([1.0, 0.96, 0.92, 0.9, 0.88, 0.87], {"patience": 2, "min_delta": 0.05}),  # min_delta
    ([0.1, 0.5, 0.7, 0.6, 0.65, 0.66, 0.7], {"patience": 2, "mode": "max"}),  # mode
    ([3, 2, 1, 0.5, 0.4], {"stopping_threshold": 0.6}),  # threshold (best differs: below)
    ([1, 2, 3, 9, 1], {"divergence_threshold": 5, "patience": 10}),  # divergence
    ([1, 0.5, float("nan"), 0.1], {"patience": 10}),  # non-finite
    ([1, 0.5, float("nan"), 0.4, 0.3], {"patience": 2, "check_finite": False}),
]


@pytest.mark.parametrize(("values", "kwargs"), SCENARIOS)
def test_behaves_like_lightnings_early_stopping(
    make_trainer: MakeTrainer, values: list[float], kwargs: dict[str, Any]
) -> None:
    ours, theirs = EarlyStopping("val_loss", **kwargs), LightningEarlyStopping("val_loss", **kwargs)
    ours_trainer = fit_scripted(make_trainer, ours, values)
    theirs_trainer = fit_scripted(make_trainer, theirs, values)
    assert ours_trainer.current_epoch == theirs_trainer.current_epoch
    assert ours.stopped_epoch == theirs.stopped_epoch
    assert ours.wait_count == theirs.wait_count
    assert ours.stopping_reason == theirs.stopping_reason
    assert ours.state_key == theirs.state_key
    if "stopping_threshold" in kwargs:  # the documented difference: the last check is best
        assert float(ours.best_score) == pytest.approx(0.5)
        assert float(theirs.best_score) == pytest.approx(1.0)
    else:
        assert float(ours.best_score) == pytest.approx(float(theirs.best_score))


@pytest.mark.parametrize("check_on_train_epoch_end", [True, False])
def test_checks_after_validation_or_at_train_epoch_end_like_lightning(
    make_trainer: MakeTrainer, check_on_train_epoch_end: bool
) -> None:
    values = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9]
    # strict=False: with validation every other epoch, checks at train epoch end find no
    # val_loss on odd epochs and skip them.
    kwargs = {"patience": 2, "check_on_train_epoch_end": check_on_train_epoch_end, "strict": False}
    ours, theirs = EarlyStopping("val_loss", **kwargs), LightningEarlyStopping("val_loss", **kwargs)
    fit_scripted(make_trainer, ours, values, check_val_every_n_epoch=2)
    fit_scripted(make_trainer, theirs, values, check_val_every_n_epoch=2)
    assert (ours.stopped_epoch, ours.wait_count) == (theirs.stopped_epoch, theirs.wait_count)


def test_state_dict_round_trips_and_accepts_lightnings_state(make_trainer: MakeTrainer) -> None:
    ours = EarlyStopping("val_loss", patience=5)
    fit_scripted(make_trainer, ours, [3, 2, 2.5, 2.6])
    state = ours.state_dict()
    copy = EarlyStopping("val_loss", patience=5)
    copy.load_state_dict(state)
    assert copy.state_dict().keys() == state.keys()
    assert (copy.wait_count, float(copy.best_score), copy.best_epoch) == (2, 2.0, 1)
    theirs = LightningEarlyStopping("val_loss", patience=5)
    fit_scripted(make_trainer, theirs, [3, 2, 2.5, 2.6])
    from_lightning = EarlyStopping("val_loss", patience=5)
    from_lightning.load_state_dict(theirs.state_dict())
    assert (from_lightning.wait_count, float(from_lightning.best_score)) == (2, 2.0)


# ------------------------------------------------ what Lightning's class cannot do


class Snapshots(Callback):
    """The weights after each validation."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.by_epoch[trainer.current_epoch] = {
                k: v.detach().clone() for k, v in pl_module.state_dict().items()
            }


def classifier() -> Classifier:
    seed_everything(0)
    return Classifier(MLP(64, [32]), num_classes=10, lr=3e-3)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_restores_the_best_weights_and_their_val_loss(
    make_trainer: MakeTrainer, with_checkpoint: bool, tmp_path: Path
) -> None:
    stopper = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    snapshots = Snapshots()
    callbacks: list[Callback] = [ShakeFrom(3), snapshots, stopper]
    if with_checkpoint:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", mode="min"))
    trainer = make_trainer(
        max_epochs=20,
        limit_train_batches=6,
        callbacks=callbacks,
        enable_checkpointing=with_checkpoint,
    )
    model = classifier()
    data = DigitsDataModule(batch_size=64)
    trainer.fit(model, data)
    assert trainer.current_epoch < 20  # it did stop early
    best = stopper.best_epoch
    assert best is not None
    assert best < trainer.current_epoch - 1  # the best is not the last epoch
    assert_same_weights(model.state_dict(), snapshots.by_epoch[best])
    recomputed = trainer.validate(model, data, verbose=False)[0]["val_loss"]
    assert recomputed == pytest.approx(float(stopper.best_score), rel=1e-6)
    if with_checkpoint:
        assert stopper.restored_from == trainer.checkpoint_callback.best_model_path  # type: ignore[union-attr]
        assert stopper.state_dict()["best_weights"] is None  # no second copy in memory
    else:
        assert stopper.restored_from == "memory"


def test_without_restore_the_last_weights_stay(make_trainer: MakeTrainer) -> None:
    stopper = EarlyStopping("val_loss", patience=2)
    snapshots = Snapshots()
    trainer = make_trainer(
        max_epochs=20, limit_train_batches=6, callbacks=[ShakeFrom(3), snapshots, stopper]
    )
    model = classifier()
    trainer.fit(model, DigitsDataModule(batch_size=64))
    assert_same_weights(model.state_dict(), snapshots.by_epoch[trainer.current_epoch - 1])
    assert stopper.restored_from is None


def test_restores_also_when_max_epochs_ends_the_run(make_trainer: MakeTrainer) -> None:
    stopper = EarlyStopping("val_loss", patience=50, restore_best_weights="copy")
    snapshots = Snapshots()
    trainer = make_trainer(
        max_epochs=6, limit_train_batches=6, callbacks=[ShakeFrom(3), snapshots, stopper]
    )
    model = classifier()
    trainer.fit(model, DigitsDataModule(batch_size=64))
    assert stopper.stopped_epoch == 0  # not stopped early
    assert stopper.best_epoch is not None
    assert stopper.best_epoch < 5
    assert_same_weights(model.state_dict(), snapshots.by_epoch[stopper.best_epoch])


def test_a_run_resumed_after_the_best_epoch_restores_the_same_weights(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    def run(max_epochs: int, ckpt: Path | None = None) -> tuple[Trainer, EarlyStopping, Classifier]:
        stopper = EarlyStopping("val_loss", patience=3, restore_best_weights=True)
        trainer = make_trainer(
            max_epochs=max_epochs, limit_train_batches=6, callbacks=[ShakeFrom(3), stopper]
        )
        model = classifier()
        trainer.fit(model, DigitsDataModule(batch_size=64), ckpt_path=ckpt)
        return trainer, stopper, model

    _, full_stopper, full_model = run(20)
    interrupted, interrupted_stopper, _ = run(5)
    assert interrupted_stopper.best_epoch == full_stopper.best_epoch  # interrupted after best
    ckpt = tmp_path / "interrupted.ckpt"
    interrupted.save_checkpoint(ckpt)
    _, resumed_stopper, resumed_model = run(20, ckpt)
    assert resumed_stopper.best_epoch == full_stopper.best_epoch
    assert resumed_stopper.stopped_epoch == full_stopper.stopped_epoch
    assert_same_weights(resumed_model.state_dict(), full_model.state_dict())


def test_relative_min_delta_in_a_trainer(make_trainer: MakeTrainer) -> None:
    # Each check improves by 0.5% (< 2% relative) after the first: patience runs out.
    stopper = EarlyStopping("val_loss", patience=2, min_delta=0.02, min_delta_mode="relative")
    fit_scripted(make_trainer, stopper, [1.0, 0.995, 0.99, 0.985, 0.98])
    assert (stopper.stopped_epoch, stopper.best_epoch, float(stopper.best_score)) == (2, 0, 1.0)


def test_baseline_stops_a_run_that_never_beats_it(make_trainer: MakeTrainer) -> None:
    stopper = EarlyStopping("val_acc", mode="max", patience=3, baseline=0.9,
                            restore_best_weights=True)  # fmt: skip
    with pytest.warns(UserWarning, match="never improved on the baseline 0.9"):
        trainer = fit_scripted_named(make_trainer, stopper, [0.5, 0.6, 0.7, 0.8, 0.95])
    assert stopper.stopped_epoch == 2
    assert trainer.current_epoch == 3
    assert stopper.best_epoch is None


def test_start_from_epoch_ignores_the_warm_up(make_trainer: MakeTrainer) -> None:
    values = [0.1, 0.2, 0.15, 0.3, 0.35, 0.4, 0.2, 0.2, 0.2]
    early = EarlyStopping("val_acc", mode="auto", patience=1)
    fit_scripted_named(make_trainer, early, values)
    assert early.stopped_epoch == 2  # the dip during warm-up stops a plain run
    warm = EarlyStopping("val_acc", mode="auto", patience=1, start_from_epoch=3)
    fit_scripted_named(make_trainer, warm, values)
    assert (warm.stopped_epoch, warm.best_epoch) == (6, 5)


def test_missing_metric_lists_the_logged_ones(make_trainer: MakeTrainer) -> None:
    with pytest.raises(MissingMetricError, match=r"'val_los'.*Logged metrics: 'train_loss', "):
        fit_scripted(make_trainer, EarlyStopping("val_los"), [1.0, 2.0])
    with pytest.warns(UserWarning, match="strict=False: the check is skipped") as caught:
        fit_scripted(make_trainer, EarlyStopping("val_los", strict=False), [1.0, 2.0, 3.0])
    assert sum("val_los" in str(w.message) for w in caught) == 1  # once, not every epoch


def test_checkpoint_restore_refuses_without_a_matching_checkpoint(
    make_trainer: MakeTrainer,
) -> None:
    stopper = EarlyStopping("val_loss", restore_best_weights="checkpoint")
    with pytest.raises(RecipeConfigError, match="No ModelCheckpoint saves 'val_loss'"):
        fit_scripted(make_trainer, stopper, [1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"monitor": ""}, "monitor"),
        ({"mode": "lower"}, "mode"),
        ({"monitor": "val_metric", "mode": "auto"}, "mode"),
        ({"patience": -1}, "patience"),
        ({"min_delta": -0.01}, "min_delta"),
        ({"min_delta_mode": "percent"}, "min_delta_mode"),
        ({"restore_best_weights": "disk"}, "restore_best_weights"),
        ({"start_from_epoch": -1}, "start_from_epoch"),
        ({"stopping_threshold": 1.0, "divergence_threshold": 0.5}, "stopping_threshold"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=name):
        EarlyStopping(**{"monitor": "val_loss", **kwargs})
