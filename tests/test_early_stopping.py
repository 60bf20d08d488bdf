"""EarlyStopping in a Trainer: Lightning's behaviour, best weights, resume, bad input."""

import warnings
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
from lightning_recipes.errors import RecipeWarning
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
    assert ours.stopping_reason_message == theirs.stopping_reason_message
    assert float(ours.best_score) == pytest.approx(float(theirs.best_score), nan_ok=True)


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
    with pytest.raises(RecipeConfigError, match=r"restore_best_weights.*no ModelCheckpoint"):
        fit_scripted(make_trainer, stopper, [1.0, 2.0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"monitor": ""}, "monitor"),
        ({"monitor": 123}, "monitor"),
        ({"mode": "maximum"}, "mode"),
        ({"patience": 1.5}, "patience"),
        ({"min_delta": "abc"}, "min_delta"),
        ({"baseline": "abc"}, "baseline"),
        ({"baseline": float("nan")}, "baseline"),
        ({"restore_best_weights": "foo"}, "restore_best_weights"),
        ({"restore_best_weights": 1}, "restore_best_weights"),
        ({"stopping_threshold": "0.5"}, "stopping_threshold"),
        ({"strict": "yes"}, "strict"),
        ({"check_finite": "no"}, "check_finite"),
        ({"check_on_train_epoch_end": "x"}, "check_on_train_epoch_end"),
        ({"start_from_epoch": 1.0}, "start_from_epoch"),
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


def test_a_mode_that_contradicts_the_metric_name_is_warned_about() -> None:
    # Lightning's default mode "min" on an accuracy stops when accuracy stops *falling*.
    with pytest.warns(RecipeWarning, match=r"monitor='val_acc', mode='min'.*mode='max'"):
        assert EarlyStopping("val_acc").mode == "min"  # the default stays Lightning's
    with pytest.warns(RecipeWarning, match=r"monitor='val_loss', mode='max'.*mode='min'"):
        EarlyStopping("val_loss", mode="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        assert EarlyStopping("val_acc", mode="auto").mode == "max"
        assert EarlyStopping("val_acc", mode="max").mode == "max"
        assert EarlyStopping("val_loss").mode == "min"
        assert EarlyStopping("train_metric").mode == "min"  # a name it cannot read: silent


def test_the_mode_error_also_reads_like_lightnings() -> None:
    with pytest.raises(RecipeConfigError, match=r"`mode` can be .* got unknown_option"):
        EarlyStopping("val_loss", mode="unknown_option")  # type: ignore[arg-type]


# ------------------------------------------------ a Lightning EarlyStopping, for the Trainer


class LogsAtTrainEpochEnd(Scripted):
    """Logs the scripted value in the module's own on_train_epoch_end (a common pattern)."""

    def on_train_epoch_end(self) -> None:
        self.log("train_metric", float(self.values[self.current_epoch]))


def test_a_metric_logged_in_the_modules_on_train_epoch_end_is_seen_like_lightnings(
    make_trainer: MakeTrainer,
) -> None:
    values = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9]
    kwargs: dict[str, Any] = {"patience": 2, "check_on_train_epoch_end": True}
    ours = EarlyStopping("train_metric", **kwargs)
    theirs = LightningEarlyStopping("train_metric", **kwargs)
    results = []
    for stopper in (ours, theirs):
        trainer = make_trainer(max_epochs=len(values), callbacks=[stopper])
        trainer.fit(LogsAtTrainEpochEnd(values), train_dataloaders=loader())
        assert trainer.early_stopping_callback is stopper
        results.append((trainer.current_epoch, stopper.stopped_epoch, stopper.wait_count,
                        float(stopper.best_score), stopper.stopping_reason))  # fmt: skip
    assert results[0] == results[1]
    assert results[0][:4] == (5, 4, 2, 3.0)
    assert isinstance(ours, LightningEarlyStopping)


