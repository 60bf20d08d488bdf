"""Activation statistics of one layer's output: the math of `ActivationMonitor`.

Pure functions, no Lightning. `activation_stats` turns one output tensor into a flat
vector of sums (so vectors from several batches or ranks add up), `summarize` reads the
mean, std, dead and saturated fractions back from such a vector. Fastai's "colourful
dimension" figure of these histograms is `lightning_recipes.activations.figure`.

A *unit* is a channel: dimension 1 of the output (the feature of a ``(N, C)`` output,
the channel of ``(N, C, H, W)``). A ReLU unit is *dead* when it is never positive on
the batch. A sigmoid / tanh unit is *saturated* when every value it takes on the batch
lies within ``eps`` of one of the function's bounds (where its gradient vanishes).
"""

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "ACTIVATION_TYPES",
    "Kind",
    "activation_stats",
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
