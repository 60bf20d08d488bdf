"""Knowledge distillation's part of a training-loss edit: the soft-target term and its mix.

Hinton et al. (2015): the training loss becomes

    (1 - alpha) * hard + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))

``hard`` the step's own classification loss (already weighted, mixed and smoothed by the
other loss recipes), ``s`` its input (the student's logits), ``t`` the teacher's logits on
the same inputs. The KL divergence is summed over the classes (dimension 1) and reduced
over the samples as the hard loss is: ``"mean"`` is ``F.kl_div(..., reduction=
"batchmean")`` for ``(N, C)`` logits. The teacher's term is neither class-weighted nor
mixed: the teacher saw the mixed inputs, so its distribution is the mixed sample's soft
target already. The distillation package's ``distillation_loss`` is this with ``hard =
F.cross_entropy(s, y)``.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lightning_recipes.errors import RecipeConfigError

__all__ = ["Distill", "check_distill_shapes", "distilled", "soft_target_loss"]


@dataclass
class Distill:
    """The distillation part of one training step's loss edit.

    Attributes:
        teacher_logits: The teacher's logits on the step's inputs (no gradient), or a
            function computing them when the loss call comes (the teacher on the batch's
            inputs, when the module's forward never ran on them).
        temperature: The softmax temperature ``T`` (> 0).
        alpha: The weight of the teacher's term, in [0, 1].
    """

    teacher_logits: Tensor | Callable[[], Tensor]
    temperature: float
    alpha: float

    def logits(self) -> Tensor:
        """The teacher's logits (computed once, on first use, when given as a function)."""
        if not isinstance(self.teacher_logits, Tensor):
            self.teacher_logits = self.teacher_logits()
        return self.teacher_logits


def soft_target_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float,
    reduction: str = "mean",
) -> Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, summed over classes (dimension 1).

    Args:
        student_logits: ``(N, C, ...)`` logits (log-probabilities work too: softmax does
            not see a per-row shift).
        teacher_logits: The teacher's logits, the same shape.
        temperature: ``T`` (> 0); the ``T^2`` keeps the gradient's scale independent of it.
        reduction: ``"mean"`` (over samples and positions: ``batchmean`` for ``(N, C)``),
            ``"sum"`` or ``"none"`` (one value per sample and position).

    Returns:
        The reduced divergence.

    Examples:
        >>> import torch
        >>> s, t = torch.randn(4, 3), torch.randn(4, 3)
        >>> ref = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean")
        >>> bool(torch.isclose(soft_target_loss(s, t, 2.0), 4 * ref))
        True
    """
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits.to(log_student.dtype) / temperature, dim=1)
    per_sample = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1)
    per_sample = per_sample * (temperature * temperature)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"soft_target_loss: unknown reduction {reduction!r}")


def distilled(
    hard: Callable[[], Tensor],
    student_logits: Tensor,
    distill: Distill,
    reduction: str = "mean",
) -> Tensor:
    """``(1 - alpha) * hard() + alpha * soft_target_loss(...)``.

    ``hard`` is not computed when ``alpha`` is 1 and the teacher's term is not when it
    is 0, so each end is exactly one loss.

    Args:
        hard: The step's own (edited) classification loss, computed on demand.
        student_logits: The input of that loss.
        distill: The teacher's logits, ``T`` and ``alpha``.
        reduction: The hard loss's reduction, applied to the teacher's term too.

    Returns:
        The distillation loss.

    Examples:
        >>> import torch
        >>> s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
        >>> ce = lambda: F.cross_entropy(s, y)
        >>> bool(torch.equal(distilled(ce, s, Distill(t, 4.0, 0.0)), ce()))
        True
    """
    if distill.alpha == 0.0:
        return hard()
    soft = soft_target_loss(student_logits, distill.logits(), distill.temperature, reduction)
    if distill.alpha == 1.0:
        return soft
    return hard() * (1.0 - distill.alpha) + soft * distill.alpha


def check_distill_shapes(student_logits: Tensor, distill: Distill, where: str) -> None:
    """Refuse teacher logits whose shape is not the student's (at the first step).

    Args:
        student_logits: The input of the loss call.
        distill: The step's distillation edit.
        where: The loss call, for the message (``"F.cross_entropy"``).

    Raises:
        RecipeConfigError: Naming both shapes.
    """
    teacher = distill.logits()
    if teacher.shape != student_logits.shape:
        raise RecipeConfigError(
            f"Distillation: the teacher's logits have shape {tuple(teacher.shape)} but the "
            f"student's (the input of {where}) have shape {tuple(student_logits.shape)}. "
            "The teacher must answer the student's inputs with one logit per class of the "
            "student, and the loss must take the whole batch's logits (the teacher ran on "
            "the module's first forward call of the step): use a teacher trained on the "
            "same classes, or compute the loss on the logits of that call."
        )
