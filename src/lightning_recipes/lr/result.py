"""The outcome of one learning-rate range test: the curve, every suggestion, the choice."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lightning_recipes._optional import new_figure
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.lr.suggest import SUGGESTIONS, Floats, _finite_prefix, ema_smooth

__all__ = ["LRFinderResult", "all_suggestions"]


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
            **fields: Other attributes (``previous_lr``, ``epoch``, ...).

        Returns:
            The result.
        """
        picks = all_suggestions(lrs, losses)
        return cls(
            lrs=[float(v) for v in lrs],
            losses=[float(v) for v in losses],
            suggestion=suggestion,
            suggestions=picks,
            chosen=picks[suggestion],
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
        """Rebuild a result saved with `to_dict`."""
        return cls(**state)

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
        ax.set_title(title)
        ax.legend(fontsize=8)
        return figure
