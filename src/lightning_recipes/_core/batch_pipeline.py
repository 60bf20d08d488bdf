"""The training batch's pipeline: one order for what recipes do to a batch.

A recipe that changes the training batch is a `BatchStage` of one of four kinds, run in
this order whatever the order of ``callbacks=[...]`` (the contract: ``docs/combining.md``,
"The path of a training batch"):

1. ``"transform"``: image transforms (`ImageAugmentation`);
2. ``"mix"``: MixUp, CutMix (their mix terms compose in the loss path);
3. ``"smooth"``: LabelSmoothing (of the mixed target);
4. ``"forward"``: adversarial inputs (`AdversarialTraining`), at the module's first forward
   call of the step, on the inputs the model really receives: after the batch stages and
   whatever ``training_step`` does to the batch before calling ``self(x)``.

The first stage whose ``on_train_batch_start`` runs in a training step runs the pipeline
for every stage of the Trainer (`run_batch_stages`); the others find it done. Within a
kind, stages run by class name, then ``state_key``; a forward stage that only reads the
inputs (``observes_inputs``: `Distillation`'s teacher) runs after those that change them.
One forward pre-hook serves every forward stage: it removes itself at the module's first
call, before the stages run, so
their own forward calls (an attack's) are not intercepted. Validation, test and predict
batches never meet the pipeline. The loss side of the path (weights, mix terms,
smoothing) is the loss path's (`lightning_recipes._core.loss_path`).
"""

import weakref
from typing import Any, ClassVar, Literal

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lightning_recipes._core import trainer as helpers

__all__ = [
    "STAGE_KINDS",
    "BatchStage",
    "StageKind",
    "close_batch_stages",
    "end_batch_stages",
    "run_batch_stages",
]

StageKind = Literal["transform", "mix", "smooth", "forward"]
STAGE_KINDS: tuple[StageKind, ...] = ("transform", "mix", "smooth", "forward")
"""The kinds of stage, in the order a training batch meets them."""


class BatchStage(Callback):
    """A callback that changes training batches: one stage of the batch pipeline.

    Subclasses set `stage_kind`, call `run_batch_stages` in ``on_train_batch_start`` and
    `end_batch_stages` in ``on_train_batch_end`` (and `close_batch_stages` at teardown),
    and implement the methods of their kind.
    """

    stage_kind: ClassVar[StageKind]
    observes_inputs: ClassVar[bool] = False
    """A forward stage that reads the inputs without changing them: it runs after the
    forward stages that change them, so it sees what the module receives."""

    def prepare_stage(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Before any stage of this step runs (every stage, in pipeline order)."""

    def run_stage(self, trainer: Trainer, batch: Any, batch_idx: int) -> None:
        """Change ``batch`` in place (the batch kinds)."""

    def finish_stages(self) -> None:
        """After every batch stage of this step ran (every stage, in pipeline order)."""

    def run_forward_stage(self, module: nn.Module, inputs: Tensor) -> Tensor:
        """The inputs the module receives instead of ``inputs`` (the forward kind)."""
        return inputs

    def forward_stage_missed(self) -> None:
        """The step ended without a forward call of the module (the forward kind)."""


class _Pipeline:
    """One Trainer's pipeline: the step it ran for, and the forward hook of that step."""

    def __init__(self) -> None:
        self.token: tuple[int, int] | None = None
        self.handle: RemovableHandle | None = None
        self.forward: list[BatchStage] = []

    def remove_hook(self) -> bool:
        """Remove the step's forward hook; whether it was still there (never called)."""
        if self.handle is None:
            return False
        self.handle.remove()
        self.handle = None
        return True


_PIPELINES: "weakref.WeakKeyDictionary[Trainer, _Pipeline]" = weakref.WeakKeyDictionary()


def _stages(trainer: Trainer) -> list[BatchStage]:
    stages = [c for c in helpers.trainer_callbacks(trainer) if isinstance(c, BatchStage)]
    stages.sort(
        key=lambda c: (
            STAGE_KINDS.index(c.stage_kind),
            c.observes_inputs,
            type(c).__name__,
            c.state_key,
        )
    )
    return stages


def run_batch_stages(
    trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
) -> None:
    """Run every stage of the Trainer on this training batch, once per step.

    Args:
        trainer: The Trainer.
        pl_module: The module (its first forward call of the step runs the forward stages).
        batch: The training batch, as Lightning hands it to ``training_step``.
        batch_idx: Its index in the epoch.
    """
    pipeline = _PIPELINES.setdefault(trainer, _Pipeline())
    token = (trainer.current_epoch, batch_idx)
    if pipeline.token == token:
        return  # another stage already ran the pipeline of this step
    pipeline.token = token
    pipeline.remove_hook()
    stages = _stages(trainer)
    for stage in stages:
        stage.prepare_stage(trainer, pl_module, batch, batch_idx)
    for stage in stages:
        if stage.stage_kind != "forward":
            stage.run_stage(trainer, batch, batch_idx)
    for stage in stages:
        stage.finish_stages()
    pipeline.forward = [s for s in stages if s.stage_kind == "forward"]
    if pipeline.forward:

        def at_first_forward(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            if not args or not isinstance(args[0], Tensor):
                return None  # not the inputs: wait for the call that has them
            pipeline.remove_hook()  # once per step; the stages' own calls pass freely
            inputs = args[0]
            for stage in pipeline.forward:
                inputs = stage.run_forward_stage(module, inputs)
            return (inputs, *args[1:])

        pipeline.handle = pl_module.register_forward_pre_hook(at_first_forward)


def end_batch_stages(trainer: Trainer) -> None:
    """End the step's pipeline (the first stage's ``on_train_batch_end`` does it).

    A forward stage whose module was never called in the step hears it
    (`BatchStage.forward_stage_missed`).
    """
    pipeline = _PIPELINES.get(trainer)
    if pipeline is None or pipeline.token is None:
        return
    pipeline.token = None
    if pipeline.remove_hook():
        for stage in pipeline.forward:
            stage.forward_stage_missed()
    pipeline.forward = []


def close_batch_stages(trainer: Trainer) -> None:
    """Forget the Trainer's pipeline and remove its hook (teardown, exceptions, new fits)."""
    pipeline = _PIPELINES.pop(trainer, None)
    if pipeline is not None:
        pipeline.remove_hook()
