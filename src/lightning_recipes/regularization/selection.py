"""Choose the modules a regularizer or an initializer acts on: by type and by name.

Pure functions, no Lightning: a module is selected when its class (or one of its base
classes) is named in ``types``, its qualified name matches one of the ``names`` globs
(when given) and none of the ``exclude`` globs. The default types are the layers whose
``weight`` is a kernel (Linear and convolutions), so normalisation layers and embeddings
are left alone unless named.
"""

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from lightning_recipes.errors import config_error

__all__ = [
    "DEFAULT_TYPES",
    "NORM_TYPES",
    "check_globs",
    "check_types",
    "is_type",
    "select_modules",
    "selected_parameters",
]

DEFAULT_TYPES: tuple[str, ...] = (
    "Linear",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
)
"""Layers whose ``weight`` is a kernel: what Keras calls a ``kernel_regularizer`` target."""

NORM_TYPES: tuple[str, ...] = (
    "_NormBase",  # BatchNorm*, InstanceNorm*, SyncBatchNorm
    "LayerNorm",
    "GroupNorm",
    "LocalResponseNorm",
    "RMSNorm",
)
"""Normalisation layers (their weights are scales, not kernels: never decayed by default)."""


def is_type(module: nn.Module, types: Sequence[str]) -> bool:
    """Whether ``module``'s class or a base class is named in ``types``.

    A name is a class name (``"Linear"``) or a dotted path (``"torch.nn.Linear"``).

    Examples:
        >>> is_type(nn.Linear(2, 2), ["Linear"]), is_type(nn.ReLU(), ["torch.nn.ReLU"])
        (True, True)
    """
    for cls in type(module).__mro__:
        if cls.__name__ in types or f"{cls.__module__}.{cls.__qualname__}" in types:
            return True
        if (
            cls.__module__.startswith("torch.nn.modules")
            and f"torch.nn.{cls.__qualname__}" in types
        ):
            return True
    return False


def _matches(name: str, globs: Sequence[str]) -> bool:
    return any(fnmatchcase(name, g) for g in globs)


def select_modules(
    root: nn.Module,
    types: Sequence[str] = DEFAULT_TYPES,
    names: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> list[tuple[str, nn.Module]]:
    """The submodules of ``root`` chosen by type and name, in module order.

    Args:
        root: The model.
        types: Class names (or dotted paths) of the modules to choose.
        names: Globs on the module's qualified name (``"backbone.*"``); None: any name.
        exclude: Globs of module names to leave out.

    Returns:
        ``(name, module)`` pairs, each module once.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
        >>> [n for n, _ in select_modules(net)]
        ['0', '3']
        >>> [n for n, _ in select_modules(net, exclude=["3"])]
        ['0']
    """
    chosen: list[tuple[str, nn.Module]] = []
    for name, module in root.named_modules():
        if not is_type(module, types):
            continue
        if names is not None and not _matches(name, names):
            continue
        if _matches(name, exclude):
            continue
        chosen.append((name, module))
    return chosen


def selected_parameters(
    modules: Sequence[tuple[str, nn.Module]], biases: bool = False
) -> list[tuple[str, nn.Parameter]]:
    """The ``weight`` (and, if asked, ``bias``) parameters of the chosen modules.

    Args:
        modules: Output of `select_modules`.
        biases: Also take each module's ``bias``.

    Returns:
        ``(qualified parameter name, parameter)`` pairs, each parameter once.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
        >>> [n for n, _ in selected_parameters(select_modules(net), biases=True)]
        ['0.weight', '0.bias', '1.weight', '1.bias']
    """
    seen: set[int] = set()
    out: list[tuple[str, nn.Parameter]] = []
    wanted = ("weight", "bias") if biases else ("weight",)
    for module_name, module in modules:
        for attr in wanted:
            param = getattr(module, attr, None)
            if isinstance(param, nn.Parameter) and id(param) not in seen:
                seen.add(id(param))
                out.append((f"{module_name}.{attr}" if module_name else attr, param))
    return out


def check_types(argument: str, value: Any) -> tuple[str, ...]:
    """Check a list of class names; return it as a tuple.

    Raises:
        RecipeConfigError: Unless ``value`` is a non-empty list of non-empty strings.
    """
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise config_error(
            argument, value, "Pass a non-empty list of class names, e.g. ['Linear', 'Conv2d']."
        )
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise config_error(
                argument, value, "Every entry must be a class name such as 'Linear'."
            )
    return tuple(value)


def check_globs(argument: str, value: Any, *, allow_none: bool = True) -> tuple[str, ...] | None:
    """Check a list of name globs (or None); return it as a tuple.

    Raises:
        RecipeConfigError: Unless ``value`` is None (when allowed) or a list of strings.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise config_error(
            argument, value, "Pass a list of module-name globs, e.g. ['backbone.*']."
        )
    for item in value:
        if not isinstance(item, str) or not item:
            raise config_error(argument, value, "Every entry must be a non-empty glob string.")
    return tuple(value)
