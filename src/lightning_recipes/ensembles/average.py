"""The math of ensembles, as pure functions: averaged probabilities, the snapshot schedule.

No Lightning import: tensors and numbers in, tensors and numbers out.
"""

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import config_error

__all__ = ["average_probabilities", "cosine_cycle_lr", "cycle_end_epochs"]


def average_probabilities(
    logits_list: Sequence[Tensor], weights: Sequence[float] | None = None
) -> Tensor:
    """The (weighted) mean of the members' softmax probabilities.

    Snapshot ensembles (Huang et al. 2017) and ensembles of independently trained models
    average *probabilities*, not logits: each member's ``softmax`` over the last
    dimension, then the mean over members. The result is a probability distribution on
    every row, whatever the members' logit scales.

    Args:
        logits_list: One logits tensor per member, all of one shape ``(..., classes)``.
        weights: Non-negative weight per member (normalised to sum 1); None for equal.

    Returns:
        Probabilities of the shape of one member's logits, in float32 or wider.

    Raises:
        RecipeConfigError: On an empty list, mismatched shapes, a non-float tensor, or
            bad weights.

    Examples:
        >>> import torch
        >>> a = torch.tensor([[10.0, 0.0]]); b = torch.tensor([[0.0, 10.0]])
        >>> average_probabilities([a, b]).round(decimals=3)
        tensor([[0.5000, 0.5000]])
    """
    if isinstance(logits_list, Tensor) or not isinstance(logits_list, Sequence):
        raise config_error(
            "logits_list",
            type(logits_list).__name__,
            "Pass a list of logits tensors, one per member.",
        )
    if len(logits_list) == 0:
        raise config_error("logits_list", [], "Pass the logits of at least one member.")
    first = logits_list[0]
    for i, logits in enumerate(logits_list):
        if not isinstance(logits, Tensor) or not logits.is_floating_point():
            kind = logits.dtype if isinstance(logits, Tensor) else type(logits).__name__
            raise config_error(
                f"logits_list[{i}]", kind, "Pass floating-point logits (before softmax)."
            )
        if logits.ndim == 0:
            raise config_error(
                f"logits_list[{i}]", tuple(logits.shape), "Pass logits with a class dimension."
            )
        if logits.shape != first.shape:
            raise config_error(
                f"logits_list[{i}]",
                tuple(logits.shape),
                f"Every member's logits must have the shape of the first, {tuple(first.shape)}.",
            )
    coefficients = _normalised_weights(weights, len(logits_list))
    dtype = torch.promote_types(first.dtype, torch.float32)
    total = torch.zeros(first.shape, dtype=dtype, device=first.device)
    for coefficient, logits in zip(coefficients, logits_list, strict=True):
        total.add_(torch.softmax(logits.to(dtype), dim=-1), alpha=coefficient)
    return total


def _normalised_weights(weights: Sequence[float] | None, members: int) -> list[float]:
    if weights is None:
        return [1.0 / members] * members
    if isinstance(weights, str | Tensor) or not isinstance(weights, Sequence):
        raise config_error("weights", weights, "Pass a list of numbers, one per member.")
    if len(weights) != members:
        raise config_error(
            "weights", list(weights), f"Pass exactly {members} weights, one per member."
        )
    for w in weights:
        if not is_real(w) or not math.isfinite(w) or w < 0:
            raise config_error("weights", list(weights), "Pass finite non-negative numbers.")
    total = float(sum(weights))
    if total <= 0:
        raise config_error("weights", list(weights), "At least one weight must be positive.")
    return [float(w) / total for w in weights]


def cosine_cycle_lr(step: int, cycle_length: int, lr_max: float, lr_min: float = 0.0) -> float:
    """The learning rate of a cosine schedule with warm restarts at ``step``.

    ``lr_min + (lr_max - lr_min) * (1 + cos(pi * t / cycle_length)) / 2`` with
    ``t = step mod cycle_length``: ``lr_max`` at the start of every cycle, falling towards
    ``lr_min`` at its end (Loshchilov & Hutter 2017; Huang et al. 2017 eq. 2). This is
    the rate torch's ``CosineAnnealingWarmRestarts(T_0=cycle_length, T_mult=1)`` gives.

    Args:
        step: The step (or epoch) counted from 0.
        cycle_length: Steps per cycle, positive.
        lr_max: The rate at each restart.
        lr_min: The floor the cycle approaches.

    Examples:
        >>> [round(cosine_cycle_lr(s, 4, 1.0), 3) for s in range(5)]
        [1.0, 0.854, 0.5, 0.146, 1.0]
    """
    if not is_int(step) or step < 0:
        raise config_error("step", step, "Pass a non-negative integer.")
    if not is_int(cycle_length) or cycle_length < 1:
        raise config_error("cycle_length", cycle_length, "Pass a positive integer.")
    t = step % cycle_length
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * t / cycle_length)) / 2


def cycle_end_epochs(cycle_epochs: int, max_epochs: int, skip_cycles: int = 0) -> list[int]:
    """The 0-based epochs at whose end a snapshot is taken.

    Args:
        cycle_epochs: Epochs per cycle.
        max_epochs: Epochs of the run.
        skip_cycles: Leading cycles without a snapshot (the first is often poor).

    Examples:
        >>> cycle_end_epochs(3, 10)
        [2, 5, 8]
        >>> cycle_end_epochs(3, 10, skip_cycles=1)
        [5, 8]
    """
    if not is_int(cycle_epochs) or cycle_epochs < 1:
        raise config_error("cycle_epochs", cycle_epochs, "Pass a positive integer.")
    if not is_int(max_epochs) or max_epochs < 0:
        raise config_error("max_epochs", max_epochs, "Pass a non-negative integer.")
    if not is_int(skip_cycles) or skip_cycles < 0:
        raise config_error("skip_cycles", skip_cycles, "Pass a non-negative integer.")
    return [
        (cycle + 1) * cycle_epochs - 1 for cycle in range(skip_cycles, max_epochs // cycle_epochs)
    ]
