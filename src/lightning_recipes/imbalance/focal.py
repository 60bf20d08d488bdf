"""Focal loss (Lin et al. 2017) for multiclass, binary and multilabel classification.

Focal loss multiplies cross-entropy by ``(1 - p_t)**gamma``, where ``p_t`` is the predicted
probability of the true class: confidently correct ("easy") examples contribute almost
nothing, so training concentrates on the hard ones, which helps with strong imbalance.
With ``gamma=0`` and no ``alpha`` it *is* cross-entropy: `focal_loss` then equals
``torch.nn.functional.cross_entropy`` (multiclass, with the same ``weight``,
``ignore_index`` and ``reduction``) or ``binary_cross_entropy_with_logits`` (binary and
multilabel, with ``weight`` as ``pos_weight``), so it is a drop-in replacement.

Everything runs in log space (``log_softmax``, ``logsigmoid``), so logits of any magnitude
give finite losses and gradients, and nothing reads a value back to the host.
`lightning_recipes.imbalance.losses.FocalLoss` is the ``nn.Module`` form, with ``weight``
a buffer that callbacks (e.g. class weighting) can replace, like ``CrossEntropyLoss.weight``.
"""

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lightning_recipes._core.validate import is_real
from lightning_recipes.errors import choice_error, config_error

__all__ = ["FOCAL_REDUCTIONS", "FOCAL_TASKS", "focal_loss"]

Reduction = Literal["none", "mean", "sum"]
Task = Literal["multiclass", "binary", "multilabel"]

FOCAL_REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")
"""The ``reduction`` values accepted by `focal_loss` and `FocalLoss`."""
FOCAL_TASKS: tuple[str, ...] = ("multiclass", "binary", "multilabel")
"""The ``task`` values accepted by `focal_loss` and `FocalLoss`."""


def _check_options(gamma: float, reduction: str, task: str) -> None:
    if not is_real(gamma) or not math.isfinite(gamma) or gamma < 0:
        raise config_error(
            "gamma",
            gamma,
            "Pass a finite focusing parameter >= 0 (2.0 in Lin et al. 2017; 0 is plain "
            "cross-entropy).",
        )
    if reduction not in FOCAL_REDUCTIONS:
        raise choice_error("reduction", reduction, FOCAL_REDUCTIONS)
    if task not in FOCAL_TASKS:
        raise choice_error("task", task, FOCAL_TASKS)


def _check_values(argument: str, values: Tensor) -> None:
    """Raise unless every entry is finite and >= 0 (reads the values: for construction)."""
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise config_error(argument, values.tolist(), "Pass finite values >= 0.")


def _as_vector(argument: str, value: Sequence[float] | Tensor) -> Tensor:
    """A floating-point tensor from ``value``; a non-tensor is also checked to be >= 0."""
    if isinstance(value, Tensor):
        vector = value if value.is_floating_point() else value.float()
    else:
        try:
            vector = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise config_error(argument, value, "Pass a 1-D sequence of numbers.") from err
        if vector.ndim != 1:
            raise config_error(argument, value, "Pass a 1-D sequence of numbers.")
        _check_values(argument, vector)
    if vector.numel() == 0:
        raise config_error(argument, value, "Pass one value per class (an empty list has none).")
    return vector


def _as_alpha(alpha: float | Sequence[float] | Tensor | None, task: str) -> float | Tensor | None:
    """Validate ``alpha`` for ``task``; returns None, a float or a 1-D per-class tensor."""
    if alpha is None:
        return None
    if is_real(alpha):
        value = float(alpha)
        if task == "multiclass":
            if not math.isfinite(value) or value < 0:
                raise config_error(
                    "alpha", alpha, "Pass a finite scale >= 0, per-class values, or None."
                )
        elif not 0.0 <= value <= 1.0:
            raise config_error(
                "alpha", alpha, "Pass the weight of positives, in [0, 1] (0.25 in Lin et al.)."
            )
        return value
    if task != "multiclass":
        raise config_error(
            "alpha",
            alpha,
            f"For task={task!r} pass a float in [0, 1] (the weight of positives) or None.",
        )
    vector = _as_vector("alpha", alpha)  # type: ignore[arg-type]
    if vector.ndim != 1:
        raise config_error(
            "alpha",
            tuple(vector.shape),
            "Pass a float, or one value per class as a 1-D sequence (index = class id).",
        )
    return vector


