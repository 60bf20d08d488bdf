"""The gradient-norm figure of `GradientMonitor`: norm per group over the steps."""

from collections.abc import Mapping, Sequence, Set
from typing import Any

from lightning_recipes._core.optional import new_figure

__all__ = ["norms_figure"]


def norms_figure(
    history: Sequence[tuple[int, Mapping[str, float]]],
    group_names: Sequence[str],
    frozen_groups: Set[str] = frozenset(),
    absent_groups: Mapping[str, int] | None = None,
    norm_type: float = 2.0,
) -> Any:
    """Draw each group's gradient norm over the steps (log scale), and the totals.

    Groups run from dark (first layers) to light (last), so a vanishing gradient shows as
    a depth gradient. A group is drawn only at the steps where it was recorded: frozen
    phases and other optimizers' steps are gaps, not zero norms; the title names them.

    Args:
        history: ``(global_step, {"total..." or group: norm})`` per logging step.
        group_names: Every group, in order (one group: only the totals are drawn).
        frozen_groups: Groups frozen at some logging step (labelled ``(frozen)``).
        absent_groups: ``{group: logging steps without a gradient}``.
        norm_type: p of the norms, for the axis label.

    Returns:
        A matplotlib ``Figure`` (needs the ``plots`` extra).

    Examples:
        >>> figure = norms_figure([(0, {"total": 1.0, "a": 0.6, "b": 0.8})], ["a", "b"])
        >>> [line.get_label() for line in figure.axes[0].get_lines()]
        ['a', 'b', 'total']
    """
    figure = new_figure("GradientMonitor(plot=True)", figsize=(8, 4.5))
    ax = figure.subplots()
    names = list(group_names) if len(group_names) > 1 else []
    absent = absent_groups or {}

    def series(key: str) -> tuple[list[int], list[float]]:
        points = [(step, values[key]) for step, values in history if key in values]
        return [s for s, _ in points], [v for _, v in points]

    for name, colour in zip(names, _depth_colours(len(names)), strict=True):
        label = f"{name} (frozen)" if name in frozen_groups else name
        ax.plot(*series(name), color=colour, lw=1, label=label)
    totals = sorted({k for _, values in history for k in values if k.startswith("total")})
    for i, key in enumerate(totals):
        ax.plot(*series(key), color="black", lw=2, ls=("-", "--", ":", "-.")[i % 4], label=key)
    ax.set_yscale("log")
    ax.set_xlabel("global step")
    ax.set_ylabel(f"gradient {norm_type:g}-norm")
    title = "Gradient norm per group (dark: first groups, light: last)"
    quiet = sorted(set(frozen_groups) | set(absent))
    if quiet:
        shown = ", ".join(quiet[:6]) + (", ..." if len(quiet) > 6 else "")
        frozen = "frozen" if set(quiet) <= set(frozen_groups) else "frozen or without gradient"
        title += f"\n{frozen} at some logging steps (not plotted there): {shown}"
    ax.set_title(title, fontsize=9)
    if len(names) <= 12:
        ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return figure


def _depth_colours(n: int) -> list[Any]:
    """Colours from dark to light, so a vanishing gradient shows as a depth gradient."""
    if n == 0:
        return []
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]
