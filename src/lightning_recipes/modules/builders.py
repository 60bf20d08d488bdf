"""Small model builders: an MLP and a CNN with the usual knobs.

Each returns a `Backbone`: an ``nn.Sequential`` that knows its output width
(``out_features``), so a `Classifier` can put a head on it without being told. Every
activation is its own module instance (never reused), which attribution methods such as
DeepLift require.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

from torch import nn

from lightning_recipes._core.validate import is_int
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.initialization.schemes import (
    SCHEME_NAMES,
    Nonlinearity,
    Scheme,
    init_modules_,
    resolve_scheme,
)

__all__ = ["MLP", "Activation", "Backbone", "Init", "SmallCNN", "init_weights"]

Activation = Literal["relu", "tanh", "sigmoid", "gelu"]
Init = Literal["auto", "torch"] | Scheme
"""``"auto"``, ``"torch"`` or a scheme of `WeightInit`'s vocabulary (`SCHEME_NAMES`)."""

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}
_INITS = ("auto", "torch", *SCHEME_NAMES)
_GAINS: dict[str, Nonlinearity] = {
    "relu": "relu",
    "gelu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
}  # the nonlinearity whose gain each activation uses


class Backbone(nn.Sequential):
    """An ``nn.Sequential`` feature extractor that records its output width.

    Args:
        *layers: The layers, applied in order.
        out_features: The width of the features it returns.
    """

    def __init__(self, *layers: nn.Module, out_features: int) -> None:
        super().__init__(*layers)
        self.out_features = out_features


def _check_common(activation: str, dropout: float, init: str) -> None:
    if activation not in _ACTIVATIONS:
        raise choice_error("activation", activation, _ACTIVATIONS)
    if not 0.0 <= dropout < 1.0:
        raise config_error("dropout", dropout, "Pass a drop probability in [0, 1).")
    _check_init(init)


def _check_init(init: str) -> None:
    if init not in _INITS:
        raise choice_error("init", init, _INITS)
    if init == "lsuv":
        raise config_error(
            "init",
            init,
            "LSUV scales each layer on a data batch, which a builder does not have: build "
            "with init='orthogonal' and add WeightInit('lsuv') to the Trainer's callbacks.",
        )


def _check_widths(name: str, widths: Any) -> None:
    """Refuse widths that are not a list of positive integers (a bare 64 included)."""
    if isinstance(widths, str) or not isinstance(widths, Sequence):
        example = f"[{widths!r}]" if is_int(widths) else "[64, 32]"
        raise config_error(name, widths, f"Pass a list of layer widths, e.g. {name}={example}.")
    if not all(is_int(w) and w >= 1 for w in widths):
        raise config_error(name, tuple(widths), "Every width must be a positive integer.")


def init_weights(module: nn.Module, init: Init, activation: Activation) -> nn.Module:
    """Initialise every Linear and Conv weight in place; biases start at zero.

    ``init`` takes the same vocabulary as `WeightInit` (`SCHEME_NAMES`: canonical names
    and aliases, e.g. ``"he"`` = ``"kaiming_normal"``, ``"xavier"`` = ``"xavier_uniform"``),
    with the activation's gain (GELU counts as ReLU); ``"auto"`` picks He for ReLU and
    GELU, Xavier for tanh and sigmoid; ``"torch"`` keeps PyTorch's default
    initialisation. ``"lsuv"`` needs a data batch, so it is refused here: build with
    ``"orthogonal"`` and add ``WeightInit("lsuv")`` to the Trainer.

    Args:
        module: The model to initialise.
        init: The scheme.
        activation: The activation the layers feed, to pick the gain.

    Returns:
        ``module``, for chaining.

    Raises:
        RecipeConfigError: For an unknown ``init`` or ``activation``, or ``"lsuv"``.

    Examples:
        >>> from torch import nn
        >>> layer = init_weights(nn.Linear(4, 2), "he", "relu")
        >>> layer.bias.detach().abs().sum().item()
        0.0
    """
    _check_init(init)
    if activation not in _ACTIVATIONS:
        raise choice_error("activation", activation, _ACTIVATIONS)
    if init == "torch":
        return module
    nonlinearity = _GAINS[activation]
    if init == "auto":
        scheme: Scheme = "kaiming_normal" if nonlinearity == "relu" else "xavier_uniform"
    else:
        scheme = resolve_scheme(init)
    layers = [
        layer
        for layer in module.modules()
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]
    init_modules_(layers, scheme, nonlinearity)
    return module


