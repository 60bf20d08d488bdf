"""LR range-test suggestions: smoothing, cleaning, and where each rule picks."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_recipes import RecipeConfigError
from lightning_recipes.lr import SUGGESTIONS, ema_smooth, prepare_curve, slide, steep, valley
from lightning_recipes.lr.suggest import _longest_decreasing, lightning_steepest, minimum

LRS = np.logspace(-6, 0, 120)
X = np.log10(LRS)
# Flat, then a descent between 1e-5 and 1e-2, then divergence: the textbook curve.
TEXTBOOK = 2.3 - 2.0 / (1 + np.exp(-3 * (X + 3.5))) + np.where(X > -1.5, 8 * (X + 1.5) ** 2, 0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60), st.floats(0.0, 0.99))
def test_ema_smooth_matches_its_definition(values: list[float], beta: float) -> None:
    out = ema_smooth(values, beta)
    avg = 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        assert out[i] == pytest.approx(avg / (1 - beta ** (i + 1)), rel=1e-9, abs=1e-9)


def test_ema_smooth_has_no_bias_toward_zero() -> None:
    assert ema_smooth([5.0] * 10, 0.98).tolist() == pytest.approx([5.0] * 10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=40))
def test_longest_decreasing_is_longest(values: list[int]) -> None:
    y = np.asarray(values, dtype=float)
    start, end = _longest_decreasing(y)
    # O(n^2) reference: the length of the longest strictly decreasing subsequence.
    best = [1] * len(y)
    for i in range(len(y)):
        for j in range(i):
            if y[j] > y[i]:
                best[i] = max(best[i], best[j] + 1)
    assert y[start] >= y[end]
    assert start <= end
    assert max(best) == best[end]


def test_prepare_curve_cuts_a_diverged_tail_and_trims_the_start() -> None:
    losses = TEXTBOOK.copy()
    losses[100:] = np.nan
    losses[105] = 1.0  # finite again after the NaN: still cut
    curve = prepare_curve(LRS, losses)
    assert curve.offset == 10
    assert len(curve.lrs) == 90
    assert np.isfinite(curve.losses).all()


@pytest.mark.parametrize(
    ("lrs", "losses", "argument"),
    [
        (LRS[:5], TEXTBOOK[:5], "losses"),  # too short
        (LRS, np.r_[TEXTBOOK[:8], [np.inf] * 112], "losses"),  # diverged at once
        (LRS, TEXTBOOK[:-1], "losses"),  # lengths differ
        (LRS[::-1], TEXTBOOK, "lrs"),  # decreasing sweep
    ],
)
def test_prepare_curve_errors(lrs: np.ndarray, losses: np.ndarray, argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        prepare_curve(lrs, losses)


def test_too_short_error_says_what_to_do() -> None:
    with pytest.raises(RecipeConfigError, match=r"at least 10 finite points.*num_steps"):
        valley(LRS[:8], TEXTBOOK[:8])


def test_valley_picks_two_thirds_down_the_descent() -> None:
    curve = prepare_curve(LRS, TEXTBOOK)
    start, end = _longest_decreasing(curve.losses)
    pick = valley(LRS, TEXTBOOK)
    assert pick == curve.lrs[start + round(2 / 3 * (end - start))]
    assert curve.lrs[start] < pick < curve.lrs[end]
    assert 1e-5 < pick < 1e-2  # inside the textbook curve's descent


def test_steep_minimum_and_lightning_on_the_textbook_curve() -> None:
    curve = prepare_curve(LRS, TEXTBOOK)
    assert minimum(LRS, TEXTBOOK) == pytest.approx(curve.lrs[np.argmin(curve.losses)] / 10)
    assert 10**-4.5 < steep(LRS, TEXTBOOK) < 10**-2.5  # steepest near 10**-3.5 (EMA lag)
    # Lightning's linear-spacing gradient on a log sweep: pulled toward tiny rates (#21141).
    assert lightning_steepest(LRS, TEXTBOOK) < steep(LRS, TEXTBOOK) / 10


def test_slide_is_scale_free() -> None:
    base = slide(LRS, TEXTBOOK)
    assert slide(LRS, 1000 * TEXTBOOK + 7) == pytest.approx(base)
    assert slide(LRS, 0.001 * TEXTBOOK) == pytest.approx(base)
    assert 1e-6 < base < 1e-1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 150),
    seed=st.integers(0, 1000),
    nan_from=st.one_of(st.none(), st.floats(0.5, 1.0)),
)
def test_every_suggestion_stays_in_the_swept_range(
    n: int, seed: int, nan_from: float | None
) -> None:
    rng = np.random.default_rng(seed)
    lrs = np.logspace(-7, 1, n)
    losses = 2 - np.cumsum(rng.normal(0.01, 0.05, n))
    if nan_from is not None:
        losses[int(nan_from * n) :] = math.nan
    finite = int(np.isfinite(losses).sum())
    for name, suggest in SUGGESTIONS.items():
        if finite < 10 or (name == "lightning_steepest" and finite < 21):
            with pytest.raises(RecipeConfigError):
                suggest(lrs, losses)
            continue
        lr = suggest(lrs, losses)
        low = lrs[0] * (0.075 if name in ("minimum", "slide") else 1.0)
        assert low <= lr <= lrs[finite - 1], name


def test_the_start_trim_never_leaves_fewer_than_min_points() -> None:
    lrs = np.logspace(-5, 0, 11)
    curve = prepare_curve(lrs, np.linspace(2, 1, 11))
    assert curve.lrs.size == 10  # 10% of 11 is 1 point trimmed
    assert prepare_curve(lrs[:10], np.linspace(2, 1, 10)).lrs.size == 10  # nothing trimmed
    with pytest.raises(RecipeConfigError, match="at least 10"):
        prepare_curve(lrs[:9], np.linspace(2, 1, 9))
