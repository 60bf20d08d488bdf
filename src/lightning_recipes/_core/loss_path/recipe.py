"""The Lightning side of the loss recipes (`LossRecipe`), and the LR finder's weighted copy."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core.batch_pipeline import (
    BatchStage,
    close_batch_stages,
    end_batch_stages,
    run_batch_stages,
)
from lightning_recipes._core.labels import LabelKey
from lightning_recipes._core.loss import loss_module
from lightning_recipes._core.loss_path.edit import Kind, check_loss_module
from lightning_recipes._core.loss_path.path import LossPath
from lightning_recipes.errors import config_error

__all__ = ["LossRecipe", "LossStage", "weighted_training_loss"]


@contextmanager
def weighted_training_loss(source: nn.Module, probe: nn.Module, batch: Any) -> Iterator[None]:
    """Run ``probe``'s training step on ``batch`` with the loss edits of ``source``.

    The class weights and logit offsets (whole-fit edits) travel; batch mixes do not.

    For a recipe that trains a copy of the module (the LR finder's range test): the copy's
    loss is weighted as the module's is, through either door, with no batch mixing.

    Args:
        source: The module whose loss path holds the weights.
        probe: A deep copy of it.
        batch: The batch the copy trains on.
    """
    path = LossPath._by_module.get(source)
    if path is None or not (path.weights or path.offsets):
        yield
        return
    twin = LossPath(probe)
    twin.users = dict(path.users)
    twin.weights = dict(path.weights)
    twin.offsets = dict(path.offsets)
    names = {id(module): name for name, module in source.named_modules()}
    for loss, buffer in path.installed:
        if id(loss) in names:
            twin.installed.append((probe.get_submodule(names[id(loss)]), buffer))
    twin.begin_batch(batch, (-1, -1))
    try:
        yield
    finally:
        twin.close()


class LossRecipe(Callback):
    """The Lightning side of a recipe that edits the training loss through the `LossPath`.

    Subclasses call `attach_loss_path` in ``setup`` and add their part to
    ``self.loss_path.edit`` (or call ``mix`` / ``smooth`` / ``set_class_weights``); this
    base starts each training batch (labels found, mode entered), leaves the mode before
    the backward pass, checks at the batch's end that the edit met the loss, and undoes
    everything at teardown and on exceptions.
    """

    loss_path: LossPath | None = None

    def attach_loss_path(self, pl_module: LightningModule, label_key: LabelKey) -> LossPath:
        """Join ``pl_module``'s loss path (idempotent)."""
        self.loss_path = LossPath.attach(pl_module, self, label_key)
        return self.loss_path

    def attach_loss(
        self, pl_module: LightningModule, loss_attr: str | None, label_key: LabelKey
    ) -> tuple[tuple[nn.Module, str] | None, Kind | None]:
        """Join the loss path and open the module door on the module's loss object, if any.

        For a recipe that mixes, smooths or distils (not weights): the loss object is
        ``loss_attr``, else the first of ``loss_fn`` / ``criterion`` / ``loss``.

        Returns:
            The loss object and its attribute (None: a plain loss call in
            ``training_step``), and its kind for one of torch's losses (None for another
            module: the module door is opened on it).

        Raises:
            RecipeConfigError: For a ``loss_attr`` the module does not have, or one of
                torch's losses the recipes cannot act on (`check_loss_module`).
        """
        recipe = type(self).__name__
        found = loss_module(pl_module, loss_attr)
        if found is None and loss_attr is not None:
            raise config_error(
                "loss_attr",
                loss_attr,
                f"{type(pl_module).__name__} has no nn.Module attribute of that name. Pass "
                "the attribute holding the loss, or leave loss_attr=None when training_step "
                "calls F.cross_entropy (or builds the loss) itself.",
            )
        path = self.attach_loss_path(pl_module, label_key)
        if found is None:
            return None, None
        kind = check_loss_module(*found, recipe, weighting=False)
        if kind is None:
            path.hook(found[0])  # FocalLoss or a custom loss: the module door
        return found, kind

    @staticmethod
    def batch_token(trainer: Trainer, batch_idx: int) -> tuple[int, int]:
        """What identifies a training batch across the callbacks of one Trainer."""
        return (trainer.current_epoch, batch_idx)

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.loss_path is not None:
            self.loss_path.begin_batch(batch, self.batch_token(trainer, batch_idx))

    @override
    def on_before_zero_grad(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Automatic optimization zeroes the gradients after the training step, before the
        # backward pass: the step is over, and zero_grad's torch calls need not pay the mode.
        if self.loss_path is not None and pl_module.automatic_optimization:
            self.loss_path.leave_step()

    @override
    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: Tensor
    ) -> None:
        # Manual optimization calls backward inside training_step: stay until its end.
        if self.loss_path is not None and pl_module.automatic_optimization:
            self.loss_path.leave_step()

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.loss_path is not None:
            token = self.batch_token(trainer, batch_idx)
            self.loss_path.end_batch(token, produced_loss=outputs is not None)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.loss_path is not None:
            self.loss_path.detach(self)
            self.loss_path = None

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if self.loss_path is not None:
            self.loss_path.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["loss_path"] = None  # hooks and a mode of one process
        return state


class LossStage(LossRecipe, BatchStage):
    """A loss recipe that is also a stage of the batch pipeline (augmentations, Distillation).

    It runs the pipeline when a training batch starts (once per step, every stage), starts
    the loss path's batch before any stage runs and leaves the mode (so the stages' torch
    calls skip it; left again if ``ClassWeighting`` entered it), enters the mode once every
    stage ran, and ends or forgets the pipeline's step with the batch, at teardown and on
    exceptions.
    """

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        run_batch_stages(trainer, pl_module, batch, batch_idx)

    @override
    def prepare_stage(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.loss_path is not None:
            self.loss_path.begin_batch(batch, self.batch_token(trainer, batch_idx), enter=False)
            self.loss_path.leave_step()

    @override
    def finish_stages(self) -> None:
        if self.loss_path is not None:
            self.loss_path.enter_step()

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        end_batch_stages(trainer)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        close_batch_stages(trainer)
        super().on_exception(trainer, pl_module, exception)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        close_batch_stages(trainer)
        super().teardown(trainer, pl_module, stage)
