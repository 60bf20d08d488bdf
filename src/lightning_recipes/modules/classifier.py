"""A LightningModule for classification: any backbone plus a linear head."""

from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.types import OptimizerLRScheduler, OptimizerLRSchedulerConfig
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from typing_extensions import override

from lightning_recipes._core.param_groups import no_decay_param_groups
from lightning_recipes.errors import config_error
from lightning_recipes.modules.optim import (
    OptimizerName,
    SchedulerName,
    build_optimizer,
    build_scheduler,
    check_optimizer_name,
    check_scheduler_name,
    check_scheduler_options,
)

__all__ = ["Classifier"]

Batch = tuple[torch.Tensor, torch.Tensor]


class Classifier(LightningModule):
    """Classify with any backbone followed by a linear head.

    Conventions later recipes rely on: the feature extractor is ``self.backbone``, the
    head ``self.head``, the loss ``self.loss_fn`` (an ``nn.Module``, so class weights can be
    installed on it) and the learning rate ``self.lr`` (read by ``configure_optimizers``, so
    an LR finder can set it).

    Logged metrics: ``train_loss`` (per step, this rank's batch, in the progress bar),
    ``train_loss_epoch`` and ``train_acc`` (per epoch), ``val_loss``, ``val_acc``,
    ``val_macro_f1``, and ``test_loss``, ``test_acc``, ``test_macro_f1``. Epoch metrics are
    torchmetrics objects: they accumulate on the device without host syncs and are
    reduced across ranks once, at epoch end. Losses are sample-weighted means over the
    whole split.

    Args:
        backbone: Feature extractor. Its output width is read from ``out_features``
            (the bundled `MLP` and `SmallCNN` have it) unless ``in_features`` is given.
        num_classes: Number of classes (at least 2).
        in_features: Width of the backbone's output, when it has no ``out_features``.
        lr: Learning rate.
        optimizer: ``"adamw"``, ``"adam"``, ``"sgd"`` or ``"rmsprop"``.
        weight_decay: Weight decay.
        scheduler: None or a name of `build_scheduler`: ``"cosine"``, ``"onecycle"``,
            ``"multistep"``, ``"plateau"``, ``"warmup_cosine"``, ``"warmup_linear"``,
            ``"step_decay"``, ``"exponential_decay"``.
        loss_fn: The loss module; defaults to ``nn.CrossEntropyLoss()``.
        scheduler_options: Keyword arguments of the schedule helper behind the last four
            scheduler names, e.g. ``{"warmup_steps": 50}`` (settable from YAML).
        decay_biases_and_norms: Apply ``weight_decay`` to biases and normalisation
            weights too (True, torch's default). False puts them in a second param group
            without decay (`lightning_recipes.regularization.no_decay_param_groups`), as
            fastai and timm do.

    Examples:
        >>> import torch
        >>> from lightning_recipes.modules import MLP
        >>> model = Classifier(MLP(64, hidden=(32,)), num_classes=10, lr=3e-3)
        >>> model(torch.zeros(4, 64)).shape
        torch.Size([4, 10])
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        in_features: int | None = None,
        lr: float = 1e-3,
        optimizer: OptimizerName = "adamw",
        weight_decay: float = 0.0,
        scheduler: SchedulerName | None = None,
        loss_fn: nn.Module | None = None,
        scheduler_options: dict[str, Any] | None = None,
        decay_biases_and_norms: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise config_error("num_classes", num_classes, "Pass the number of classes, >= 2.")
        if not lr > 0:
            raise config_error("lr", lr, "Pass a positive learning rate.")
        if weight_decay < 0:
            raise config_error("weight_decay", weight_decay, "Pass 0 or a positive decay.")
        check_optimizer_name(optimizer)
        check_scheduler_name(scheduler)
        check_scheduler_options(scheduler, scheduler_options or {})
        width = in_features if in_features is not None else getattr(backbone, "out_features", None)
        if not isinstance(width, int) or width < 1:
            raise config_error(
                "in_features",
                in_features,
                f"{type(backbone).__name__} has no integer `out_features`: pass in_features= "
                "the width of the backbone's output.",
            )
        if loss_fn is not None and not isinstance(loss_fn, nn.Module):
            raise config_error(
                "loss_fn", loss_fn, "Pass an nn.Module loss such as nn.CrossEntropyLoss()."
            )
        if not isinstance(decay_biases_and_norms, bool):
            raise config_error(
                "decay_biases_and_norms", decay_biases_and_norms, "Pass True or False."
            )
        self.save_hyperparameters(ignore=["backbone", "loss_fn"])
        self.decay_biases_and_norms = decay_biases_and_norms
        self.backbone = backbone
        self.head = nn.Linear(width, num_classes)
        self.loss_fn: nn.Module = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
        self.num_classes = num_classes
        self.lr = lr
        self.optimizer_name = optimizer
        self.weight_decay = weight_decay
        self.scheduler_name = scheduler
        self.scheduler_options = dict(scheduler_options or {})
        self.train_loss_mean = MeanMetric()
        self.val_loss_mean = MeanMetric()
        self.test_loss_mean = MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_macro_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_macro_f1 = MulticlassF1Score(num_classes, average="macro")

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # type: ignore[no-any-return]

    def _loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self(x)
        return self.loss_fn(logits, y), logits, y

    @override
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, logits, y = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        self.train_loss_mean.update(loss.detach(), weight=y.shape[0])
        self.train_acc.update(logits.detach(), y)
        self.log("train_loss_epoch", self.train_loss_mean, on_step=False, on_epoch=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    @override
    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, logits, y = self._loss(batch)
        self.val_loss_mean.update(loss, weight=y.shape[0])
        self.val_acc.update(logits, y)
        self.val_macro_f1.update(logits, y)
        self.log("val_loss", self.val_loss_mean, prog_bar=True)
        self.log("val_acc", self.val_acc, prog_bar=True)
        self.log("val_macro_f1", self.val_macro_f1)

    @override
    def test_step(self, batch: Batch, batch_idx: int) -> None:
        loss, logits, y = self._loss(batch)
        self.test_loss_mean.update(loss, weight=y.shape[0])
        self.test_acc.update(logits, y)
        self.test_macro_f1.update(logits, y)
        self.log("test_loss", self.test_loss_mean)
        self.log("test_acc", self.test_acc)
        self.log("test_macro_f1", self.test_macro_f1)

    @override
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Return class probabilities for a batch of inputs or ``(inputs, labels)``."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self(x), dim=-1)

    @override
    def configure_optimizers(self) -> OptimizerLRScheduler:
        params: Any = self.parameters()
        if not self.decay_biases_and_norms and self.weight_decay > 0:
            params = no_decay_param_groups(self, self.weight_decay)
        optimizer = build_optimizer(
            self.optimizer_name, params, lr=self.lr, weight_decay=self.weight_decay
        )
        if self.scheduler_name is None:
            return optimizer
        scheduler = build_scheduler(
            self.scheduler_name,
            optimizer,
            total_steps=int(self.trainer.estimated_stepping_batches),
            max_epochs=max(int(self.trainer.max_epochs or 1), 1),
            options=self.scheduler_options,
        )
        return OptimizerLRSchedulerConfig(optimizer=optimizer, lr_scheduler=scheduler)
