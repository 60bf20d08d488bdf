"""The figures of `Attribution`: a feature-importance bar chart and per-input heatmaps."""

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from lightning_recipes._core.optional import new_figure
from lightning_recipes.attribution.explanation import Explanation, feature_importance

__all__ = ["heatmaps_figure", "importance_figure"]


def importance_figure(result: Explanation, names: Sequence[str]) -> Any:
    """Draw the mean |attribution| of the 20 most important features, as horizontal bars.

    Args:
        result: The explanation of 2-D (tabular) inputs.
        names: One name per feature.

    Returns:
        The matplotlib figure.
    """
    overall, _ = feature_importance(result)
    order = overall.argsort(descending=True)[:20].tolist()[::-1]
    figure = new_figure("Attribution", figsize=(6, 0.3 * len(order) + 1.2))
    ax = figure.add_subplot()
    ax.barh([names[i] for i in order], [float(overall[i]) for i in order], color="C0")
    ax.set_xlabel(f"mean |attribution| ({result.method})")
    ax.set_title("Feature importance")
    return figure


def heatmaps_figure(sample: Tensor, result: Explanation) -> Any:
    """Draw up to 8 image inputs (top row) over their attribution heatmaps (bottom row).

    Channels are averaged for the image and summed for the heatmap; red pushes towards the
    explained class, blue away from it.

    Args:
        sample: The explained inputs, ``(N, ..., H, W)``.
        result: Their explanation.

    Returns:
        The matplotlib figure.
    """
    count = min(len(sample), 8)
    figure = new_figure("Attribution", figsize=(1.6 * count, 3.4))
    axes = figure.subplots(2, count, squeeze=False)
    for i in range(count):
        image = sample[i].reshape(-1, *sample.shape[-2:]).mean(dim=0)
        heat = result.attributions[i].reshape(-1, *sample.shape[-2:]).sum(dim=0)
        limit = float(heat.abs().max()) or 1.0
        axes[0][i].imshow(image.numpy(), cmap="gray")
        axes[0][i].set_title(f"class {int(result.target[i])}", fontsize=8)
        axes[1][i].imshow(heat.numpy(), cmap="bwr", vmin=-limit, vmax=limit)
        for ax in (axes[0][i], axes[1][i]):
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle(f"{result.method}: red pushes towards the class, blue away")
    return figure
