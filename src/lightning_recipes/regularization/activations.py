"""Activation statistics of one layer's output, and fastai's "colourful dimension" figure.

Pure functions, no Lightning. `activation_stats` turns one output tensor into a flat
vector of sums (so vectors from several batches or ranks add up), `summarize` reads the
mean, std, dead and saturated fractions back from such a vector.

A *unit* is a channel: dimension 1 of the output (the feature of a ``(N, C)`` output,
the channel of ``(N, C, H, W)``). A ReLU unit is *dead* when it is never positive on
the batch. A sigmoid / tanh unit is *saturated* when every value it takes on the batch
lies within ``eps`` of one of the function's bounds (where its gradient vanishes).
"""

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_recipes._core.optional import new_figure

__all__ = [
    "ACTIVATION_TYPES",
    "Kind",
    "activation_stats",
    "activations_figure",
    "hist_range",
    "kind_of",
    "summarize",
]

Kind = Literal["relu", "sigmoid", "tanh", "other"]

ACTIVATION_TYPES: tuple[str, ...] = (
    "ReLU",
    "ReLU6",
    "LeakyReLU",
    "PReLU",
    "ELU",
    "SELU",
    "CELU",
    "GELU",
    "SiLU",
    "Mish",
    "Softplus",
    "Sigmoid",
    "Hardsigmoid",
    "Tanh",
    "Hardtanh",
    "Softsign",
)
"""The layers `ActivationMonitor` hooks by default: the activation functions."""

_KINDS: dict[str, Kind] = {
    "ReLU": "relu",
    "ReLU6": "relu",
    "Sigmoid": "sigmoid",
    "Hardsigmoid": "sigmoid",
    "Tanh": "tanh",
    "Hardtanh": "tanh",
    "Softsign": "tanh",
}
_HEAD = 6  # count, sum, sum of squares, dead units, saturated units, units


def kind_of(module: nn.Module) -> Kind:
    """``"relu"``, ``"sigmoid"``, ``"tanh"`` or ``"other"`` for a module.

    Examples:
        >>> kind_of(nn.ReLU()), kind_of(nn.Tanh()), kind_of(nn.Linear(2, 2))
        ('relu', 'tanh', 'other')
    """
    for cls in type(module).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    return "other"


def hist_range(kind: Kind, hist_max: float) -> tuple[float, float]:
    """The value range of a layer's histogram: the function's range, or ``±hist_max``.

    Examples:
        >>> hist_range("sigmoid", 10.0), hist_range("relu", 10.0), hist_range("other", 5.0)
        ((0.0, 1.0), (0.0, 10.0), (-5.0, 5.0))
    """
    if kind == "sigmoid":
        return 0.0, 1.0
    if kind == "tanh":
        return -1.0, 1.0
    if kind == "relu":
        return 0.0, hist_max
    return -hist_max, hist_max


def activation_stats(
    output: Tensor, kind: Kind, bins: int = 40, hist_max: float = 10.0, eps: float = 0.02
) -> Tensor:
    """Sums describing one output: a float64 vector of length ``6 + bins``.

    ``[count, sum, sum of squares, dead units, saturated units, units, histogram...]``;
    the histogram counts values clamped to `hist_range` in ``bins`` equal bins.

    Args:
        output: The layer's output, batch first.
        kind: From `kind_of`.
        bins: Histogram bins.
        hist_max: Upper end of the histogram of unbounded activations.
        eps: Distance from a bound that counts as saturated.

    Examples:
        >>> out = torch.tensor([[0.0, 1.0], [0.0, 2.0]])  # unit 0 never fires
        >>> summarize(activation_stats(out, "relu", bins=4), "relu")["dead"]
        0.5
    """
    with torch.no_grad():
        out = output.detach()
        if out.ndim == 0:
            out = out.reshape(1, 1)
        elif out.ndim == 1:
            out = out[:, None]
        units = out.transpose(0, 1).reshape(out.shape[1], -1).float()
        values = units.reshape(-1)
        head = torch.zeros(_HEAD, dtype=torch.float64, device=out.device)
        head[0] = values.numel()
        head[1] = values.sum(dtype=torch.float64)
        head[2] = values.double().pow(2).sum()
        head[5] = units.shape[0]
        if kind == "relu":
            head[3] = (units.amax(dim=1) <= 0).sum()
        elif kind in ("sigmoid", "tanh"):
            lo, hi = hist_range(kind, hist_max)
            near = (units <= lo + eps * (hi - lo) / 2) | (units >= hi - eps * (hi - lo) / 2)
            head[4] = near.all(dim=1).sum()
        lo, hi = hist_range(kind, hist_max)
        hist = torch.histc(values.clamp(lo, hi), bins=bins, min=lo, max=hi).double()
        return torch.cat([head, hist])


def summarize(vector: Sequence[float] | Tensor, kind: Kind = "other") -> dict[str, float]:
    """Mean, std, dead and saturated fractions from a (summed) `activation_stats` vector.

    ``dead`` is NaN for non-ReLU layers and ``saturated`` for layers other than sigmoid
    and tanh (the notion does not apply), unless the vector says otherwise.
    """
    v = vector.tolist() if isinstance(vector, Tensor) else list(vector)
    count, total, squares, dead, saturated, units = v[:_HEAD]
    mean = total / count if count else math.nan
    variance = max(squares / count - mean * mean, 0.0) if count else math.nan
    return {
        "mean": mean,
        "std": math.sqrt(variance) if count else math.nan,
        "dead": dead / units if units and kind == "relu" else math.nan,
        "saturated": saturated / units if units and kind in ("sigmoid", "tanh") else math.nan,
    }


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
