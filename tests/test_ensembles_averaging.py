"""WeightAverage: validation on live weights until the average starts, BN recomputed, resume."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn

from lightning_recipes.averaging import WeightAverage, ema_decay_for, ema_horizon
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import RecipeConfigError, RecipeWarning
from lightning_recipes.modules import MLP, Classifier


class BNNet(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class ValLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.losses.append(float(trainer.callback_metrics["val_loss"]))


def _fit(make_trainer: Callable[..., Trainer], callbacks: list[Callback], **kw: Any) -> BNNet:
    seed_everything(0)
    model = BNNet()
    ckpt = kw.pop("ckpt_path", None)
    trainer = make_trainer(max_epochs=kw.pop("max_epochs", 3), callbacks=callbacks,
                           num_sanity_val_steps=0, **kw)  # fmt: skip
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    return model


def test_validates_on_live_weights_until_the_average_starts(
    make_trainer: Callable[..., Trainer],
) -> None:
    plain, averaged = ValLosses(), ValLosses()
    _fit(make_trainer, [plain])
    _fit(make_trainer, [WeightAverage("ema", decay=0.9, start_epoch=2), averaged])
    # Epochs 0 and 1: no average yet, validation sees the same live weights as without it.
    assert averaged.losses[:2] == plain.losses[:2]
    assert averaged.losses[2] != plain.losses[2]


def test_swa_recomputes_batchnorm_statistics_of_the_average(
    make_trainer: Callable[..., Trainer],
) -> None:
    average = WeightAverage("swa", start_epoch=1)
    model = _fit(make_trainer, [average])
    assert average.bn_updated
    assert average.run_summary().facts["BatchNorm statistics recomputed"] is True
    # The statistics are those of the averaged weights on the training data (up to
    # update_bn averaging batch statistics over batches of unequal size).
    data = DigitsDataModule(batch_size=64)
    data.setup("fit")
    x = torch.cat([batch[0] for batch in data.train_dataloader()])
    with torch.no_grad():
        h = model.net[0](x)
    bn = model.net[1]
    torch.testing.assert_close(bn.running_mean, h.mean(0), atol=0.01, rtol=0.01)
    torch.testing.assert_close(bn.running_var, h.var(0), atol=0.05, rtol=0.05)


class FrozenBatchNorm(BNNet):
    """A user's frozen BatchNorm: kept in eval mode while the rest trains."""

    def on_train_epoch_start(self) -> None:
        self.net[1].eval()


class ModesAtTrainEnd(Callback):
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.modes = {name: m.training for name, m in pl_module.named_modules()}


def test_the_batchnorm_pass_gives_every_submodule_its_own_mode_back(
    make_trainer: Callable[..., Trainer],
) -> None:
    """update_bn trains every submodule; a frozen BatchNorm must come back frozen."""
    seed_everything(0)
    model, seen = FrozenBatchNorm(), ModesAtTrainEnd()
    average = WeightAverage("swa", start_epoch=1)
    trainer = make_trainer(max_epochs=2, callbacks=[average, seen], num_sanity_val_steps=0)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    assert average.bn_updated
    assert seen.modes["net.1"] is False  # still frozen
    assert seen.modes["net.0"] is True
    assert seen.modes[""] is True


