"""Distillation: train the module against a frozen teacher's soft targets (Hinton et al. 2015).

The teacher runs as a forward stage of the batch pipeline (`_core.batch_pipeline`), on the
inputs of the module's first forward call of each training step: after every batch
augmentation and mix, and after the forward stages that change the inputs (adversarial
examples). The loss becomes the distillation loss through the core's loss path
(`_core.loss_path`): the module's own ``F.cross_entropy`` call is the hard term.
"""

from typing import Any, ClassVar

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.batch_pipeline import StageKind, close_batch_stages
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.labels import LabelKey, check_label_key
from lightning_recipes._core.loss_path import LossStage, check_distill_kind
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import batch_key
from lightning_recipes.distillation.losses import check_alpha, check_temperature
from lightning_recipes.distillation.teacher import (
    TeacherClass,
    TeacherSpec,
    build_teacher,
    check_teacher,
    describe_teacher,
)
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["Distillation"]


class Distillation(Recipe, LossStage):
    """Knowledge distillation (Hinton et al. 2015) from a frozen teacher.

    The training loss becomes ``(1 - alpha) * CE + alpha * T^2 * KL(softmax(t/T) ||
    softmax(s/T))`` (`distillation_loss`): ``CE`` is the module's own ``F.cross_entropy``
    (or ``nn.CrossEntropyLoss``, ``F.nll_loss``, the library's ``FocalLoss``) call on the
    batch's labels, unchanged in the code; ``s`` is that call's input (the student's
    logits) and ``t`` the teacher's logits on exactly the inputs the student received,
    after augmentation, MixUp/CutMix and adversarial examples, computed under
    ``torch.no_grad``, at the module's first forward call of the step (``self(x)`` in
    ``training_step``). A ``training_step`` that never calls the LightningModule itself
    (``self.net(x)``) has the teacher run on the batch's inputs (``input_key``) as the
    augmentations left them, when the loss is computed. The KL term is summed over classes
    and reduced over samples as the call reduces (``"mean"``: ``reduction="batchmean"``).

    With the other loss recipes (the contract, ``docs/combining.md``): class weights
    (``ClassWeighting``) and smoothing weight and smooth the CE term only; with MixUp or
    CutMix the CE term uses the mixed targets and the teacher's term the teacher's logits
    on the mixed inputs. Any callback order gives the same training.

    The teacher is frozen (``requires_grad`` False), in eval mode (kept there), moved to
    the student's device, and held by the callback only: it is not a submodule of the
    LightningModule, so DDP never wraps it and the student's checkpoint never holds it
    (a resumed run rebuilds it from ``teacher``). Its ``requires_grad`` flags and mode are
    given back at teardown.

    Args:
        teacher: An ``nn.Module``; a LightningCLI ``{"class_path": ..., "init_args":
            {...}}`` (built under a fixed seed, so every rank builds the same); or the path
            of a checkpoint: a Lightning checkpoint whose class is ``teacher_class`` or
            the ``_class_path`` LightningCLI stores in it, or a ``state_dict`` file with
            ``teacher_class`` given as a ``class_path`` dict.
        temperature: The softmax temperature ``T`` (> 0).
        alpha: The weight of the teacher's term, in [0, 1] (0: plain CE, 1: teacher only).
        teacher_class: The teacher's class for a checkpoint path: an import path (a
            LightningModule: ``load_from_checkpoint``) or a ``class_path`` dict.
        input_key: Where the inputs are in a batch (index or key), for a ``training_step``
            that does not call ``self(x)``.
        loss_attr: Module attribute holding the loss, when not ``loss_fn`` / ``criterion``
            / ``loss``; None also works when ``training_step`` calls ``F.cross_entropy``.
        label_key: Where the labels are in a batch (index or key); None for ``(x, y)``.

    Examples:
        >>> from torch import nn
        >>> teacher = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        >>> kd = Distillation(teacher, temperature=4.0, alpha=0.9)
        >>> kd.temperature, kd.alpha
        (4.0, 0.9)
    """

    identity = ("temperature", "alpha", "loss_attr", "label_key")
    stage_kind: ClassVar[StageKind] = "forward"
    observes_inputs: ClassVar[bool] = True

    def __init__(
        self,
        teacher: TeacherSpec,
        temperature: float = 4.0,
        alpha: float = 0.9,
        *,
        teacher_class: TeacherClass = None,
        input_key: int | str = 0,
        loss_attr: str | None = None,
        label_key: LabelKey = None,
    ) -> None:
        super().__init__()
        check_teacher(teacher, teacher_class)
        self.temperature = check_temperature(temperature)
        self.alpha = check_alpha(alpha)
        if loss_attr is not None and (
            not isinstance(loss_attr, str) or not loss_attr.isidentifier()
        ):
            raise config_error(
                "loss_attr", loss_attr, "Pass the name of the module attribute holding the loss."
            )
        self.teacher = teacher
        self.teacher_class = teacher_class
        self.input_key = batch_key("input_key", input_key)
        self.loss_attr = loss_attr
        self.label_key = check_label_key(label_key)
        self.batches = 0
        self._teacher: nn.Module | None = None
        self._device: torch.device | None = None
        self._given_back: tuple[bool, list[bool]] | None = None
        self._batch: Any = None

    # ------------------------------------------------------------ the teacher

    @property
    def teacher_module(self) -> nn.Module:
        """The teacher (built from ``teacher`` on first use)."""
        if self._teacher is None:
            self._teacher = build_teacher(self.teacher, self.teacher_class)
        return self._teacher

    def _check_not_student(self, teacher: nn.Module, pl_module: LightningModule) -> None:
        student = {id(p) for p in pl_module.parameters()}
        if teacher is pl_module or any(id(p) in student for p in teacher.parameters()):
            raise config_error(
                "teacher",
                type(teacher).__name__,
                "The teacher is the student or shares its parameters (a submodule of the "
                "LightningModule): it would be trained, wrapped by DDP and saved in the "
                "student's checkpoint. Pass a separate, trained teacher (a copy: "
                "copy.deepcopy(model).eval(), or its checkpoint path).",
            )

    # ------------------------------------------------------------ lifecycle

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        close_batch_stages(trainer)  # a step of an earlier fit is not this fit's
        others = [c for c in helpers.trainer_callbacks(trainer) if isinstance(c, Distillation)]
        if len(others) > 1:
            raise RecipeConfigError(
                "Distillation: the Trainer has several Distillation callbacks; the loss has "
                "one teacher term. Use one (for several teachers, wrap them in one module "
                "that averages their logits)."
            )
        teacher = self.teacher_module
        self._check_not_student(teacher, pl_module)
        found, kind = self.attach_loss(pl_module, self.loss_attr, self.label_key)
        if found is not None and kind is not None:
            check_distill_kind(kind, f"{found[1]} = {type(found[0]).__name__}")
        # Frozen and in eval mode from here to teardown, which gives both back.
        self._given_back = (teacher.training, [p.requires_grad for p in teacher.parameters()])
        teacher.requires_grad_(False)
        teacher.eval()

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._move(pl_module.device)

    def _move(self, device: torch.device) -> None:
        if self._device != device:
            self.teacher_module.to(device)
            self._device = device

    @override
    def prepare_stage(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch
        super().prepare_stage(trainer, pl_module, batch, batch_idx)

    @override
    def finish_stages(self) -> None:
        super().finish_stages()
        if self.loss_path is not None and self.alpha > 0.0:
            # Until the module's forward hands the teacher its inputs: the batch's inputs,
            # as the batch stages left them, read when the loss is computed.
            self.loss_path.distil(self._on_batch_inputs, self.temperature, self.alpha)

    def _on_batch_inputs(self) -> Tensor:
        inputs = batch_inputs(self._batch, self.input_key, "Distillation", floating=False)
        return self._teacher_logits(inputs)

    def _teacher_logits(self, inputs: Tensor) -> Tensor:
        teacher = self.teacher_module
        if teacher.training:
            teacher.eval()  # someone called train() on it: eval, always
        self._move(inputs.device)
        x = inputs.detach()
        param = next(teacher.parameters(), None)
        if param is not None and x.is_floating_point() and param.dtype != x.dtype:
            x = x.to(param.dtype)
        with torch.no_grad():
            logits = teacher(x)
        if not isinstance(logits, Tensor):
            raise RecipeConfigError(
                f"Distillation: the teacher ({type(teacher).__name__}) returned "
                f"{type(logits).__name__}, not a tensor of logits. Wrap it in a module whose "
                "forward returns the (N, num_classes) logits."
            )
        self.batches += 1
        return logits

    @override
    def run_forward_stage(self, module: nn.Module, inputs: Tensor) -> Tensor:
        if self.alpha > 0.0 and self.loss_path is not None:
            logits = self._teacher_logits(inputs)
            self.loss_path.distil(logits, self.temperature, self.alpha)
        return inputs

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._batch = None
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._batch = None
        super().on_exception(trainer, pl_module, exception)
        self._give_back()  # Lightning calls no teardown after an exception

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        if stage == "fit":
            self._give_back()

    def _give_back(self) -> None:
        """The teacher's ``requires_grad`` flags and mode as they were before the fit."""
        if self._teacher is not None and self._given_back is not None:
            training, flags = self._given_back
            for param, flag in zip(self._teacher.parameters(), flags, strict=True):
                param.requires_grad_(flag)
            self._teacher.train(training)
            self._given_back = None

    # ------------------------------------------------------------ state and report

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}  # never the teacher: it is rebuilt from `teacher`

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = int(state_dict["batches"])

    @override
    def run_summary(self) -> RecipeSummary:
        """The teacher, ``T``, ``alpha`` and the batches distilled."""
        facts: dict[str, Any] = {
            "teacher": describe_teacher(self.teacher),
            "temperature": self.temperature,
            "alpha": self.alpha,
            "batches distilled": self.batches,
        }
        if self._teacher is not None:
            facts["teacher parameters"] = sum(p.numel() for p in self._teacher.parameters())
        notes = [] if self.batches or self.alpha == 0.0 else ["No training batch distilled."]
        return RecipeSummary("Distillation", facts=facts, notes=notes)

    @override
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_device"] = state["_batch"] = None
        return state