def _as_weight(weight: Sequence[float] | Tensor | None) -> Tensor | None:
    return None if weight is None else _as_vector("weight", weight)


def _focal_term(one_minus_p: Tensor, gamma: float) -> Tensor:
    """``(1 - p)**gamma``; flooring at the smallest normal keeps gradients finite at p = 1."""
    return one_minus_p.clamp(min=torch.finfo(one_minus_p.dtype).tiny).pow(gamma)


def _multiclass(
    logits: Tensor,
    target: Tensor,
    gamma: float,
    alpha: float | Tensor | None,
    weight: Tensor | None,
    ignore_index: int,
) -> tuple[Tensor, Tensor]:
    """Per-element weighted losses and their weights (the denominator of the mean)."""
    if logits.ndim < 2:
        raise config_error(
            "logits.shape",
            tuple(logits.shape),
            "For task='multiclass' pass logits of shape (N, C) or (N, C, d1, ...).",
        )
    n_classes = logits.shape[1]
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise config_error(
            "target.shape",
            tuple(target.shape),
            f"For logits of shape {tuple(logits.shape)} pass class ids of shape {expected}.",
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise config_error(
            "target.dtype",
            target.dtype,
            "For task='multiclass' pass integer class ids (torch.long); for 0/1 targets of "
            "the logits' shape use task='binary' or 'multilabel'.",
        )
    log_probs = F.log_softmax(logits, dim=1)
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target)).long()
    log_p_t = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -log_p_t
    if gamma != 0:
        loss = loss * _focal_term(-torch.expm1(log_p_t), gamma)
    if isinstance(alpha, Tensor):
        if alpha.shape != (n_classes,):
            raise config_error(
                "alpha", tuple(alpha.shape), f"Pass one value per class: shape ({n_classes},)."
            )
        loss = loss * alpha.to(device=loss.device, dtype=loss.dtype)[safe]
    elif alpha is not None:
        loss = loss * alpha
    if weight is None:
        sample_weight = keep.to(loss.dtype)
    else:
        if weight.shape != (n_classes,):
            raise config_error(
                "weight", tuple(weight.shape), f"Pass one weight per class: shape ({n_classes},)."
            )
        class_weight = weight.to(device=loss.device, dtype=loss.dtype)[safe]
        sample_weight = torch.where(keep, class_weight, torch.zeros_like(class_weight))
        loss = loss * class_weight
    # `where`, not a product: an ignored element's loss may be inf (never read by CE either).
    loss = torch.where(keep, loss, torch.zeros_like(loss))
    return loss, sample_weight


