"""The outcome of one learning-rate range test: the curve, every suggestion, the choice."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from lightning_recipes._core.optional import new_figure
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.lr.suggest import (
    SUGGESTIONS,
    Floats,
    _finite_prefix,
    ema_smooth,
    landing,
    prepare_curve,
)

__all__ = [
    "BOUNDARY_SHARE",
    "DROP_WINDOW",
    "MIN_DROP",
    "TURN_UP",
    "LRFinderResult",
    "all_suggestions",
    "boundary",
]

Boundary = Literal["low", "high"]

BOUNDARY_SHARE = 0.05
"""How close to an end of the sweep a rule may land (a share of its steps, at least 2)."""

TURN_UP = 0.25
"""The share above the lowest smoothed loss that a raw loss past the pick must reach for the
sweep to count as having turned up (its last steps may be too few for the smoothed loss)."""

MIN_DROP = 0.10
"""The share of its starting value by which the loss (averaged over `DROP_WINDOW` steps)
must fall somewhere in the sweep for the curve to show a descent (scale-free, so any loss
works). Measured on digits: 54-81% with real labels, 1-3% with random ones."""

DROP_WINDOW = 5
"""Steps averaged to judge the drop: enough to damp batch noise, few enough for a short
sweep (the suggestions' EMA lags too much on 30 steps)."""


def boundary(
    lrs: Sequence[float] | Floats,
    losses: Sequence[float] | Floats,
    rule: str,
    *,
    stopped_early: str | None = None,
) -> tuple[Boundary, str] | None:
    """Whether a rule's pick sits at an end of the sweep, where it cannot be trusted.

    A range test brackets a good learning rate only if the loss first falls and later
    turns up. The pick is refused when:

    - ``"high"``: the sweep ran to ``max_lr`` without stopping early, the rule landed
      within a few steps of its end, and no later raw loss rose `TURN_UP` above the
      lowest smoothed loss: the loss never turned up, the good rates may lie beyond
      ``max_lr`` (typical when most parameters are frozen);
    - ``"low"``: the rule landed within a few steps of the start of the usable curve
      (after `prepare_curve`'s trim), or the loss never fell by `MIN_DROP` of its starting
      value (data without signal): there is no descent to read.

    "A few steps" is `BOUNDARY_SHARE` of the finite steps, at least 2.

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.
        rule: The rule of `SUGGESTIONS` whose pick is judged.
        stopped_early: Why the sweep stopped before ``max_lr`` (``None``: it did not).

    Returns:
        ``None`` if the pick is inside the sweep, else ``("low" | "high", reason)``.

    Raises:
        RecipeConfigError: If the curve is too short for the rule.

    Examples:
        >>> import numpy as np
        >>> lrs = np.logspace(-6, 1, 100)
        >>> boundary(lrs, np.linspace(2.0, 1.0, 100), "minimum")[0]  # never turned up
        'high'
        >>> boundary(lrs, np.full(100, 2.3), "minimum")[0]  # never fell
        'low'
        >>> x = np.log10(lrs)
        >>> print(boundary(lrs, 2 - np.tanh(x + 3) + np.maximum(x + 1, 0) ** 2, "minimum"))
        None
    """
    index, _ = landing(rule, lrs, losses)
    curve = prepare_curve(lrs, losses)
    steps = curve.offset + len(curve.lrs)  # the finite prefix
    margin = max(2, math.ceil(BOUNDARY_SHARE * steps))
    at = f"'{rule}' landed on step {index + 1} of {steps}"
    lowest = float(curve.losses.min())
    after = np.asarray(losses, dtype=np.float64)[index + 1 : steps]
    turned_up = bool(after.size) and float(after.max()) > lowest + TURN_UP * abs(lowest)
    if stopped_early is None and index >= steps - 1 - margin and not turned_up:
        return "high", (
            f"{at}, within {margin} steps of max_lr={float(lrs[steps - 1]):.3g}, and the loss "
            "never turned up: the sweep did not reach the rates where training diverges, so "
            "the best rate may lie beyond it (few trainable parameters, e.g. a frozen "
            "backbone, diverge late). Raise max_lr."
        )
    if index <= curve.offset + margin:
        return "low", (
            f"{at}, within {margin} steps of the start of the curve "
            f"(lr {float(curve.lrs[0]):.3g}): the loss did not fall along the sweep, so "
            "there is no descent to read. Check that the data carries signal, or lower min_lr."
        )
    raw = np.asarray(losses, dtype=np.float64)[curve.offset : steps]
    window = min(DROP_WINDOW, raw.size)
    level = np.convolve(raw, np.full(window, 1.0 / window), mode="valid")
    start, low = float(level[0]), float(level.min())
    if start - low < MIN_DROP * abs(start):
        return "low", (
            f"the loss never fell by {MIN_DROP:.0%} (its {window}-step average went from "
            f"{start:.4g} to at best {low:.4g}): the curve shows no descent to read a learning "
            "rate from. Check that the data carries signal (labels without signal give a flat "
            "curve) and that the parameters that should train have requires_grad=True; "
            "mid-training, the weights may already sit where no rate of the sweep helps."
        )
    return None


def all_suggestions(
    lrs: Sequence[float] | Floats, losses: Sequence[float] | Floats
) -> dict[str, float | None]:
    """Every rule of `SUGGESTIONS` applied to one curve.

    Args:
        lrs: Learning rates of the sweep.
        losses: Raw losses.

    Returns:
        ``{rule name: learning rate}``, ``None`` for a rule the curve is too short for.
    """
    picks: dict[str, float | None] = {}
    for name, rule in SUGGESTIONS.items():
        try:
            picks[name] = rule(lrs, losses)
        except RecipeConfigError:
            picks[name] = None
    return picks


@dataclass
class LRFinderResult:
    """One range test.

    Attributes:
        lrs: The learning rates tried, one per optimizer step, in order.
        losses: The raw loss at each step: the mean over the micro-batches of the step
            (not divided by ``accumulate_grad_batches``) and over ranks.
        suggestion: The name of the rule that chose the learning rate.
        suggestions: Every rule's pick (``None`` where the curve was too short for it).
        chosen: The learning rate chosen (``suggestions[suggestion]``), ``None`` if the
            curve was too short.
        previous_lr: The optimizer's reference learning rate before the test.
        applied: Whether ``chosen`` was written to the optimizer.
        written_to: The module attributes / hparams that received ``chosen``.
        epoch: The epoch at which the test ran.
        global_step: The global step at which the test ran.
        stopped_early: Why the sweep ended before its last step (``"diverged"`` or
            ``"non-finite loss"``), ``None`` if it ran to the end.
        boundary: ``"low"`` or ``"high"`` when the rule's pick sits at that end of the
            sweep and cannot be trusted (see `boundary`), else ``None``.
        boundary_reason: Why, in words (``None`` when ``boundary`` is).
        trainable_params: Parameters that trained during the sweep (those with
            ``requires_grad``: a frozen backbone's are not swept).
        total_params: All parameters of the module.
        not_applied: Why ``chosen`` was not applied (``None`` when it was, or when the
            result has not been through a finder): a pick at the boundary, a curve too
            short, ``update_lr=False``.

    Examples:
        >>> import numpy as np
        >>> lrs = np.logspace(-5, 0, 50)
        >>> result = LRFinderResult.from_curve(lrs, 2 - np.tanh(np.log10(lrs) + 3), "steep")
        >>> result.chosen == result.suggestions["steep"]
        True
    """

    lrs: list[float]
    losses: list[float]
    suggestion: str
    suggestions: dict[str, float | None] = field(default_factory=dict)
    chosen: float | None = None
    previous_lr: float | None = None
    applied: bool = False
    written_to: list[str] = field(default_factory=list)
    epoch: int = 0
    global_step: int = 0
    stopped_early: str | None = None
    boundary: Boundary | None = None
    boundary_reason: str | None = None
    not_applied: str | None = None
    trainable_params: int | None = None
    total_params: int | None = None

    @classmethod
    def from_curve(
        cls,
        lrs: Sequence[float] | Floats,
        losses: Sequence[float] | Floats,
        suggestion: str,
        **fields: Any,
    ) -> "LRFinderResult":
        """Build a result from a curve, computing every suggestion.

        Args:
            lrs: Learning rates of the sweep.
            losses: Raw losses.
            suggestion: The rule whose pick becomes ``chosen``.
            **fields: Other attributes (``previous_lr``, ``epoch``, ``stopped_early``,
                ...); ``boundary`` is judged from the curve, the rule and
                ``stopped_early``.

        Returns:
            The result.
        """
        picks = all_suggestions(lrs, losses)
        edge = None
        if picks[suggestion] is not None:
            edge = boundary(lrs, losses, suggestion, stopped_early=fields.get("stopped_early"))
        return cls(
            lrs=[float(v) for v in lrs],
            losses=[float(v) for v in losses],
            suggestion=suggestion,
            suggestions=picks,
            chosen=picks[suggestion],
            boundary=edge[0] if edge else None,
            boundary_reason=edge[1] if edge else None,
            **fields,
        )

    @property
    def smoothed(self) -> list[float]:
        """The losses smoothed by the suggestions' EMA, up to the first non-finite one."""
        _, losses = _finite_prefix(
            np.asarray(self.lrs, dtype=np.float64), np.asarray(self.losses, dtype=np.float64)
        )
        return [float(v) for v in ema_smooth(losses)]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (for checkpoints and JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "LRFinderResult":
        """Rebuild a result saved with `to_dict` (older results lack the newer fields)."""
        return cls(**state)

    @property
    def swept_share(self) -> float | None:
        """The share of the parameters that trained during the sweep (None if unknown)."""
        if not self.total_params or self.trainable_params is None:
            return None
        return self.trainable_params / self.total_params

    def plot(self, show_all: bool = True) -> Any:
        """Draw the curve with the chosen learning rate (and the other picks) marked.

        Args:
            show_all: Also mark every other rule's pick, as dotted lines.

        Returns:
            A ``matplotlib.figure.Figure`` (needs the ``plots`` extra).
        """
        figure = new_figure("LRFinderResult.plot", figsize=(7, 4.2))
        ax = figure.add_subplot()
        smoothed = self.smoothed
        ax.plot(self.lrs, self.losses, color="0.75", lw=1, label="loss")
        ax.plot(self.lrs[: len(smoothed)], smoothed, color="C0", lw=2, label="smoothed")
        ax.set_xscale("log")
        finite = [v for v in smoothed if math.isfinite(v)]
        if finite:
            raw = [v for v in self.losses[: len(finite)] if math.isfinite(v)]
            low = min(*finite, *raw)
            high = max(finite[: max(len(finite) // 2, 1)])
            ax.set_ylim(low - 0.1 * (high - low + 1e-12), high + 0.3 * (high - low + 1e-12))
        if show_all:
            others = [(n, lr) for n, lr in self.suggestions.items() if n != self.suggestion]
            for color, (name, lr) in zip(("C1", "C2", "C4", "C5", "C6"), others, strict=False):
                if lr is not None:
                    ax.axvline(lr, color=color, ls=":", lw=1.5, label=f"{name} {lr:.2g}")
        if self.chosen is not None:
            ax.axvline(
                self.chosen, color="C3", lw=2, label=f"{self.suggestion} (chosen) {self.chosen:.2g}"
            )
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        title = f"LR range test at epoch {self.epoch}"
        if self.stopped_early:
            title += f" (stopped: {self.stopped_early})"
        if self.boundary:
            title += f"\npick at the {self.boundary} end of the sweep: not trusted"
        ax.set_title(title)
        ax.legend(fontsize=8)
        return figure
