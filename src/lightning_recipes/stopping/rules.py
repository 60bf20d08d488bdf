"""The early-stopping decision as pure functions: one monitored value in, a verdict out.

The callback only fetches the value (averaged over ranks) and acts on the verdict; every
rule (improvement with absolute or relative ``min_delta``, patience, baseline, stopping
and divergence thresholds, non-finite values) lives here and is tested without a Trainer.
"""

import math
from dataclasses import dataclass, replace
from typing import Literal

from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from lightning_recipes._core.modes import Mode, infer_mode
from lightning_recipes._core.validate import is_number, is_real
from lightning_recipes.errors import choice_error, config_error

__all__ = [
    "EarlyStoppingReason",
    "Mode",
    "StopRule",
    "StopState",
    "Verdict",
    "improves",
    "infer_mode",
    "initial_state",
    "judge",
]

DeltaMode = Literal["absolute", "relative"]


def improves(
    current: float,
    best: float,
    *,
    mode: Mode,
    min_delta: float = 0.0,
    delta_mode: DeltaMode = "absolute",
) -> bool:
    """Whether ``current`` beats ``best`` by more than ``min_delta``.

    Absolute: ``current + min_delta < best`` (mode ``"min"``). Relative:
    ``current + min_delta * |best| < best``, i.e. a fraction of the best value, so the same
    ``min_delta`` means the same thing for a loss of 2.3 and one of 0.01. Mode ``"max"``
    mirrors both. An infinite ``best`` (nothing seen yet) is beaten by any finite value;
    NaN never improves.

    Args:
        current: The new value.
        best: The best value so far (or the baseline, or +-inf).
        mode: ``"min"`` or ``"max"``.
        min_delta: The margin, non-negative.
        delta_mode: ``"absolute"`` or ``"relative"``.

    Returns:
        True if ``current`` is an improvement.

    Examples:
        >>> improves(0.95, 1.0, mode="min", min_delta=0.1)
        False
        >>> improves(0.95, 1.0, mode="min", min_delta=0.04, delta_mode="relative")
        True
    """
    if math.isnan(current):
        return False
    if not math.isfinite(best):
        margin = 0.0
    elif delta_mode == "relative":
        margin = min_delta * abs(best)
    else:
        margin = min_delta
    # Lightning's arithmetic: ``current + delta < best`` (not ``current < best - delta``,
    # which rounds differently).
    if mode == "min":
        return current + margin < best
    return current - margin > best


@dataclass(frozen=True)
class StopRule:
    """When to stop: the configuration of an early-stopping callback.

    Attributes:
        mode: ``"min"`` or ``"max"``.
        patience: Checks without improvement before stopping (0 acts as 1).
        min_delta: Smallest change that counts as an improvement (>= 0).
        delta_mode: ``"absolute"`` or ``"relative"`` (a fraction of the best value).
        check_finite: Stop at the first NaN or infinite value.
        stopping_threshold: Stop as soon as the value is better than this.
        divergence_threshold: Stop as soon as the value is worse than this.
        baseline: The value to beat; checks that do not beat it count against patience.
    """

    mode: Mode
    patience: int = 3
    min_delta: float = 0.0
    delta_mode: DeltaMode = "absolute"
    check_finite: bool = True
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None
    baseline: float | None = None

    def __post_init__(self) -> None:
        """Validate every field, naming the bad one."""
        if self.mode not in ("min", "max"):
            raise choice_error("mode", self.mode, ("min", "max", "auto"))
        if isinstance(self.patience, bool) or not isinstance(self.patience, int):
            raise config_error("patience", self.patience, "Pass a whole number of checks.")
        if self.patience < 0:
            # 0 is accepted, as by Lightning: it stops at the first check without
            # improvement, like 1.
            raise config_error("patience", self.patience, "Pass 0 or more checks.")
        if not (is_real(self.min_delta) and math.isfinite(self.min_delta) and self.min_delta >= 0):
            raise config_error(
                "min_delta", self.min_delta, "Pass a non-negative margin (the sign follows mode)."
            )
        if self.delta_mode not in ("absolute", "relative"):
            raise choice_error("min_delta_mode", self.delta_mode, ("absolute", "relative"))
        if not isinstance(self.check_finite, bool):
            raise config_error("check_finite", self.check_finite, "Pass True or False.")
        for name in ("stopping_threshold", "divergence_threshold", "baseline"):
            value = getattr(self, name)
            if value is not None and not is_number(value):
                raise config_error(name, value, "Pass a number (a value of the metric) or None.")
        if self.baseline is not None and not math.isfinite(self.baseline):
            raise config_error("baseline", self.baseline, "Pass a finite value of the metric.")
        low = self.stopping_threshold if self.mode == "min" else self.divergence_threshold
        high = self.divergence_threshold if self.mode == "min" else self.stopping_threshold
        if low is not None and high is not None and not low < high:
            raise config_error(
                "stopping_threshold",
                self.stopping_threshold,
                f"With mode={self.mode!r} it must be on the good side of "
                f"divergence_threshold={self.divergence_threshold}.",
            )


