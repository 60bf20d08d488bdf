"""The early-stopping rules as pure functions, checked against Lightning's own decisions."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping

from lightning_recipes import RecipeConfigError
from lightning_recipes.stopping.rules import (
    EarlyStoppingReason,
    StopRule,
    improves,
    infer_mode,
    initial_state,
    judge,
)

# Multiples of 1/8 and deltas of 0.25: exact in float32 (Lightning's arithmetic) and float64.
values = st.integers(-40, 40).map(lambda i: i / 8) | st.sampled_from(
    [math.nan, math.inf, -math.inf]
)


def run_ours(rule: StopRule, sequence: list[float]) -> tuple[int | None, float, int, str]:
    state = initial_state(rule)
    for epoch, value in enumerate(sequence):
        verdict = judge(rule, state, value, epoch=epoch, step=epoch, monitor="m")
        state = verdict.state
        if verdict.stop:
            return epoch, state.best, state.wait, verdict.reason.name
    return None, state.best, state.wait, "NOT_STOPPED"


def run_lightning(
    sequence: list[float], **kwargs: float | int | str | None
) -> tuple[int | None, float, int, str]:
    reference = LightningEarlyStopping(monitor="m", **kwargs)  # type: ignore[arg-type]
    for epoch, value in enumerate(sequence):
        # The reference oracle: Lightning's private decision function, fed the same values.
        stop, _ = reference._evaluate_stopping_criteria(torch.tensor(value))
        if stop:
            return (
                epoch,
                float(reference.best_score),
                reference.wait_count,
                (reference.stopping_reason.name),
            )
    return None, float(reference.best_score), reference.wait_count, "NOT_STOPPED"


@settings(max_examples=300, deadline=None)
@given(
    sequence=st.lists(values, min_size=1, max_size=25),
    mode=st.sampled_from(["min", "max"]),
    patience=st.integers(0, 5),
    min_delta=st.sampled_from([0.0, 0.25, 1.0]),
    check_finite=st.booleans(),
    divergence=st.sampled_from([None, 3.0]),
    stopping=st.sampled_from([None, -2.5, 0.0]),
)
def test_decisions_equal_lightnings_on_any_sequence(
    sequence: list[float],
    mode: str,
    patience: int,
    min_delta: float,
    check_finite: bool,
    divergence: float | None,
    stopping: float | None,
) -> None:
    sign = 1 if mode == "min" else -1
    divergence_threshold = None if divergence is None else sign * divergence
    stopping_threshold = None if stopping is None else sign * stopping
    rule = StopRule(
        mode=mode,  # type: ignore[arg-type]
        patience=patience,
        min_delta=min_delta,
        check_finite=check_finite,
        divergence_threshold=divergence_threshold,
        stopping_threshold=stopping_threshold,
    )
    ours = run_ours(rule, sequence)
    theirs = run_lightning(
        sequence,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        check_finite=check_finite,
        divergence_threshold=divergence_threshold,
        stopping_threshold=stopping_threshold,
    )
    assert ours == theirs


def test_reaching_the_stopping_threshold_keeps_lightnings_best_but_locates_that_check() -> None:
    rule = StopRule(mode="min", stopping_threshold=0.5)
    # Lightning stops at the same check and leaves best_score at the previous value ...
    assert run_ours(rule, [1.0, 0.75, 0.375]) == (2, 0.75, 0, "STOPPING_THRESHOLD")
    assert run_lightning([1.0, 0.75, 0.375], stopping_threshold=0.5) == (
        2, 0.75, 0, "STOPPING_THRESHOLD",
    )  # fmt: skip
    # ... but the weights to keep are those of the check that reached the threshold.
    state = initial_state(rule)
    for epoch, value in enumerate([1.0, 0.75, 0.375]):
        verdict = judge(rule, state, value, epoch=epoch, step=10 * epoch, monitor="m")
        state = verdict.state
    assert (verdict.improved, state.best_epoch, state.best_step) == (True, 2, 20)


@settings(max_examples=200, deadline=None)
@given(
    best=st.floats(-100, 100),
    current=st.floats(-100, 100),
    delta=st.floats(0, 0.5),
)
def test_relative_delta_is_a_fraction_of_the_best_and_mirrors_between_modes(
    best: float, current: float, delta: float
) -> None:
    as_min = improves(current, best, mode="min", min_delta=delta, delta_mode="relative")
    as_max = improves(-current, -best, mode="max", min_delta=delta, delta_mode="relative")
    assert as_min == as_max
    assert as_min == (current + delta * abs(best) < best)


def test_relative_delta_is_scale_free() -> None:
    for scale in (1e-3, 1.0, 1e3):
        assert improves(0.97 * scale, scale, mode="min", min_delta=0.02, delta_mode="relative")
        assert not improves(0.99 * scale, scale, mode="min", min_delta=0.02, delta_mode="relative")
    # An absolute delta of 0.02 means nothing for a loss around 0.001:
    assert not improves(0.0005, 0.001, mode="min", min_delta=0.02)


def test_baseline_must_be_beaten_within_patience() -> None:
    rule = StopRule(mode="max", patience=2, baseline=0.9)
    assert run_ours(rule, [0.8, 0.85, 0.95]) == (1, 0.9, 2, "PATIENCE_EXHAUSTED")
    assert run_ours(rule, [0.8, 0.95, 0.9, 0.9]) == (3, 0.95, 2, "PATIENCE_EXHAUSTED")


def test_nan_never_improves_and_waits_when_not_checked() -> None:
    rule = StopRule(mode="min", patience=2, check_finite=False)
    assert run_ours(rule, [1.0, math.nan, math.nan]) == (2, 1.0, 2, "PATIENCE_EXHAUSTED")
    assert run_ours(StopRule(mode="min"), [1.0, math.nan]) == (1, 1.0, 0, "NON_FINITE_METRIC")


def test_the_best_check_is_located() -> None:
    rule = StopRule(mode="min", patience=3)
    state = initial_state(rule)
    for epoch, value in enumerate([3.0, 2.0, 2.5, 1.0, 1.5]):
        state = judge(rule, state, value, epoch=epoch, step=10 * epoch, monitor="m").state
    assert (state.best, state.best_epoch, state.best_step, state.wait) == (1.0, 3, 30, 1)
    assert judge(rule, state, 9.0, epoch=5, step=50, monitor="m").reason == (
        EarlyStoppingReason.NOT_STOPPED
    )


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("val_loss", "min"),
        ("train/loss_epoch", "min"),
        ("val_mae", "min"),
        ("val_acc", "max"),
        ("val/macro_f1", "max"),
        ("valid-auroc", "max"),
        ("val_acc_top1", "max"),
    ],
)
def test_auto_mode_reads_the_metric_name(name: str, mode: str) -> None:
    assert infer_mode(name) == mode


@pytest.mark.parametrize("name", ["val_metric", "score", "loss_over_acc"])
def test_auto_mode_refuses_names_it_cannot_read(name: str) -> None:
    with pytest.raises(RecipeConfigError, match="mode='min'"):
        infer_mode(name)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "up"}, "mode"),
        ({"patience": -1}, "patience"),
        ({"patience": 2.5}, "patience"),
        ({"min_delta": -0.1}, "min_delta"),
        ({"delta_mode": "percent"}, "min_delta_mode"),
        ({"stopping_threshold": 2.0, "divergence_threshold": 1.0}, "stopping_threshold"),
        ({"min_delta": "abc"}, "min_delta"),
        ({"min_delta": math.inf}, "min_delta"),
        ({"min_delta": True}, "min_delta"),
        ({"baseline": "abc"}, "baseline"),
        ({"baseline": math.nan}, "baseline"),
        ({"stopping_threshold": "0.5"}, "stopping_threshold"),
        ({"divergence_threshold": math.nan}, "divergence_threshold"),
        ({"check_finite": "yes"}, "check_finite"),
    ],
)
def test_bad_rules_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=name):
        StopRule(**{"mode": "min", **kwargs})  # type: ignore[arg-type]
