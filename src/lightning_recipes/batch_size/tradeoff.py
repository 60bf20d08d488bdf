"""The steps / examples trade-off of McCandlish et al. 2018, fitted to measured runs.

Training to a fixed target takes ``S`` optimizer steps and ``E = B S`` examples at batch
size ``B``. The paper's model is ``(S / S_min - 1)(E / E_min - 1) = 1``: at a tiny batch
the examples are used best (``E -> E_min``), at a huge one the steps are fewest
(``S -> S_min``), and the critical batch ``B_crit = E_min / S_min`` sits at the knee.
Solved for ``S``, the curve is ``S(B) = S_min + E_min / B``: linear in ``1 / B``, so a
weighted linear least-squares fit (relative residuals, since steps span decades) gives
``S_min``, ``E_min`` and ``B_crit`` without an iterative solver.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lightning_recipes.errors import config_error

__all__ = ["TradeoffFit", "fit_tradeoff", "tradeoff_steps"]


@dataclass(frozen=True)
class TradeoffFit:
    """The fitted trade-off curve.

    Attributes:
        s_min: The fewest steps any batch size can reach the target in.
        e_min: The fewest examples any batch size can reach the target with.
        b_crit: ``e_min / s_min``: the batch size at the knee (inf if ``s_min`` is 0).
        rel_rmse: Root mean square of the relative residuals ``(S_fit - S) / S``.
    """

    s_min: float
    e_min: float
    b_crit: float
    rel_rmse: float

    def steps(self, batch_size: float) -> float:
        """The fitted steps to the target at ``batch_size``."""
        return tradeoff_steps(batch_size, self.s_min, self.e_min)


def tradeoff_steps(batch_size: float, s_min: float, e_min: float) -> float:
    """``S(B) = S_min + E_min / B``, the paper's curve solved for the steps.

    Examples:
        >>> tradeoff_steps(100, s_min=50, e_min=10_000)  # B_crit = 200: 1.5x the fewest steps
        150.0
    """
    return float(s_min + e_min / batch_size)


def _solve(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares for non-negative coefficients of a 2-column design (active set)."""
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    if (coef >= 0).all():
        return np.asarray(coef)
    best: np.ndarray | None = None
    best_cost = math.inf
    for keep in (0, 1):  # one coefficient pinned at 0: the other fitted alone, clamped at 0
        column = design[:, keep]
        value = max(float(column @ target) / float(column @ column), 0.0)
        trial = np.zeros(2)
        trial[keep] = value
        cost = float(((design @ trial - target) ** 2).sum())
        if cost < best_cost:
            best, best_cost = trial, cost
    assert best is not None
    return best


def fit_tradeoff(batch_sizes: Sequence[float], steps: Sequence[float]) -> TradeoffFit:
    """Fit ``(S/S_min - 1)(E/E_min - 1) = 1`` to steps-to-target measured per batch size.

    Minimises the relative residuals ``sum(((S_min + E_min / B_i) - S_i) / S_i)^2`` with
    ``S_min, E_min >= 0``. Pass each batch size's steps to reach one target (ideally with
    its learning rate tuned, as in the paper); runs that never reached it must be left out,
    not passed as their step cap.

    Args:
        batch_sizes: At least two distinct positive batch sizes.
        steps: The steps each took to reach the target (positive).

    Returns:
        The fit, with ``b_crit = e_min / s_min``.

    Raises:
        RecipeConfigError: For mismatched lengths, fewer than two distinct batch sizes, or
            non-positive or non-finite values.

    Examples:
        >>> fit = fit_tradeoff([16, 64, 256, 1024], [650.0, 200.0, 87.5, 59.375])
        >>> round(fit.s_min), round(fit.e_min), round(fit.b_crit)
        (50, 9600, 192)
    """
    b = np.asarray(batch_sizes, dtype=np.float64)
    s = np.asarray(steps, dtype=np.float64)
    if b.shape != s.shape or b.ndim != 1:
        raise config_error(
            "batch_sizes, steps", (len(b), len(s)), "Pass one step count per batch size."
        )
    if not (np.isfinite(b).all() and np.isfinite(s).all() and (b > 0).all() and (s > 0).all()):
        raise config_error(
            "batch_sizes, steps",
            (list(batch_sizes), list(steps)),
            "Pass positive, finite batch sizes and step counts (leave runs that never "
            "reached the target out).",
        )
    if len(np.unique(b)) < 2:
        raise config_error(
            "batch_sizes", list(batch_sizes), "Pass at least two distinct batch sizes."
        )
    design = np.stack([1.0 / s, 1.0 / (b * s)], axis=1)  # rows divided by S_i: relative
    s_min, e_min = (float(v) for v in _solve(design, np.ones_like(s)))
    residual = design @ np.array([s_min, e_min]) - 1.0
    b_crit = e_min / s_min if s_min > 0 else math.inf
    return TradeoffFit(s_min, e_min, b_crit, float(np.sqrt((residual**2).mean())))