def test_resumes_from_a_checkpoint_written_by_lightnings_early_stopping(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    values = [5, 4, 3, 3.5, 3.6, 3.7, 3.8, 3.9]
    full = LightningEarlyStopping("val_loss", patience=3)
    fit_scripted(make_trainer, full, values)
    interrupted = make_trainer(
        max_epochs=4, callbacks=[LightningEarlyStopping("val_loss", patience=3)]
    )
    interrupted.fit(Scripted(values), train_dataloaders=loader(), val_dataloaders=loader())
    interrupted.save_checkpoint(tmp_path / "lightning.ckpt")
    ours = EarlyStopping("val_loss", patience=3)
    resumed = make_trainer(max_epochs=len(values), callbacks=[ours])
    resumed.fit(Scripted(values), train_dataloaders=loader(), val_dataloaders=loader(),
                ckpt_path=tmp_path / "lightning.ckpt")  # fmt: skip
    assert (ours.stopped_epoch, ours.wait_count, float(ours.best_score)) == (
        full.stopped_epoch, full.wait_count, float(full.best_score),
    )  # fmt: skip


# ------------------------------------------------ start_from_epoch: the boundary is epoch k


@pytest.mark.parametrize(
    ("start", "expected"),
    [(0, (2, 0)), (3, (5, 3))],  # epoch 2 (= k - 1) would be the best and stop at 4
)
def test_start_from_epoch_counts_epochs_from_zero(
    make_trainer: MakeTrainer, start: int, expected: tuple[int, int]
) -> None:
    # Checks from epoch 3 on: 0.5 is the best, 0.9 and 0.95 exhaust patience -> stop at 5.
    # Counting epoch 2 (0.1) stops at 4 with best 2; skipping epoch 3 too never stops.
    values = [5, 5, 0.1, 0.5, 0.9, 0.95, 0.6, 0.7, 0.8]
    if start == 0:
        values = [0.5, 0.9, 0.95, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01]
    stopper = EarlyStopping("val_loss", patience=2, start_from_epoch=start)
    fit_scripted(make_trainer, stopper, values)
    assert (stopper.stopped_epoch, stopper.best_epoch) == expected


def test_a_missing_metric_is_reported_at_the_first_check_even_during_warm_up(
    make_trainer: MakeTrainer,
) -> None:
    class Epoch(Callback):
        def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
            self.epoch = trainer.current_epoch

    where = Epoch()
    trainer = make_trainer(
        max_epochs=5, callbacks=[where, EarlyStopping("val_los", start_from_epoch=3)]
    )
    with pytest.raises(MissingMetricError, match="'val_los'"):
        trainer.fit(Scripted([1.0] * 5), train_dataloaders=loader(), val_dataloaders=loader())
    assert trainer.current_epoch == 0  # not after three epochs of warm-up


# ------------------------------------------------ restore from a ModelCheckpoint, or not


class ScriptedByCheck(Scripted):
    """Logs values[n] at the n-th validation run (not counting the sanity check)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__(values)
        self.checks = 0

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", float(self.values[self.checks]))

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.checks += 1


class WeightsByStep(Callback):
    """The weights at each validation end, by global step."""

    def __init__(self) -> None:
        self.by_step: dict[int, dict[str, torch.Tensor]] = {}

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.by_step[trainer.global_step] = {
                k: v.detach().clone() for k, v in pl_module.state_dict().items()
            }


def four_batches() -> DataLoader[Any]:
    return DataLoader(TensorDataset(torch.randn(4, 1)), batch_size=1)


# Two validations per epoch (steps 2, 4 | 6, 8 | ...); the best is at step 6, mid-epoch.
MID_EPOCH_VALUES = [3.0, 2.0, 1.0, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, 3.1]


@pytest.mark.parametrize(
    "checkpoint_kwargs",
    [
        {"save_on_train_epoch_end": True},  # saves at epoch end: never the mid-epoch best
        {"every_n_epochs": 2},
        {"save_top_k": 0},
        {"monitor": "train_loss"},
    ],
)
def test_restore_falls_back_to_memory_when_the_checkpoint_cannot_hold_the_best(
    make_trainer: MakeTrainer, tmp_path: Path, checkpoint_kwargs: dict[str, Any]
) -> None:
    stopper = EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, **{"monitor": "val_loss", **checkpoint_kwargs})
    weights = WeightsByStep()
    trainer = make_trainer(max_epochs=5, val_check_interval=0.5, enable_checkpointing=True,
                           callbacks=[weights, stopper, checkpoint])  # fmt: skip
    model = ScriptedByCheck(MID_EPOCH_VALUES)
    trainer.fit(model, train_dataloaders=four_batches(), val_dataloaders=loader())
    assert (stopper.best_epoch, stopper.best_step, stopper.stopped_epoch) == (1, 6, 2)
    assert stopper.restored_from == "memory"
    assert_same_weights(model.state_dict(), weights.by_step[6])


def test_checkpoint_restore_is_refused_at_setup_with_the_reason(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    stopper = EarlyStopping("val_loss", restore_best_weights="checkpoint")
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_on_train_epoch_end=True)
    trainer = make_trainer(max_epochs=5, val_check_interval=0.5, enable_checkpointing=True,
                           callbacks=[stopper, checkpoint])  # fmt: skip
    model = ScriptedByCheck(MID_EPOCH_VALUES)
    with pytest.raises(RecipeConfigError, match="saves at train epoch end, this callback checks"):
        trainer.fit(model, train_dataloaders=four_batches(), val_dataloaders=loader())
    assert model.checks == 0  # refused before any validation or training


class SkipsEpoch(ModelCheckpoint):
    """A ModelCheckpoint that does not save at one epoch (as if that save were lost)."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch != 1:
            super().on_train_epoch_end(trainer, pl_module)


def test_a_best_check_the_checkpoint_did_not_save_is_copied_before_the_weights_move(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    stopper = EarlyStopping("val_loss", patience=3, restore_best_weights=True)
    weights = WeightsByStep()
    trainer = make_trainer(max_epochs=8, enable_checkpointing=True, callbacks=[
        weights, stopper, SkipsEpoch(dirpath=tmp_path, monitor="val_loss")])  # fmt: skip
    model = Scripted([3.0, 1.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9])
    with pytest.warns(UserWarning, match="did not save this callback's best check"):
        trainer.fit(model, train_dataloaders=loader(), val_dataloaders=loader())
    assert (stopper.best_epoch, stopper.restored_from) == (1, "memory")
    assert_same_weights(model.state_dict(), weights.by_step[stopper.best_step])  # type: ignore[index]


def test_the_checkpoint_is_loaded_with_weights_only(
    make_trainer: MakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    load = torch.load

    def recording_load(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("weights_only"))
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    stopper = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss")
    weights = WeightsByStep()
    trainer = make_trainer(max_epochs=6, enable_checkpointing=True,
                           callbacks=[weights, stopper, checkpoint])  # fmt: skip
    model = Scripted([3.0, 1.0, 2.0, 2.5, 2.6, 2.7])
    trainer.fit(model, train_dataloaders=loader(), val_dataloaders=loader())
    assert stopper.restored_from == checkpoint.best_model_path
    assert stopper.state_dict()["best_weights"] is None  # no copy in memory
    assert_same_weights(model.state_dict(), weights.by_step[stopper.best_step])  # type: ignore[index]
    assert calls == [True]