def _binary(
    logits: Tensor,
    target: Tensor,
    gamma: float,
    alpha: float | Tensor | None,
    weight: Tensor | None,
) -> Tensor:
    """Per-element losses for binary / multilabel targets."""
    if target.shape != logits.shape:
        raise config_error(
            "target.shape",
            tuple(target.shape),
            f"For binary/multilabel tasks pass 0/1 targets of the logits' shape "
            f"{tuple(logits.shape)}.",
        )
    target = target.to(logits.dtype)
    positive = target * F.logsigmoid(logits)
    if weight is not None:
        trailing = logits.shape[logits.ndim - weight.ndim :] if weight.ndim else ()
        fits = weight.ndim <= logits.ndim and all(
            w in (1, n) for w, n in zip(weight.shape, trailing, strict=True)
        )
        if not fits:
            raise config_error(
                "weight",
                tuple(weight.shape),
                "For binary/multilabel tasks weight is pos_weight: pass one weight per class "
                f"(the last dim of logits, {logits.shape[-1] if logits.ndim else 1}).",
            )
        positive = positive * weight.to(device=logits.device, dtype=positive.dtype)
    loss = -(positive + (1 - target) * F.logsigmoid(-logits))
    if gamma != 0:
        one_minus_p_t = target * torch.sigmoid(-logits) + (1 - target) * torch.sigmoid(logits)
        loss = loss * _focal_term(one_minus_p_t, gamma)
    if alpha is not None:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | Sequence[float] | Tensor | None = None,
    weight: Sequence[float] | Tensor | None = None,
    reduction: Reduction = "mean",
    task: Task = "multiclass",
    ignore_index: int = -100,
) -> Tensor:
    """Focal loss ``-alpha_t * (1 - p_t)**gamma * log(p_t)`` (Lin et al. 2017), from logits.

    ``p_t`` is the predicted probability of the true class (multiclass: softmax over dim 1;
    binary/multilabel: sigmoid per element, ``p`` for positives and ``1 - p`` for
    negatives). With ``gamma=0`` and ``alpha=None`` the result equals
    ``F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
    reduction=reduction)`` for ``task="multiclass"``, and
    ``F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight,
    reduction=reduction)`` otherwise.

    Tensor ``alpha`` and ``weight`` are checked for shape only, so that no value is read
    back to the host; `FocalLoss` checks their values once, at construction. Class ids are
    not range-checked either (indexing fails on out-of-range ids, as in cross-entropy).

    Args:
        logits: Unnormalised scores. Multiclass: ``(N, C)`` or ``(N, C, d1, ...)`` as for
            ``cross_entropy``; binary/multilabel: any shape.
        target: Multiclass: integer class ids of shape ``(N,)`` or ``(N, d1, ...)``;
            binary/multilabel: 0/1 targets of the logits' shape (any dtype; soft targets
            follow torchvision's ``sigmoid_focal_loss``).
        gamma: Focusing parameter ``>= 0``; 0 gives cross-entropy, Lin et al. use 2.
        alpha: Class balance factor, a multiplier that is not part of the mean's
            denominator. Multiclass: None, a float ``>= 0`` that scales every element
            (so it only rescales the loss), or one value per class (``alpha[y]``).
            Binary/multilabel: None or a float in ``[0, 1]``, the factor of positives
            (negatives get ``1 - alpha``; Lin et al. use 0.25).
        weight: Multiclass: one weight per class, as ``cross_entropy``'s ``weight``: it
            multiplies each element's loss and ``"mean"`` divides by the sum of the
            weights of the non-ignored targets. Binary/multilabel: ``pos_weight``, the
            weight of positives, broadcast over the last dim (one per class).
        reduction: ``"none"`` (per element: shape of ``target``), ``"sum"`` or ``"mean"``.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"`` (the last two compute
            the same thing, per element).
        ignore_index: Multiclass only: targets equal to it contribute 0 and are left out
            of the mean, as in ``cross_entropy``.

    Returns:
        The loss: a 0-dim tensor, or per-element losses for ``reduction="none"``.

    Raises:
        RecipeConfigError: If ``gamma < 0``, ``reduction`` or ``task`` is unknown, or the
            shapes or dtypes of ``logits``, ``target``, ``alpha`` or ``weight`` do not fit.

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
        >>> target = torch.tensor([0, 0])
        >>> focal_loss(logits, target, reduction="none")  # the easy example counts little
        tensor([1.0928e-04, 7.0187e-01])
        >>> ce = torch.nn.functional.cross_entropy(logits, target)
        >>> torch.allclose(focal_loss(logits, target, gamma=0.0), ce)
        True
        >>> y = torch.tensor([1.0, 0.0])
        >>> focal_loss(torch.tensor([2.0, -2.0]), y, task="binary", alpha=0.25)
        tensor(0.0009)
    """
    _check_options(gamma, reduction, task)
    alpha_value = _as_alpha(alpha, task)
    weight_value = _as_weight(weight)
    if task == "multiclass":
        loss, sample_weight = _multiclass(
            logits, target, gamma, alpha_value, weight_value, ignore_index
        )
        if reduction == "mean":
            return loss.sum() / sample_weight.sum()
    else:
        loss = _binary(logits, target, gamma, alpha_value, weight_value)
        if reduction == "mean":
            return loss.mean()
    return loss.sum() if reduction == "sum" else loss
