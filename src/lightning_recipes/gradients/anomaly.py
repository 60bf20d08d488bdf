"""Vanishing/exploding gradient detection over logged group norms (pure Python)."""

import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["REMEDIES", "Anomaly", "AnomalyTracker", "ThresholdMode", "anomaly_warning"]

ThresholdMode = Literal["absolute", "relative"]
AnomalyKind = Literal["vanishing", "exploding"]

REMEDIES = {
    "vanishing": (
        "Usual remedies: ReLU/GELU instead of sigmoid/tanh in deep stacks, He init for ReLU "
        "(Xavier for tanh), normalisation layers (BatchNorm/LayerNorm), residual connections, "
        "a higher learning rate for the affected layers."
    ),
    "exploding": (
        "Usual remedies: gradient clipping (GradientMonitor(clip='norm', max_norm=1.0)), a "
        "lower learning rate or a warm-up, normalisation layers, careful init (smaller gain)."
    ),
}


@dataclass(frozen=True)
class Anomaly:
    """A group whose gradient norm stayed out of bounds for ``patience`` checks.

    Attributes:
        group: The group's name.
        kind: ``"vanishing"`` or ``"exploding"``.
        value: The latest norm.
        bound: The bound it crossed (absolute, or the median times the factor).
        checks: Consecutive checks out of bounds.
    """

    group: str
    kind: AnomalyKind
    value: float
    bound: float
    checks: int

    def describe(self) -> str:
        """One line: group, value, bound."""
        side = "<" if self.kind == "vanishing" else ">"
        return (
            f"{self.group}: {self.kind} (norm {self.value:.3g} {side} {self.bound:.3g} "
            f"for {self.checks} checks)"
        )


class AnomalyTracker:
    """Flag groups whose norm stays below/above a bound for ``patience`` consecutive checks.

    With ``mode="absolute"`` the bounds are the thresholds themselves. With
    ``mode="relative"`` they are factors of the group's running median over the last
    ``window`` checks (a group must have ``min_history`` checks first): ``vanish=1e-3``
    flags a norm that fell below a thousandth of its usual value, ``explode=100`` one that
    jumped to a hundred times it. Non-finite norms are ignored (the non-finite guard
    reports them). Each (group, kind) is reported once.

    Args:
        vanish: Lower bound or factor; None disables vanishing detection.
        explode: Upper bound or factor; None disables exploding detection.
        mode: ``"absolute"`` or ``"relative"``.
        patience: Consecutive out-of-bounds checks before a group is reported.
        window: Checks kept per group for the running median.
        min_history: Checks needed before relative bounds apply.

    Examples:
        >>> tracker = AnomalyTracker(vanish=1e-6, explode=None, patience=2)
        >>> tracker.update({"layer0": 1e-9, "layer1": 0.5})
        []
        >>> [a.group for a in tracker.update({"layer0": 1e-9, "layer1": 0.5})]
        ['layer0']
    """

    def __init__(
        self,
        vanish: float | None,
        explode: float | None,
        mode: ThresholdMode = "absolute",
        patience: int = 3,
        window: int = 50,
        min_history: int = 5,
    ) -> None:
        self.vanish = vanish
        self.explode = explode
        self.mode = mode
        self.patience = patience
        self.window = window
        self.min_history = min_history
        self.history: dict[str, deque[float]] = {}
        self.streaks: dict[str, int] = {}
        self.reported: set[str] = set()

    def _bounds(self, group: str) -> tuple[float | None, float | None]:
        if self.mode == "absolute":
            return self.vanish, self.explode
        past = self.history.get(group, ())
        if len(past) < self.min_history:
            return None, None
        median = statistics.median(past)
        low = self.vanish * median if self.vanish is not None else None
        high = self.explode * median if self.explode is not None else None
        return low, high

    def update(self, norms: Mapping[str, float]) -> list[Anomaly]:
        """Feed one check's norms; return the anomalies newly reaching ``patience``.

        Args:
            norms: ``{group: norm}`` of this check.

        Returns:
            Anomalies reported for the first time at this check.
        """
        found: list[Anomaly] = []
        for group, value in norms.items():
            if not math.isfinite(value):
                continue
            low, high = self._bounds(group)
            for kind, bound, out in (
                ("vanishing", low, low is not None and value < low),
                ("exploding", high, high is not None and value > high),
            ):
                key = f"{kind}:{group}"
                self.streaks[key] = self.streaks.get(key, 0) + 1 if out else 0
                if out and self.streaks[key] >= self.patience and key not in self.reported:
                    self.reported.add(key)
                    assert bound is not None
                    found.append(Anomaly(group, kind, value, bound, self.streaks[key]))  # type: ignore[arg-type]
            self.history.setdefault(group, deque(maxlen=self.window)).append(value)
        return found

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides future reports."""
        return {
            "history": {g: list(v) for g, v in self.history.items()},
            "streaks": dict(self.streaks),
            "reported": sorted(self.reported),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from `state_dict`.

        Args:
            state: What `state_dict` returned.
        """
        self.history = {g: deque(v, maxlen=self.window) for g, v in state["history"].items()}
        self.streaks = dict(state["streaks"])
        self.reported = set(state["reported"])


def anomaly_warning(anomalies: Sequence[Anomaly], step: int, stopping: bool) -> str:
    """The warning for the anomalies found at one check: groups, norms, usual remedies.

    Args:
        anomalies: What `AnomalyTracker.update` returned (not empty).
        step: The global step of the check.
        stopping: Whether training stops because of them.

    Returns:
        The warning text.

    Examples:
        >>> found = [Anomaly("layer0", "vanishing", 1e-9, 1e-8, 3)]
        >>> print(anomaly_warning(found, 12, stopping=False).splitlines()[0])
        GradientMonitor: vanishing gradients at global step 12:
    """
    kinds = sorted({a.kind for a in anomalies})
    lines = "\n  ".join(a.describe() for a in anomalies)
    remedies = " ".join(REMEDIES[k] for k in kinds)
    stop = " Stopping training (on_anomaly='stop')." if stopping else ""
    return (
        f"GradientMonitor: {' and '.join(kinds)} gradients at global step {step}:\n  {lines}\n"
        f"{remedies}{stop}"
    )
