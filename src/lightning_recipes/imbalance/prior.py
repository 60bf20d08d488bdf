"""Logit adjustment (Menon et al. 2021): the log class prior, added in the loss or after.

A classifier trained with plain cross-entropy on long-tailed data learns scores ``f(x)``
whose softmax estimates the *training* posterior ``p(y | x)``, which carries the class
prior ``pi_y``: rare classes lose every close call. Menon et al. ("Long-tail learning via
logit adjustment", ICLR 2021) correct for it in one of two places:

- **in the loss**: train on ``CE(f(x) + tau * log(pi), y)`` (`logit_adjusted_cross_entropy`)
  and predict ``argmax f(x)``. With ``tau = 1`` this is the balanced softmax of Ren et al.
  2020; ``tau = 0`` is plain cross-entropy;
- **after training** (post-hoc): train on plain cross-entropy and predict
  ``argmax f(x) - tau * log(pi)`` (`posthoc_adjust`).

Both target the balanced error (the mean per-class error) for ``tau = 1``. The offset
``tau * log(pi)`` (`log_prior_offset`) comes from the training class counts; a class
with no training sample has prior 0 and no finite log: it is refused.

Examples:
    >>> import torch
    >>> [round(p, 4) for p in log_prior_offset([90, 10]).exp().tolist()]  # tau = 1: the prior
    [0.9, 0.1]
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lightning_recipes._core.loss_path import shift_logits
from lightning_recipes._core.validate import is_real
from lightning_recipes.errors import config_error
from lightning_recipes.imbalance.weights import _as_counts

__all__ = ["check_tau", "log_prior_offset", "logit_adjusted_cross_entropy", "posthoc_adjust"]

Counts = Sequence[int] | npt.NDArray[Any] | Tensor


def check_tau(tau: Any) -> float:
    """``tau`` as a float, or a `RecipeConfigError`: a finite number >= 0.

    Examples:
        >>> check_tau(1)
        1.0
    """
    if not is_real(tau) or not math.isfinite(tau) or tau < 0:
        raise config_error(
            "tau",
            tau,
            "Pass a finite number >= 0: 1.0 is the paper's (balanced error); 0 does nothing.",
        )
    return float(tau)


def log_prior_offset(counts: Counts, tau: float = 1.0) -> Tensor:
    """``tau * log(pi)``, ``pi_c = n_c / n`` the class prior of the training counts.

    Args:
        counts: Training samples per class (index = class id), e.g. ``np.bincount(y)``.
        tau: The scaling (temperature) of the adjustment, >= 0.

    Returns:
        One float32 value per class (all 0 for ``tau = 0``).

    Raises:
        RecipeConfigError: For invalid counts (as `class_weights`), a ``tau`` that is not
            a finite number >= 0, or a class with no training sample (its prior is 0:
            ``log 0`` has no finite value; in the loss it would remove the class, after
            training it would predict it for every input).

    Examples:
        >>> log_prior_offset([50, 50], tau=2.0).tolist()
        [-1.3862943649291992, -1.3862943649291992]
    """
    values = _as_counts(counts)
    tau = check_tau(tau)
    empty = np.flatnonzero(values == 0)
    if empty.size:
        raise config_error(
            "counts",
            values.astype(np.int64).tolist() if values.size <= 16 else f"<{values.size} counts>",
            f"Classes {empty.tolist()} have no training sample: their prior is 0 and log 0 "
            "has no finite value. Train on data holding every class, or pass num_classes= "
            "equal to the classes present (relabelled 0..C-1).",
        )
    return torch.as_tensor(tau * np.log(values / values.sum()), dtype=torch.float32)


def logit_adjusted_cross_entropy(
    logits: Tensor, target: Tensor, counts: Counts, tau: float = 1.0, **kwargs: Any
) -> Tensor:
    """The logit-adjusted loss ``CE(logits + tau * log(pi), target)`` (Menon et al., eq. 10).

    ``tau = 1`` is the balanced softmax (Ren et al. 2020); ``tau = 0`` is
    ``F.cross_entropy(logits, target)``. The `LogitAdjustment` callback computes the same
    sum through the library's loss path, on the module's own ``F.cross_entropy`` call.

    Args:
        logits: Scores, classes along dimension 1 (``(N, C)`` or ``(N, C, d1, ...)``).
        target: Class indices (or class probabilities), as ``F.cross_entropy`` takes them.
        counts: Training samples per class.
        tau: The scaling of the adjustment.
        **kwargs: Passed on to ``F.cross_entropy`` (``weight``, ``reduction``, ...).

    Returns:
        The loss.

    Examples:
        >>> logits, y = torch.zeros(2, 2), torch.tensor([0, 1])
        >>> round(float(logit_adjusted_cross_entropy(logits, y, [80, 20])), 4)  # -log .8, -log .2
        0.9163
    """
    offset = log_prior_offset(counts, tau)
    return F.cross_entropy(shift_logits(logits, offset), target, **kwargs)


def posthoc_adjust(logits: Tensor, counts: Counts, tau: float = 1.0) -> Tensor:
    """Post-hoc logit adjustment: ``logits - tau * log(pi)`` (Menon et al., eq. 8).

    Its argmax is the prediction for balanced error of a model trained on plain
    cross-entropy; the rare classes gain ``tau * log(n / n_c)`` over the frequent ones.

    Args:
        logits: Scores, classes along dimension 1 (dimension 0 when one-dimensional).
        counts: Training samples per class.
        tau: The scaling of the adjustment.

    Returns:
        The adjusted scores.

    Examples:
        >>> posthoc_adjust(torch.tensor([[1.0, 0.0]]), [90, 10]).argmax(1).tolist()
        [1]
    """
    return shift_logits(logits, -log_prior_offset(counts, tau))
