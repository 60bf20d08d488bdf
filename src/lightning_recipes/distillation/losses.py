"""The knowledge-distillation loss of Hinton et al. (2015), as a pure function."""

import math

import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lightning_recipes._core.loss_path import (
    Distill,
    check_distill_shapes,
    distilled,
    soft_target_loss,
)
from lightning_recipes._core.validate import is_real
from lightning_recipes.errors import config_error

__all__ = ["check_alpha", "check_temperature", "distillation_loss", "soft_target_loss"]


def check_temperature(value: object) -> float:
    """Validate a softmax temperature: a finite number > 0."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise config_error(
            "temperature", value, "Pass a finite temperature > 0 (1-20; Hinton et al. use 2-20)."
        )
    return float(value)


def check_alpha(value: object) -> float:
    """Validate the teacher term's weight: a number in [0, 1]."""
    if not is_real(value) or not 0.0 <= value <= 1.0:
        raise config_error(
            "alpha",
            value,
            "Pass the weight of the teacher's term in [0, 1] (0.9: mostly the teacher; "
            "0: plain cross-entropy).",
        )
    return float(value)


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``.

    Hinton et al. (2015). The KL divergence is summed over the classes (dimension 1) and
    averaged over the batch (``F.kl_div(..., reduction="batchmean")`` for ``(N, C)``
    logits); ``T^2`` keeps the soft term's gradients on the scale of the hard one's. The
    `Distillation` callback applies this same function (`distilled`) to the module's own
    ``F.cross_entropy`` call, with that call's weights, mixed targets and smoothing.

    Args:
        student_logits: ``(N, C)`` logits of the student (or ``(N, C, ...)``).
        teacher_logits: The teacher's logits on the same inputs, the same shape.
        target: Class indices ``(N,)`` (or class probabilities, as ``F.cross_entropy``).
        temperature: ``T`` (> 0).
        alpha: Weight of the teacher's term, in [0, 1].

    Returns:
        The scalar loss.

    Raises:
        RecipeConfigError: For a temperature <= 0, an alpha outside [0, 1], or teacher
            logits of another shape than the student's.

    Examples:
        >>> import torch
        >>> s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
        >>> loss = distillation_loss(s, t, y, temperature=4.0, alpha=0.9)
        >>> kl = F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction="batchmean")
        >>> bool(torch.isclose(loss, 0.9 * 16 * kl + 0.1 * F.cross_entropy(s, y)))
        True
    """
    distill = Distill(teacher_logits, check_temperature(temperature), check_alpha(alpha))
    check_distill_shapes(student_logits, distill, "distillation_loss")
    return distilled(lambda: F.cross_entropy(student_logits, target), student_logits, distill)
