"""MetricHistory records every epoch and survives resume."""

from collections.abc import Callable
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_recipes import MetricHistory
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier


def _fit(trainer: Trainer, ckpt_path: str | None = None) -> Classifier:
    seed_everything(0)
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10, lr=0.01, scheduler="cosine")
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=128), ckpt_path=ckpt_path)
    return model


def test_records_train_and_val_metrics_and_lr(make_trainer: Callable[..., Trainer]) -> None:
    history = MetricHistory()
    _fit(make_trainer(max_epochs=3, callbacks=[history]))
    assert [r["epoch"] for r in history.records] == [0.0, 1.0, 2.0]
    last = history.records[-1]
    for name in (
        "train_loss_epoch",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_macro_f1",
        "lr",
        "step",
    ):
        assert name in last, name
    epochs, losses = history.series("val_loss")
    assert epochs == [0.0, 1.0, 2.0]
    assert losses[-1] < losses[0]
    lrs = [r["lr"] for r in history.records]
    assert lrs == sorted(lrs, reverse=True)
    assert lrs[-1] < 0.01


class _StopAfter(Callback):
    """Interrupt a fit after ``epochs`` epochs, as a crash or a time limit would."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def test_resume_keeps_earlier_epochs_and_replays_the_run(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = MetricHistory()
    interrupted = [first, checkpoint, _StopAfter(2)]
    _fit(make_trainer(max_epochs=4, callbacks=interrupted, enable_checkpointing=True))
    assert len(first.records) == 2
    resumed = MetricHistory()
    resumed_model = _fit(
        make_trainer(max_epochs=4, callbacks=[resumed]), ckpt_path=checkpoint.last_model_path
    )
    assert [r["epoch"] for r in resumed.records] == [0.0, 1.0, 2.0, 3.0]
    assert resumed.records[:2] == first.records
    uninterrupted = MetricHistory()
    straight_model = _fit(make_trainer(max_epochs=4, callbacks=[uninterrupted]))
    # Same shuffles (EpochShuffleSampler), same schedule: the resumed run is the same run.
    assert resumed.records == uninterrupted.records
    for name, value in straight_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[name]), name
