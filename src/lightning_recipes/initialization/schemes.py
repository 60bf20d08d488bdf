"""Weight initialisation schemes and LSUV, as pure functions on modules.

He/Kaiming (He et al. 2015), Xavier/Glorot (Glorot & Bengio 2010), orthogonal (Saxe et al.
2014) and LSUV (Mishkin & Matas 2016: orthonormal init, then scale each layer, in forward
order, until its output variance on a data batch is 1). Every random draw comes from the
``generator`` passed in, never from the global RNG, so the same seed gives the same
weights on every process.
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal, cast, get_args

import torch
from torch import Tensor, nn

__all__ = [
    "NONLINEARITIES",
    "SCHEMES",
    "SCHEME_ALIASES",
    "SCHEME_NAMES",
    "Nonlinearity",
    "Scheme",
    "init_modules_",
    "lsuv_",
    "resolve_scheme",
]

CanonicalScheme = Literal[
    "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal", "lsuv"
]
SchemeAlias = Literal[
    "he", "he_normal", "he_uniform", "kaiming", "xavier", "glorot", "glorot_normal",
    "glorot_uniform",
]  # fmt: skip
Scheme = Literal[CanonicalScheme, SchemeAlias]
"""Every name a scheme is accepted by (`SCHEME_NAMES`), as a type for YAML configs."""

SCHEMES: tuple[str, ...] = get_args(CanonicalScheme)
"""The initialisation schemes, by their canonical names."""

SCHEME_ALIASES: dict[str, str] = {
    "he": "kaiming_normal",
    "he_normal": "kaiming_normal",
    "he_uniform": "kaiming_uniform",
    "kaiming": "kaiming_normal",
    "xavier": "xavier_uniform",
    "glorot": "xavier_uniform",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
}
"""Other names of the schemes (Keras' ``he_normal``, ``glorot_uniform``, ...) -> canonical;
its keys are `SchemeAlias` (a test checks it)."""

SCHEME_NAMES: tuple[str, ...] = get_args(Scheme)
"""Every name a scheme is accepted by: the one vocabulary of `WeightInit` and `MLP`."""

Nonlinearity = Literal["relu", "leaky_relu", "tanh", "sigmoid", "selu", "linear"]
NONLINEARITIES: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "sigmoid", "selu", "linear")


def resolve_scheme(name: str) -> Scheme:
    """The canonical name of a scheme given by any of `SCHEME_NAMES`.

    Args:
        name: A canonical name or an alias.

    Returns:
        One of `SCHEMES`.

    Raises:
        ValueError: If ``name`` is not one of `SCHEME_NAMES` (callers that take it as an
            argument check it first and raise ``RecipeConfigError``).

    Examples:
        >>> resolve_scheme("he"), resolve_scheme("glorot_normal"), resolve_scheme("lsuv")
        ('kaiming_normal', 'xavier_normal', 'lsuv')
    """
    if not isinstance(name, str) or name not in SCHEME_NAMES:
        raise ValueError(f"Unknown scheme {name!r}; choose one of {', '.join(SCHEME_NAMES)}.")
    return cast(Scheme, SCHEME_ALIASES.get(name, name))


def init_modules_(
    modules: Sequence[nn.Module],
    scheme: Scheme,
    nonlinearity: Nonlinearity = "relu",
    *,
    bias: Literal["zeros", "keep"] = "zeros",
    generator: torch.Generator | None = None,
) -> int:
    """Re-initialise the ``weight`` (and bias) of each module in place.

    ``"lsuv"`` here does its first half only (orthogonal with gain 1); `lsuv_` scales.

    Args:
        modules: Modules with a ``weight`` of 2 or more dimensions (others are skipped).
        scheme: One of `SCHEME_NAMES` (a canonical name or an alias such as ``"he"``).
        nonlinearity: The activation after the layers (sets the gain of Kaiming, Xavier
            and orthogonal).
        bias: ``"zeros"`` sets every bias to 0; ``"keep"`` leaves it.
        generator: The source of random numbers (None: torch's global one).

    Returns:
        How many weights were initialised.

    Examples:
        >>> layer = nn.Linear(64, 32)
        >>> generator = torch.Generator().manual_seed(0)
        >>> init_modules_([layer], "orthogonal", "linear", generator=generator)
        1
        >>> bool(torch.allclose(layer.weight @ layer.weight.T, torch.eye(32), atol=1e-5))
        True
    """
    scheme = resolve_scheme(scheme)
    gain = nn.init.calculate_gain(nonlinearity) if nonlinearity != "linear" else 1.0
    count = 0
    with torch.no_grad():
        for module in modules:
            weight = getattr(module, "weight", None)
            if not isinstance(weight, Tensor) or weight.ndim < 2:
                continue
            kind = "leaky_relu" if nonlinearity == "leaky_relu" else nonlinearity
            if scheme == "kaiming_normal":
                nn.init.kaiming_normal_(weight, nonlinearity=kind, generator=generator)
            elif scheme == "kaiming_uniform":
                nn.init.kaiming_uniform_(weight, nonlinearity=kind, generator=generator)
            elif scheme == "xavier_normal":
                nn.init.xavier_normal_(weight, gain=gain, generator=generator)
            elif scheme == "xavier_uniform":
                nn.init.xavier_uniform_(weight, gain=gain, generator=generator)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain, generator=generator)
            else:  # "lsuv"
                nn.init.orthogonal_(weight, gain=1.0, generator=generator)
            bias_tensor = getattr(module, "bias", None)
            if bias == "zeros" and isinstance(bias_tensor, Tensor):
                bias_tensor.zero_()
            count += 1
    return count


def _first_tensor(output: Any) -> Tensor | None:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, list | tuple) and output and isinstance(output[0], Tensor):
        return output[0]
    return None


def _capture_into(captured: list[Tensor]) -> Callable[[nn.Module, Any, Any], None]:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        tensor = _first_tensor(output)
        if tensor is not None:
            captured.append(tensor.detach())

    return hook


def lsuv_(
    forward: Callable[[], Any],
    modules: Sequence[tuple[str, nn.Module]],
    *,
    tol: float = 0.1,
    max_iter: int = 10,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, float]:
    """Scale each module's weight until the variance of its output is 1 (Mishkin & Matas).

    Layers are processed in the given order (their order in the network, so each sees
    inputs already normalised). For each: run ``forward``, read the variance of the
    layer's output, divide the weight by its square root, until ``|var - 1| < tol`` or
    ``max_iter`` passes. Run it after an orthogonal init (`init_modules_` with
    ``"lsuv"``).

    Args:
        forward: Runs the model on a data batch (in eval mode and without gradients: the
            caller's choice).
        modules: ``(name, module)`` pairs to scale.
        tol: Accepted distance of the variance from 1.
        max_iter: Passes per layer at most.
        reduce: Sums a tensor over processes (DDP), so every rank scales by the same
            factor; None on one process.

    Returns:
        The output variance of each layer after scaling, by name (layers the batch never
        reached are left out).

    Examples:
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 16))
        >>> x = torch.randn(256, 16) * 5
        >>> variances = lsuv_(lambda: net(x), [("0", net[0]), ("2", net[2])])
        >>> all(abs(v - 1) < 0.1 for v in variances.values())
        True
    """
    result: dict[str, float] = {}
    for name, module in modules:
        weight = getattr(module, "weight", None)
        if not isinstance(weight, Tensor):
            continue
        captured: list[Tensor] = []

        handle = module.register_forward_hook(_capture_into(captured))
        try:
            variance = float("nan")
            for _ in range(max_iter):
                captured.clear()
                forward()
                if not captured:
                    break
                out = captured[0].double()
                stats = torch.stack(
                    [
                        out.sum(),
                        out.pow(2).sum(),
                        torch.tensor(out.numel(), dtype=torch.float64, device=out.device),
                    ]
                )
                if reduce is not None:
                    stats = reduce(stats)
                total, squares, count = stats.tolist()
                mean = total / count
                variance = squares / count - mean * mean
                if abs(variance - 1.0) < tol or not variance > 0:
                    break
                with torch.no_grad():
                    weight.div_(variance**0.5)
            if captured and variance == variance:
                result[name] = variance
        finally:
            handle.remove()
    return result
