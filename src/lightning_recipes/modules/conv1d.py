"""The 1-D CNN of the MNIST-1D paper (Greydanus 2020), as a `Backbone`."""

import torch
from torch import nn
from typing_extensions import override

from lightning_recipes.errors import config_error
from lightning_recipes.modules.builders import (
    _ACTIVATIONS,
    Activation,
    Backbone,
    Init,
    _check_common,
    _check_widths,
    init_weights,
)

__all__ = ["Mnist1dCNN"]


class AsSignal(nn.Module):
    """Give flat ``(N, L)`` inputs a channel, ``(N, 1, L)``; ``(N, C, L)`` passes unchanged."""

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if x.dim() == 2 else x


def _conv_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


class Mnist1dCNN(Backbone):
    """The MNIST-1D paper's CNN: three strided 1-D convolutions, flattened (Greydanus 2020).

    ``Conv1d(in_channels, c, 5, stride 2, padding 1) -> ReLU -> Conv1d(c, c, 3, stride 2,
    padding 1) -> ReLU -> Conv1d(c, c, 3, stride 2, padding 1) -> ReLU -> Flatten``: on the
    40-long MNIST-1D signals that is ``25 x 5 = 125`` features, and the `Classifier`'s
    linear head (125 -> 10) completes the paper's network: 5,210 parameters, 92 % test
    accuracy here and 94 % in the paper (``benchmarks/results/mnist1d_baselines.md``). It
    accepts flat ``(N, length)`` inputs as well as channels-first
    ``(N, in_channels, length)`` ones, so either layout of `Mnist1dDataModule` works.

    Args:
        length: Length of the input signals (40 for MNIST-1D).
        in_channels: Channels of the input signals.
        channels: Output channels of each convolution (the paper's 25).
        activation: ``"relu"`` (the paper's), ``"tanh"``, ``"sigmoid"`` or ``"gelu"``.
        dropout: Drop probability on the flattened features (0, the paper's, disables it).
        init: Weight initialisation: ``"torch"`` (default, the paper's: PyTorch's own),
            ``"auto"``, ``"he"`` or ``"xavier"``.

    Examples:
        >>> import torch
        >>> net = Mnist1dCNN()
        >>> net(torch.zeros(2, 40)).shape, net.out_features
        (torch.Size([2, 125]), 125)
    """

    def __init__(
        self,
        length: int = 40,
        in_channels: int = 1,
        channels: int = 25,
        activation: Activation = "relu",
        dropout: float = 0.0,
        init: Init = "torch",
    ) -> None:
        _check_common(activation, dropout, init)
        _check_widths("length", (length,))
        _check_widths("in_channels", (in_channels,))
        _check_widths("channels", (channels,))
        layers: list[nn.Module] = [AsSignal()]
        width, size = in_channels, length
        for kernel in (5, 3, 3):
            size = _conv_length(size, kernel, stride=2, padding=1)
            if size < 1:
                raise config_error(
                    "length",
                    length,
                    "Pass signals of length 3 or more (three stride-2 convolutions).",
                )
            layers += [
                nn.Conv1d(width, channels, kernel, stride=2, padding=1),
                _ACTIVATIONS[activation](),
            ]
            width = channels
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers, out_features=channels * size)
        self.length = length
        self.in_channels = in_channels
        init_weights(self, init, activation)
