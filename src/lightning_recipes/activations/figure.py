"""Fastai's "colourful dimension": per layer, the histogram of activations over time.

Drawn by `ActivationMonitor(plot=True)` at fit end from the histograms of
`lightning_recipes.activations.stats.activation_stats`; needs the ``plots`` extra
(matplotlib), imported when a figure is drawn.
"""

from collections.abc import Sequence
from typing import Any

import torch

from lightning_recipes._core.optional import new_figure

__all__ = ["activations_figure"]


def activations_figure(
    steps: Sequence[int],
    histograms: dict[str, list[list[float]]],
    ranges: dict[str, tuple[float, float]],
    dead: dict[str, list[float]] | None = None,
) -> Any:
    """Fastai's "colourful dimension": per layer, the histogram of activations over time.

    Each panel is one layer: x the monitored steps, y the activation value, colour
    ``log(1 + count)``. A layer with collapsing activations shows a bright band at 0.

    Args:
        steps: The monitored global steps.
        histograms: Per layer, one histogram per step.
        ranges: Per layer, the histogram's value range.
        dead: Per layer, the dead fraction per step (drawn as a white line, right axis).

    Returns:
        A matplotlib ``Figure``.
    """
    names = list(histograms)
    figure = new_figure("ActivationMonitor(plot=True)", figsize=(8, 1.6 * max(len(names), 1) + 0.6))
    axes = figure.subplots(max(len(names), 1), 1, squeeze=False)[:, 0]
    first, last = (steps[0], steps[-1]) if steps else (0, 1)
    for ax, name in zip(axes, names, strict=False):
        image = torch.tensor(histograms[name], dtype=torch.float64).log1p().T.numpy()
        lo, hi = ranges[name]
        ax.imshow(
            image,
            origin="lower",
            aspect="auto",
            extent=(first, max(last, first + 1), lo, hi),
            cmap="viridis",
        )
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        if dead and name in dead and any(d == d for d in dead[name]):
            twin = ax.twinx()
            twin.plot(steps, dead[name], color="white", linewidth=1)
            twin.set_ylim(0, 1)
            twin.set_yticks([0, 1])
            twin.tick_params(labelsize=6)
    axes[-1].set_xlabel("global step")
    figure.suptitle("Activation histograms over training (colour: log(1 + count))", fontsize=9)
    return figure
