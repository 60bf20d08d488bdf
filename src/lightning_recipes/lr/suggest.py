"""Learning-rate suggestions from a range-test curve: pure functions, numpy in, float out.

Every suggestion takes the swept learning rates and the *raw* recorded losses, cleans the
curve the same way (`prepare_curve`: cut at the first non-finite loss, debiased EMA
smoothing, trim of the noisy start) and returns one learning rate. They are compared in
the LR recipe's benchmark against the best learning rate found by actually training.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lightning_recipes.errors import choice_error, config_error

__all__ = [
    "MIN_POINTS",
    "SUGGESTIONS",
    "Curve",
    "ema_smooth",
    "landing",
    "lightning_steepest",
    "minimum",
    "prepare_curve",
    "slide",
    "steep",
    "valley",
]

MIN_POINTS = 10
"""Fewest finite points a curve needs, after cutting, for any suggestion."""

Floats = npt.NDArray[np.float64]


def ema_smooth(values: Sequence[float] | Floats, beta: float = 0.98) -> Floats:
    """Exponential moving average with bias correction (as in Adam).

    ``avg_i = beta * avg_{i-1} + (1 - beta) * x_i`` and the result is
    ``avg_i / (1 - beta ** (i + 1))``, so early values are not pulled toward zero.

    Args:
        values: The raw series.
        beta: Smoothing factor in [0, 1); 0 returns the series unchanged.

    Returns:
        The smoothed series, same length.

    Examples:
        >>> ema_smooth([2.0, 2.0, 2.0], beta=0.9).round(6).tolist()
        [2.0, 2.0, 2.0]
    """
    if not 0.0 <= beta < 1.0:
        raise config_error("beta", beta, "Pass a smoothing factor in [0, 1).")
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    avg = 0.0
    for i, value in enumerate(x):
        avg = beta * avg + (1.0 - beta) * value
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


def _finite_prefix(x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """The points before the first non-finite learning rate or loss (a diverged tail)."""
    finite = np.isfinite(x) & np.isfinite(y)
    end = int(np.argmin(finite)) if not finite.all() else x.size
    return x[:end], y[:end]


@dataclass(frozen=True)
class Curve:
    """A cleaned LR range-test curve.

    Attributes:
        lrs: Learning rates, increasing.
        losses: Smoothed losses, all finite.
        offset: Index in the original arrays of ``lrs[0]``.
    """

    lrs: Floats
    losses: Floats
    offset: int


def prepare_curve(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    *,
    beta: float = 0.98,
    skip_start: float = 0.1,
) -> Curve:
    """Cut, smooth and trim a raw range-test curve.

    1. Keep points up to the first non-finite loss or learning rate (a diverged tail);
    2. smooth with `ema_smooth`;
    3. drop the first ``skip_start`` share of points (the EMA's warm-up and the flat start),
       but never so many that fewer than `MIN_POINTS` remain.

    Args:
        lrs: Learning rates of the sweep, increasing and positive.
        losses: Raw losses, one per learning rate.
        beta: EMA factor.
        skip_start: Share of leading points to drop, in [0, 0.5).

    Returns:
        The cleaned curve.

    Raises:
        RecipeConfigError: If the arrays differ in length, the learning rates are not
            positive and increasing, or fewer than `MIN_POINTS` points remain.
    """
    x = np.asarray(lrs, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise config_error(
            "losses", f"<{y.size} values>", f"Pass one loss per learning rate ({x.size})."
        )
    if not 0.0 <= skip_start < 0.5:
        raise config_error("skip_start", skip_start, "Pass a share in [0, 0.5).")
    x, y = _finite_prefix(x, y)
    if x.size and (np.any(x <= 0) or np.any(np.diff(x) <= 0)):
        raise config_error("lrs", "<sweep>", "Learning rates must be positive and increasing.")
    smoothed = ema_smooth(y, beta)
    start = min(int(skip_start * x.size), max(x.size - MIN_POINTS, 0))
    if x.size - start < MIN_POINTS:
        raise config_error(
            "losses",
            f"<{x.size} finite points>",
            f"A suggestion needs at least {MIN_POINTS} finite points after dropping the first "
            f"{start}: sweep more steps (num_steps) or a narrower LR range.",
        )
    return Curve(x[start:], smoothed[start:], start)


def _slopes(curve: Curve) -> Floats:
    """D loss / d log10(lr) along the curve."""
    return np.gradient(curve.losses, np.log10(curve.lrs))


def steep(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> float:
    """The learning rate where the loss falls fastest against log10(lr).

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.

    Returns:
        The suggested learning rate.

    Examples:
        >>> import numpy as np
        >>> lrs = np.logspace(-5, 0, 100)
        >>> losses = 2 - np.tanh(3 * (np.log10(lrs) + 2.5))   # steepest at 10**-2.5
        >>> -3.0 < float(np.log10(steep(lrs, losses))) < -2.0  # the EMA lags a little
        True
    """
    return _steep(lrs, losses)[1]


def _steep(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> tuple[int, float]:
    curve = prepare_curve(lrs, losses)
    i = int(np.argmin(_slopes(curve)))
    return curve.offset + i, float(curve.lrs[i])


def minimum(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> float:
    """A tenth of the learning rate at the lowest smoothed loss (fastai's ``minimum``).

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.

    Returns:
        The suggested learning rate.
    """
    return _minimum(lrs, losses)[1]


def _minimum(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> tuple[int, float]:
    curve = prepare_curve(lrs, losses)
    i = int(np.argmin(curve.losses))
    return curve.offset + i, float(curve.lrs[i]) / 10.0


def _longest_decreasing(values: Floats) -> tuple[int, int]:
    """Start and end index of the longest strictly decreasing subsequence (O(n log n))."""
    tails: list[float] = []  # tails[k]: largest last value of a decreasing run of length k+1
    tail_index: list[int] = []
    parent = [-1] * len(values)
    for i, value in enumerate(values):
        # Decreasing in `values` is increasing in `-values`: standard patience sorting.
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if -tails[mid] < -value:
                lo = mid + 1
            else:
                hi = mid
        parent[i] = tail_index[lo - 1] if lo > 0 else -1
        if lo == len(tails):
            tails.append(value)
            tail_index.append(i)
        else:
            tails[lo] = value
            tail_index[lo] = i
    end = tail_index[-1]
    start = end
    while parent[start] >= 0:
        start = parent[start]
    return start, end


def valley(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> float:
    """The learning rate two thirds of the way down the longest descent of the loss.

    Finds the longest strictly decreasing subsequence of the smoothed loss (robust to the
    small bumps that break a contiguous run), from index ``start`` to ``end``, and picks
    the point at ``start + round(2/3 * (end - start))``: on the log-spaced sweep that is
    two thirds of the descent in log10(lr), past its noisy beginning and before the
    flattening bottom. (fastai's ``valley`` documents two thirds but its code picks about
    half way: ``start + L//3 + L//6``.)

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.

    Returns:
        The suggested learning rate.

    Examples:
        >>> import numpy as np
        >>> lrs = np.logspace(-6, 0, 100)
        >>> x = np.log10(lrs)
        >>> losses = np.where(x < -1, 2 - np.clip(x + 5, 0, 4) / 2, 0.0 + 10 * (x + 1))
        >>> -4.0 < float(np.log10(valley(lrs, losses))) < -1.0
        True
    """
    return _valley(lrs, losses)[1]


def _valley(lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats) -> tuple[int, float]:
    curve = prepare_curve(lrs, losses)
    start, end = _longest_decreasing(curve.losses)
    i = start + round(2 / 3 * (end - start))
    return curve.offset + i, float(curve.lrs[i])


def slide(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    *,
    window: int = 15,
    threshold: float = 0.005,
    adjust: float = 0.75,
) -> float:
    """Walk left from the minimum while the slope still changes, then back off (scale-free).

    fastai's ``slide`` compares raw loss gradients with an absolute threshold, so its
    answer depends on the scale of the loss. Here the loss is first divided by its range
    over the curve and the slope is taken against log10(lr), so the same ``threshold``
    means the same thing for any loss. Starting at the lowest loss, the walk moves left
    while the slopes ``window`` points apart differ by more than ``threshold``; the
    suggestion is the learning rate where it stops, times ``adjust``.

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.
        window: Distance in points between the compared slopes.
        threshold: Slope difference (in loss ranges per decade) that counts as a change.
        adjust: Safety factor applied to the result.

    Returns:
        The suggested learning rate.
    """
    return _slide(lrs, losses, window=window, threshold=threshold, adjust=adjust)[1]


def _slide(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    *,
    window: int = 15,
    threshold: float = 0.005,
    adjust: float = 0.75,
) -> tuple[int, float]:
    if window < 1 or not threshold > 0 or not adjust > 0:
        raise config_error(
            "window/threshold/adjust", (window, threshold, adjust), "Pass positive values."
        )
    curve = prepare_curve(lrs, losses)
    span = float(np.ptp(curve.losses)) or 1.0
    slopes = _slopes(curve) / span  # the slope of the loss divided by its range
    right = int(np.argmin(curve.losses))
    left = right - window
    pick = max(left, 0)
    while left >= 0 and abs(slopes[right] - slopes[left]) > threshold:
        pick = left
        right -= 1
        left -= 1
    return curve.offset + pick, float(curve.lrs[pick]) * adjust


def lightning_steepest(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    *,
    skip_begin: int = 10,
    skip_end: int = 1,
) -> float:
    """Lightning's ``lr_find`` suggestion, kept for comparison.

    Smoothed loss, ``[skip_begin:-skip_end]``, gradient against the *linear* learning rate
    (Lightning >= 2.5.3), steepest descent. Against a log-spaced sweep the linear spacing
    makes the early, tightly spaced points dominate: this is the bias toward tiny
    learning rates reported in Lightning issue #21141.

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.
        skip_begin: Points dropped at the start.
        skip_end: Points dropped at the end.

    Returns:
        The suggested learning rate.
    """
    return _lightning_steepest(lrs, losses, skip_begin=skip_begin, skip_end=skip_end)[1]


def _lightning_steepest(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    *,
    skip_begin: int = 10,
    skip_end: int = 1,
) -> tuple[int, float]:
    x = np.asarray(lrs, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    x, y = _finite_prefix(x, y)
    y = ema_smooth(y)
    x, y = x[skip_begin : len(x) - skip_end], y[skip_begin : len(y) - skip_end]
    if x.size < max(MIN_POINTS, 2):
        raise config_error(
            "losses",
            f"<{x.size} points after skipping>",
            f"Sweep at least {MIN_POINTS + skip_begin + skip_end} finite steps.",
        )
    i = int(np.argmin(np.gradient(y, x)))
    return skip_begin + i, float(x[i])


Suggestion = Callable[[Sequence[float] | Floats, Sequence[float] | Floats], float]

SUGGESTIONS: dict[str, Suggestion] = {
    "valley": valley,
    "steep": steep,
    "minimum": minimum,
    "slide": slide,
    "lightning_steepest": lightning_steepest,
}
"""Every suggestion function by name."""

_LANDINGS: dict[
    str, Callable[[Sequence[float] | Floats, Sequence[float] | Floats], tuple[int, float]]
] = {
    "valley": _valley,
    "steep": _steep,
    "minimum": _minimum,
    "slide": _slide,
    "lightning_steepest": _lightning_steepest,
}


def landing(
    name: str, lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats
) -> tuple[int, float]:
    """Where a rule lands on the sweep, and what it suggests.

    The suggestion of some rules is the learning rate of one point of the curve times a
    safety factor (``minimum`` takes a tenth of the rate at the lowest loss); the
    *landing* is that point. Whether it sits at an end of the sweep says whether the
    suggestion can be trusted (see `LRFinderResult.boundary`).

    Args:
        name: A rule of `SUGGESTIONS`.
        lrs: Learning rates of the sweep.
        losses: Raw losses.

    Returns:
        The index in ``lrs`` of the point the rule chose, and its suggestion (equal to
        ``SUGGESTIONS[name](lrs, losses)``).

    Raises:
        RecipeConfigError: For an unknown rule or a curve too short for it.

    Examples:
        >>> import numpy as np
        >>> lrs = np.logspace(-6, 0, 50)
        >>> losses = np.linspace(2.0, 1.0, 50)  # still falling at the last step
        >>> index, lr = landing("minimum", lrs, losses)
        >>> index, bool(lr == lrs[-1] / 10)
        (49, True)
    """
    if name not in _LANDINGS:
        raise choice_error("suggestion", name, list(_LANDINGS))
    return _LANDINGS[name](lrs, losses)