def test_an_average_that_never_started_keeps_the_live_weights(
    make_trainer: Callable[..., Trainer],
) -> None:
    plain = _fit(make_trainer, [], max_epochs=2)
    with pytest.warns(RecipeWarning, match="never updated"):
        kept = _fit(make_trainer, [WeightAverage("swa", start_epoch=5)], max_epochs=2)
    for a, b in zip(plain.state_dict().values(), kept.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_resumed_swa_equals_an_uninterrupted_run(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    full = _fit(make_trainer, [WeightAverage("swa"), checkpoint], max_epochs=4,
                enable_checkpointing=True)  # fmt: skip
    ckpt = next((tmp_path / "ckpt").glob("epoch=1-*.ckpt"))
    resumed = _fit(make_trainer, [WeightAverage("swa")], max_epochs=4, ckpt_path=ckpt)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


class ValidatedWeights(Callback):
    """Records the weights each validation really ran on (at its first batch)."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, dict[str, Tensor]] = {}

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if batch_idx == 0 and not trainer.sanity_checking:
            self.by_epoch[trainer.current_epoch] = {
                k: v.detach().clone() for k, v in pl_module.state_dict().items()
            }


def _assert_same(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_checkpoints_before_the_start_hold_the_live_weights(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    seen = ValidatedWeights()
    full = _fit(make_trainer, [WeightAverage("ema", decay=0.9, start_epoch=2), checkpoint, seen],
                enable_checkpointing=True)  # fmt: skip
    first = torch.load(next((tmp_path / "ckpt").glob("epoch=0-*.ckpt")), weights_only=True)
    # Lightning's WeightAveraging writes its never-updated copy of the initial weights here.
    _assert_same(first["state_dict"], seen.by_epoch[0])
    resumed = _fit(make_trainer, [WeightAverage("ema", decay=0.9, start_epoch=2)],
                   ckpt_path=next((tmp_path / "ckpt").glob("epoch=0-*.ckpt")))  # fmt: skip
    _assert_same(resumed.state_dict(), full.state_dict())


@pytest.mark.parametrize("average_first", [True, False])
@pytest.mark.parametrize("restore", [True, "checkpoint"])
def test_early_stopping_restores_the_averaged_weights_that_scored_best(
    make_trainer: Callable[..., Trainer], tmp_path: Path, average_first: bool, restore: Any
) -> None:
    from lightning_recipes import EarlyStopping

    average = WeightAverage("ema", decay=0.5, start_epoch=1)
    stopper = EarlyStopping("val_loss", patience=10, restore_best_weights=restore)
    seen, losses = ValidatedWeights(), ValLosses()
    pair: list[Callback] = [average, stopper] if average_first else [stopper, average]
    callbacks: list[Callback] = [*pair, seen, losses]
    if restore == "checkpoint":
        callbacks.append(
            ModelCheckpoint(dirpath=tmp_path / f"c{average_first}", monitor="val_loss")
        )
    trainer_kw = {"enable_checkpointing": restore == "checkpoint"}
    # SGD at lr 0.1 overshoots on digits, so the best epoch is rarely the last one.
    model = _fit(make_trainer, callbacks, max_epochs=5, **trainer_kw)
    best = min(range(5), key=lambda e: losses.losses[e])
    assert stopper.best_epoch == best
    _assert_same(model.state_dict(), seen.by_epoch[best])
    assert average.run_summary().facts["final weights"] == "set by EarlyStopping"
    assert not average.bn_updated


def test_a_checkpoint_saved_after_fit_and_validate_after_fit_use_the_final_weights(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    seed_everything(0)
    model = BNNet()
    # The final weights are the average with BatchNorm statistics recomputed: they differ
    # from the averaged model the callback still holds (EMA-averaged statistics).
    trainer = make_trainer(max_epochs=3, num_sanity_val_steps=0,
                           callbacks=[WeightAverage("ema", decay=0.5)])  # fmt: skip
    data = DigitsDataModule(batch_size=64)
    trainer.fit(model, datamodule=data)
    final = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.save_checkpoint(tmp_path / "after.ckpt")
    _assert_same(torch.load(tmp_path / "after.ckpt", weights_only=True)["state_dict"], final)
    ours = trainer.validate(model, datamodule=data, verbose=False)[0]["val_loss"]
    _assert_same(model.state_dict(), final)
    plain = make_trainer().validate(model, datamodule=data, verbose=False)[0]["val_loss"]
    assert ours == plain


def test_two_weight_averages_in_one_trainer_are_refused_at_setup(
    make_trainer: Callable[..., Trainer],
) -> None:
    from lightning.pytorch.callbacks import EMAWeightAveraging

    with pytest.raises(RecipeConfigError, match="another weight average"):
        _fit(make_trainer, [WeightAverage("swa"), EMAWeightAveraging()])


def _short_run_val_acc(make_trainer: Callable[..., Trainer], callbacks: list[Callback]) -> float:
    """Validation accuracy after a 3-epoch, 60-step fit (20 batches of 32 per epoch)."""
    seed_everything(0)
    model = Classifier(MLP(64, [64]), num_classes=10, lr=3e-3)
    data = DigitsDataModule(batch_size=32)
    trainer = make_trainer(max_epochs=3, limit_train_batches=20, num_sanity_val_steps=0,
                           callbacks=callbacks)  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 60
    return float(trainer.validate(model, datamodule=data, verbose=False)[0]["val_acc"])


def test_the_default_ema_cannot_ruin_a_short_run_and_a_long_horizon_is_warned(
    make_trainer: Callable[..., Trainer],
) -> None:
    plain = _short_run_val_acc(make_trainer, [])
    default = WeightAverage()
    averaged = _short_run_val_acc(make_trainer, [default])
    assert default.decay is None
    assert default.decay_used == pytest.approx(1 - 1 / 6)  # a horizon of 60 / 10 steps
    assert "from the run's length" in str(default.run_summary().facts["decay"])
    assert averaged > plain - 0.05
    # An explicit decay is respected, and its horizon of 1000 steps over 60 is said.
    fixed = WeightAverage(decay=0.999)
    with pytest.warns(RecipeWarning, match=r"decay=0.999\).* 1000 optimizer steps.* 60 times"):
        ruined = _short_run_val_acc(make_trainer, [fixed])
    assert fixed.decay_used == 0.999
    assert ruined < plain - 0.3  # mostly the starting weights: what the warning is about


@pytest.mark.parametrize(
    ("steps", "decay"), [(0, 0.5), (20, 0.5), (60, 1 - 1 / 6), (1_000, 0.99), (10**6, 0.999)]
)
def test_the_default_decay_spans_a_tenth_of_the_averaged_steps(steps: float, decay: float) -> None:
    assert ema_decay_for(steps) == pytest.approx(decay)
    assert ema_decay_for(steps) ** steps < 1e-4 or steps < 20  # the start is forgotten
    assert ema_horizon(ema_decay_for(steps)) == pytest.approx(1 / (1 - decay))


def test_the_decay_counts_the_steps_from_start_epoch(make_trainer: Callable[..., Trainer]) -> None:
    late = WeightAverage("ema", start_epoch=2)
    _fit(make_trainer, [late], max_epochs=4, limit_train_batches=10)
    assert late.decay_used == pytest.approx(ema_decay_for(20))  # epochs 2 and 3


BAD: list[tuple[dict[str, Any], str]] = [
    ({"kind": "mean"}, "kind"),
    ({"kind": None}, "kind"),
    ({"decay": 0.0}, "decay"),
    ({"decay": 1.0}, "decay"),
    ({"decay": -0.5}, "decay"),
    ({"decay": float("nan")}, "decay"),
    ({"decay": True}, "decay"),
    ({"start_epoch": -1}, "start_epoch"),
    ({"start_epoch": 1.5}, "start_epoch"),
    ({"start_epoch": True}, "start_epoch"),
    ({"update_bn": "yes"}, "update_bn"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD)
def test_weight_average_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        WeightAverage(**kwargs)


def test_pickles_and_deepcopies_with_ema() -> None:
    import copy
    import pickle

    callback = WeightAverage("ema", decay=0.9)
    for clone in (copy.deepcopy(callback), pickle.loads(pickle.dumps(callback))):
        assert clone.state_key == callback.state_key


def test_testing_the_best_checkpoint_after_fit_tests_the_averaged_weights(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    seed_everything(0)
    model = BNNet()
    seen = ValidatedWeights()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val_loss")
    callbacks = [WeightAverage("ema", decay=0.5), checkpoint, seen]
    trainer = make_trainer(max_epochs=3, num_sanity_val_steps=0, enable_checkpointing=True,
                           callbacks=callbacks)  # fmt: skip
    data = DigitsDataModule(batch_size=64)
    trainer.fit(model, datamodule=data)
    best_epoch = torch.load(checkpoint.best_model_path, weights_only=True)["epoch"]
    tested = ValidatedWeights()
    trainer.callbacks.append(tested)  # type: ignore[attr-defined]
    # Lightning's WeightAveraging loads the checkpoint's *live* weights here
    # (current_model_state): the test would not run on the weights that scored best.
    trainer.validate(model, datamodule=data, ckpt_path="best", verbose=False)
    (weights,) = tested.by_epoch.values()
    _assert_same(weights, seen.by_epoch[best_epoch])


@pytest.mark.parametrize("bar", [True, False])
def test_the_batchnorm_pass_shows_a_progress_bar_when_the_trainer_does(
    make_trainer: Callable[..., Trainer], capsys: pytest.CaptureFixture[str], bar: bool
) -> None:
    _fit(make_trainer, [WeightAverage("swa")], max_epochs=1, enable_progress_bar=bar)
    assert ("BatchNorm statistics of the average" in capsys.readouterr().err) is bar