class MLP(Backbone):
    """A multi-layer perceptron: ``[Linear -> (BatchNorm) -> activation -> (Dropout)] x N``.

    Args:
        in_features: Width of the input.
        hidden: Width of each hidden layer; ``out_features`` is the last one.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"gelu"``.
        dropout: Drop probability after each activation (0 disables it), or one probability
            per hidden layer (a search space can then tune each layer's dropout).
        batch_norm: Insert ``BatchNorm1d`` between each Linear and its activation.
        init: Weight initialisation: ``"auto"``, ``"torch"`` or a scheme of
            `WeightInit`'s vocabulary (``"he"``, ``"xavier"``, ``"orthogonal"``, ...;
            see `init_weights`).

    Examples:
        >>> import torch
        >>> net = MLP(64, hidden=(32, 16), dropout=0.1, batch_norm=True)
        >>> net(torch.zeros(5, 64)).shape, net.out_features
        (torch.Size([5, 16]), 16)
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128, 64),
        activation: Activation = "relu",
        dropout: float | Sequence[float] = 0.0,
        batch_norm: bool = False,
        init: Init = "auto",
    ) -> None:
        _check_widths("hidden", hidden)
        if len(hidden) == 0:
            raise config_error("hidden", tuple(hidden), "Pass at least one hidden width.")
        drops = [dropout] * len(hidden) if isinstance(dropout, int | float) else list(dropout)
        if len(drops) != len(hidden):
            raise config_error(
                "dropout",
                tuple(drops),
                f"Pass one probability, or one per hidden layer ({len(hidden)}).",
            )
        for drop in drops:
            _check_common(activation, drop, init)
        _check_widths("in_features", (in_features,))
        _check_widths("hidden", hidden)
        layers: list[nn.Module] = []
        width = in_features
        for out, drop in zip(hidden, drops, strict=True):
            layers.append(nn.Linear(width, out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(_ACTIVATIONS[activation]())
            if drop > 0:
                layers.append(nn.Dropout(drop))
            width = out
        super().__init__(*layers, out_features=width)
        init_weights(self, init, activation)


class SmallCNN(Backbone):
    """A small convolutional network for small images (e.g. 8x8 digits, 28x28 MNIST).

    Each stage is ``Conv3x3 -> (BatchNorm) -> activation``, followed by 2x2 max-pooling
    while the image is larger than 2x2; the network ends with global average pooling and
    dropout, so it accepts any image size.

    Args:
        in_channels: Channels of the input images.
        channels: Output channels of each stage; ``out_features`` is the last one.
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"gelu"``.
        dropout: Drop probability before the head (0 disables it).
        batch_norm: Insert ``BatchNorm2d`` after each convolution.
        init: Weight initialisation: ``"auto"``, ``"torch"`` or a scheme of
            `WeightInit`'s vocabulary (``"he"``, ``"xavier"``, ``"orthogonal"``, ...;
            see `init_weights`).
        image_size: Side of the (square) input images, to decide how often to pool.

    Examples:
        >>> import torch
        >>> net = SmallCNN(channels=(8, 16))
        >>> net(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 16])
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32),
        activation: Activation = "relu",
        dropout: float = 0.0,
        batch_norm: bool = True,
        init: Init = "auto",
        image_size: int = 8,
    ) -> None:
        _check_common(activation, dropout, init)
        _check_widths("in_channels", (in_channels,))
        _check_widths("image_size", (image_size,))
        _check_widths("channels", channels)
        if len(channels) == 0:
            raise config_error("channels", tuple(channels), "Pass at least one stage width.")
        _check_widths("channels", channels)
        layers: list[nn.Module] = []
        width, side = in_channels, image_size
        for out in channels:
            layers.append(nn.Conv2d(width, out, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(_ACTIVATIONS[activation]())
            if side > 2:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            width = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers, out_features=width)
        init_weights(self, init, activation)
