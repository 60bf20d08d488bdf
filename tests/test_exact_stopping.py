"""The early-stopping rules at their boundary values (exact floats, both modes)."""

import math
from collections.abc import Callable

import pytest
from lightning.pytorch import Callback, Trainer
from torch import nn

from lightning_recipes import EarlyStopping
from lightning_recipes.stopping.rules import (
    EarlyStoppingReason,
    StopRule,
    StopState,
    improves,
    initial_state,
    judge,
)
from tests.scripted import Scripted, one_batch


def _judge(rule: StopRule, state: StopState, value: float) -> tuple[bool, bool, str]:
    v = judge(rule, state, value, epoch=3, step=30, monitor="m")
    return v.improved, v.stop, v.reason.name


@pytest.mark.parametrize(
    ("field", "mode", "at", "past", "best"),
    [
        ("stopping_threshold", "min", 0.5, 0.25, 1.0),
        ("stopping_threshold", "max", 0.5, 0.75, 0.0),
        ("divergence_threshold", "min", 0.5, 0.75, 0.25),
        ("divergence_threshold", "max", 0.5, 0.25, 0.75),
    ],
)
def test_a_threshold_stops_only_strictly_beyond_it(
    field: str, mode: str, at: float, past: float, best: float
) -> None:
    rule = StopRule(mode=mode, patience=5, **{field: 0.5})  # type: ignore[arg-type]
    state = StopState(best=best)
    assert _judge(rule, state, at)[1:] == (False, "NOT_STOPPED")
    assert _judge(rule, state, past)[1:] == (True, field.upper())


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_patience_stops_at_exactly_patience_checks_without_improvement(patience: int) -> None:
    rule = StopRule(mode="min", patience=patience)
    state = judge(rule, initial_state(rule), 1.0, epoch=0, step=0, monitor="m").state
    for check in range(1, patience + 1):
        verdict = judge(rule, state, 1.0, epoch=check, step=check, monitor="m")  # equal: no gain
        state = verdict.state
        assert verdict.state.wait == check
        assert verdict.stop is (check == patience)
    assert state.best_epoch == 0


def test_patience_zero_stops_at_the_first_check_without_improvement() -> None:
    rule = StopRule(mode="max", patience=0)
    assert _judge(rule, StopState(best=1.0), 1.0)[1:] == (True, "PATIENCE_EXHAUSTED")


@pytest.mark.parametrize(
    ("mode", "best", "delta", "delta_mode", "at", "beyond"),
    [
        ("min", 1.0, 0.25, "absolute", 0.75, 0.5),
        ("max", 1.0, 0.25, "absolute", 1.25, 1.5),
        ("min", 2.0, 0.125, "relative", 1.75, 1.5),
        ("max", -2.0, 0.125, "relative", -1.75, -1.5),  # |best|: the margin stays positive
        ("min", 1.0, 0.0, "absolute", 1.0, 0.5),
    ],
)
def test_an_improvement_must_exceed_min_delta_strictly(
    mode: str, best: float, delta: float, delta_mode: str, at: float, beyond: float
) -> None:
    kwargs = {"mode": mode, "min_delta": delta, "delta_mode": delta_mode}
    assert not improves(at, best, **kwargs)  # type: ignore[arg-type]
    assert improves(beyond, best, **kwargs)  # type: ignore[arg-type]
    rule = StopRule(mode=mode, patience=5, min_delta=delta, delta_mode=delta_mode)  # type: ignore[arg-type]
    verdict = judge(rule, StopState(best=best, wait=2), beyond, epoch=7, step=70, monitor="m")
    assert (verdict.state.best, verdict.state.wait, verdict.state.best_epoch) == (beyond, 0, 7)
    verdict = judge(rule, StopState(best=best, wait=2), at, epoch=7, step=70, monitor="m")
    assert (verdict.state.best, verdict.state.wait, verdict.state.best_epoch) == (best, 3, None)


def test_the_first_value_improves_on_infinity_whatever_min_delta() -> None:
    rule = StopRule(mode="min", min_delta=10.0)
    assert judge(rule, initial_state(rule), 5.0, epoch=0, step=0, monitor="m").improved
    assert initial_state(StopRule(mode="max")).best == -math.inf


def test_a_value_equal_to_the_baseline_does_not_beat_it() -> None:
    rule = StopRule(mode="min", patience=1, baseline=0.5)
    assert _judge(rule, initial_state(rule), 0.5) == (False, True, "PATIENCE_EXHAUSTED")
    assert _judge(rule, initial_state(rule), 0.25)[0]


def test_non_finite_stops_unless_check_finite_is_off() -> None:
    state = StopState(best=1.0)
    assert _judge(StopRule(mode="min"), state, math.nan)[1:] == (True, "NON_FINITE_METRIC")
    assert _judge(StopRule(mode="min", check_finite=False), state, math.inf)[1] is False
    assert EarlyStoppingReason.NOT_STOPPED.name == "NOT_STOPPED"


class _PlansAChangeAt(Callback):
    """Another recipe's plan: the trainable set changes at the start of ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def planned_change_epochs(self, max_epochs: int) -> list[int]:
        return [self.epoch]

    def parameters_unfrozen_later(self, epoch: int, max_epochs: int) -> list[nn.Parameter]:
        return []


@pytest.mark.parametrize(
    ("patience", "wait", "stopped_at", "deferred"),
    [(2, True, 3, 0), (2, False, 2, 0), (1, True, 2, 1)],
)
def test_patience_counts_from_the_epoch_of_the_planned_change_itself(
    make_trainer: Callable[..., Trainer], patience: int, wait: bool, stopped_at: int, deferred: int
) -> None:
    loader = one_batch()
    stopping = EarlyStopping("val_loss", patience=patience, wait_for_unfreezing=wait)
    trainer = make_trainer(max_epochs=10, callbacks=[_PlansAChangeAt(2), stopping])
    trainer.fit(Scripted([1.0] * 10), loader, loader)
    # Epoch 0 is the best. The change at epoch 2 resets the wait at epoch 2's own check
    # (wait 1), so patience 2 runs out at epoch 3 (without waiting: at epoch 2). Patience 1
    # runs out at epoch 1, before the change (deferred), and again at epoch 2, the last
    # planned change itself, where the stop is no longer deferred.
    assert trainer.current_epoch == stopped_at + 1  # the epoch counter moves past the stop
    assert stopping.stopped_epoch == stopped_at
    assert stopping.patience_reset_at == (2 if wait else None)
    assert stopping.deferred_stops == deferred
