"""Learning-rate suggestions against the rules written by hand."""

import numpy as np

from lightning_recipes.lr import ema_smooth, lightning_steepest, prepare_curve, slide


def _sweep(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    lrs = np.logspace(-5, 0, n)
    t = np.linspace(0.0, 1.0, n)
    losses = (
        2.0 - 1.5 * t**2 + 40.0 * np.clip(t - 0.85, 0, None) ** 2
    )  # falls faster, then blows up
    return lrs, losses


def test_slide_walks_left_while_the_slopes_window_apart_differ() -> None:
    lrs, losses = _sweep()
    window, threshold = 5, 0.05
    curve = prepare_curve(lrs, losses)
    slopes = np.gradient(curve.losses, np.log10(curve.lrs)) / np.ptp(curve.losses)
    right = int(np.argmin(curve.losses))
    left, pick = right - window, right - window
    while left >= 0 and abs(slopes[right] - slopes[left]) > threshold:  # the rule, by hand
        pick, right, left = left, right - 1, left - 1
    assert pick < int(np.argmin(curve.losses)) - window  # the walk moved
    got = slide(lrs, losses, window=window, threshold=threshold, adjust=0.5)
    assert got == curve.lrs[pick] * 0.5


def test_lightning_steepest_drops_exactly_skip_begin_and_skip_end_points() -> None:
    lrs, clean = _sweep(40)
    for skip_end in (1, 3):
        losses = clean.copy()
        losses[40 - skip_end - 1 :] -= 1e4  # a cliff at the last point kept
        x = lrs[10 : 40 - skip_end]
        y = ema_smooth(losses)[10 : 40 - skip_end]
        expected = x[int(np.argmin(np.gradient(y, x)))]
        assert expected == x[-1]  # the last point kept is the steepest
        assert lightning_steepest(lrs, losses, skip_begin=10, skip_end=skip_end) == expected
