"""The freeze-plan figure of `Freezer`: which backbone groups train at each epoch, at what rate."""

from collections.abc import Sequence
from typing import Any

import torch

from lightning_recipes._core.optional import new_figure

__all__ = ["plan_figure"]


def plan_figure(rows: Sequence[Sequence[float | None]], group_names: Sequence[str]) -> Any:
    """Draw a plan (``rows[epoch][group]``, None while frozen) as a heat map of log10 rates.

    Args:
        rows: The learning rate of every group at every epoch, groups bottom first.
        group_names: The groups' names, bottom first.

    Returns:
        A ``matplotlib.figure.Figure`` (needs the ``plots`` extra).
    """
    epochs = len(rows)
    figure = new_figure(
        "Freezer.plot_plan", figsize=(1.2 + 0.35 * epochs, 0.9 + 0.45 * len(group_names))
    )
    ax = figure.add_subplot()
    values = [[float("nan") if v is None else v for v in row] for row in rows]
    image = ax.imshow(
        torch.tensor(values).T.log10().numpy(), origin="lower", aspect="auto", cmap="viridis"
    )
    ax.set_xticks(range(epochs))
    ax.set_yticks(range(len(group_names)), list(group_names))
    ax.set_xlabel("epoch (blank: frozen)")
    ax.set_ylabel("backbone group (bottom first)")
    figure.colorbar(image, ax=ax, label="log10(learning rate)")
    return figure