@dataclass(frozen=True)
class StopState:
    """What the past checks decided, all the future depends on.

    Attributes:
        best: The best value so far (the baseline, or +-inf, before any improvement).
        wait: Checks since the last improvement.
        best_epoch: Epoch of the best check, None before any improvement.
        best_step: Global step of the best check, None before any improvement.
    """

    best: float
    wait: int = 0
    best_epoch: int | None = None
    best_step: int | None = None


def initial_state(rule: StopRule) -> StopState:
    """The state before any check: the baseline (or the worst value) is the one to beat.

    Args:
        rule: The stopping rule.

    Returns:
        A fresh state.
    """
    if rule.baseline is not None:
        return StopState(best=float(rule.baseline))
    return StopState(best=math.inf if rule.mode == "min" else -math.inf)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check.

    Attributes:
        state: The state after the check.
        improved: Whether this check is the new best.
        stop: Whether training should stop.
        reason: Why it stops (``EarlyStoppingReason.NOT_STOPPED`` if it does not).
        message: A sentence for the log (improvement or stop), or None.
    """

    state: StopState
    improved: bool
    stop: bool
    reason: EarlyStoppingReason
    message: str | None


def _worse(value: float, threshold: float, mode: Mode) -> bool:
    return value > threshold if mode == "min" else value < threshold


def judge(
    rule: StopRule, state: StopState, current: float, *, epoch: int, step: int, monitor: str
) -> Verdict:
    """Apply one check: Lightning's rules in Lightning's order, plus baseline and relative delta.

    1. A non-finite value stops (if ``check_finite``); the state is unchanged.
    2. A value better than ``stopping_threshold`` stops. As in Lightning, ``best`` and
       ``wait`` are unchanged; if the value beats the best (see `improves`), the verdict
       says ``improved`` and the state records this check's epoch and step as the best
       check, so the weights kept are those that reached the threshold.
    3. A value worse than ``divergence_threshold`` stops; the state is unchanged.
    4. An improvement becomes the best and resets the wait.
    5. Otherwise the wait grows, and training stops once it reaches ``patience``.

    Args:
        rule: The stopping rule.
        state: The state before this check.
        current: The monitored value (already averaged over ranks).
        epoch: The current epoch, recorded when the value is the best.
        step: The current global step, recorded likewise.
        monitor: The metric's name, for messages.

    Returns:
        The verdict, with the new state.

    Examples:
        >>> rule = StopRule(mode="min", patience=2)
        >>> v = judge(rule, initial_state(rule), 1.0, epoch=0, step=10, monitor="val_loss")
        >>> v.improved, v.stop, v.state.wait
        (True, False, 0)
        >>> v = judge(rule, v.state, 1.5, epoch=1, step=20, monitor="val_loss")
        >>> v = judge(rule, v.state, 1.2, epoch=2, step=30, monitor="val_loss")
        >>> v.stop, v.reason.name, v.state.best_epoch
        (True, 'PATIENCE_EXHAUSTED', 0)
    """
    reasons = EarlyStoppingReason
    best_text = f"{state.best:.3f}"
    if not math.isfinite(current) and rule.check_finite:
        return Verdict(
            state,
            False,
            True,
            reasons.NON_FINITE_METRIC,
            f"Monitored metric {monitor} = {current} is not finite. Previous best value was "
            f"{best_text}. Signaling Trainer to stop.",
        )
    sign = "<" if rule.mode == "min" else ">"
    better = improves(current, state.best, mode=rule.mode, min_delta=rule.min_delta,
                      delta_mode=rule.delta_mode)  # fmt: skip
    if rule.stopping_threshold is not None and _worse(rule.stopping_threshold, current, rule.mode):
        kept = replace(state, best_epoch=epoch, best_step=step) if better else state
        return Verdict(
            kept,
            better,
            True,
            reasons.STOPPING_THRESHOLD,
            f"Stopping threshold reached: {monitor} = {current} {sign} "
            f"{rule.stopping_threshold}. Signaling Trainer to stop.",
        )
    if rule.divergence_threshold is not None and _worse(
        current, rule.divergence_threshold, rule.mode
    ):
        return Verdict(
            state,
            False,
            True,
            reasons.DIVERGENCE_THRESHOLD,
            f"Divergence threshold reached: {monitor} = {current} {sign} "
            f"{rule.divergence_threshold}. Signaling Trainer to stop.",
        )
    if better:
        new = StopState(best=current, wait=0, best_epoch=epoch, best_step=step)
        if math.isfinite(state.best):
            relative = " (relative)" if rule.delta_mode == "relative" else ""
            text = (
                f"Metric {monitor} improved by {abs(state.best - current):.3f} >= "
                f"min_delta = {rule.min_delta}{relative}. New best score: {current:.3f}"
            )
        else:
            text = f"Metric {monitor} improved. New best score: {current:.3f}"
        return Verdict(new, True, False, reasons.NOT_STOPPED, text)
    waited = replace(state, wait=state.wait + 1)
    if waited.wait >= rule.patience:
        return Verdict(
            waited,
            False,
            True,
            reasons.PATIENCE_EXHAUSTED,
            f"Monitored metric {monitor} did not improve in the last {waited.wait} records. "
            f"Best score: {best_text}. Signaling Trainer to stop.",
        )
    return Verdict(waited, False, False, reasons.NOT_STOPPED, None)
