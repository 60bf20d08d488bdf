"""MetricHistory records every epoch and survives resume."""

from collections.abc import Callable

from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

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
