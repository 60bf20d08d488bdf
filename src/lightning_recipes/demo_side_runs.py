"""The demo's trainings beside its main fit: freeze's pretraining, the snapshots' test."""

import torch
from lightning.pytorch import Callback, Trainer

from lightning_recipes._core.trainer import trainer_callbacks
from lightning_recipes.data.bundled import BundledDataModule
from lightning_recipes.modules import Classifier

__all__ = ["PRETRAIN_EPOCHS"]


PRETRAIN_EPOCHS = 10
"""Epochs of the source task that gives ``freeze`` a pretrained backbone."""


def _pretrain(
    backbone: torch.nn.Module,
    data: BundledDataModule,
    epochs: int,
    progress: bool,
    weighted: bool,
) -> None:
    """Pretrain ``backbone`` in place on the training split, under a head that is discarded.

    Freezing only makes sense for a backbone that already knows something: freezing a
    random one trains a linear model on random features. The demo has no second dataset,
    so its source task is the training split itself under a separate head (a warm start),
    which costs ``epochs`` more epochs of compute; the report says so. With ``weighted``
    (``class-weighting`` chosen too) the source task uses the same weighted loss, so the
    features it learns do not neglect the rare classes that the target task weights up.
    """
    source = Classifier(backbone, num_classes=10, lr=3e-3, scheduler="onecycle")
    callbacks: list[Callback] = []
    if weighted:
        from lightning_recipes.imbalance import ClassWeighting

        callbacks.append(ClassWeighting(log=False))
    Trainer(
        callbacks=callbacks,
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
    ).fit(source, datamodule=data)


def _test_snapshot_ensemble(
    trainer: Trainer, classifier: Classifier, data: BundledDataModule, limit: int | float
) -> dict[str, float]:
    """Test accuracy and NLL of the snapshots' averaged probabilities (empty if none)."""
    from lightning_recipes.ensembles import SnapshotEnsemble

    for callback in trainer_callbacks(trainer):
        if isinstance(callback, SnapshotEnsemble) and callback.snapshots:
            ensemble = callback.ensemble(classifier)
            tested = Trainer(
                accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                enable_model_summary=False, limit_test_batches=limit,
            ).test(ensemble, datamodule=data, verbose=False)  # fmt: skip
            return {f"snapshot_ensemble_{k}": float(v) for k, v in tested[0].items()}
    return {}
