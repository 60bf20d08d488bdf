"""Choose the modules a regularizer or an initializer acts on: by type and by name.

Pure functions, no Lightning: a module is selected when its class (or one of its base
classes) is named in ``types``, its qualified name matches one of the ``names`` globs
(when given) and none of the ``exclude`` globs. The default types are the layers whose
``weight`` is a kernel (Linear and convolutions), so normalisation layers and embeddings
are left alone unless named.
"""

from collections.abc import Sequence
from fnmatch import fnmatchcase
from functools import cache
from typing import Any

from torch import nn

from lightning_recipes._core.validate import listing, names_sequence
from lightning_recipes.errors import config_error

__all__ = [
    "DEFAULT_TYPES",
    "NORM_TYPES",
    "check_globs",
    "check_selection",
    "check_types",
    "first_unmatched",
    "is_type",
    "name_matches",
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


def name_matches(name: str, globs: Sequence[str]) -> bool:
    """Whether a module or parameter name matches one of ``globs``: the one glob rule.

    A glob matches the whole dotted name, case-sensitively (``fnmatchcase``): ``"head"`` is
    the container, ``"head.*"`` what it holds. Every recipe that selects by name uses it.

    Examples:
        >>> name_matches("head.0.weight", ["head.*"]), name_matches("head", ["head.*"])
        (True, False)
    """
    return any(fnmatchcase(name, g) for g in globs)


def first_unmatched(names: Sequence[str], globs: Sequence[str]) -> str | None:
    """The first of ``globs`` that matches none of ``names`` (a typo), or None.

    Examples:
        >>> first_unmatched(["0.weight", "0.bias"], ["0.*", "1.*"])
        '1.*'
    """
    return next((g for g in globs if not any(name_matches(n, [g]) for n in names)), None)


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
        if names is not None and not name_matches(name, names):
            continue
        if name_matches(name, exclude):
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


@cache
def _torch_layer_names() -> frozenset[str]:
    """The class names of ``torch.nn`` (and ``_NormBase``), to catch a misspelt one early."""
    classes = {name: getattr(nn, name) for name in dir(nn)}
    classes["_NormBase"] = nn.modules.batchnorm._NormBase
    return frozenset(
        name
        for name, cls in classes.items()
        if isinstance(cls, type) and issubclass(cls, nn.Module)
    )


def check_types(argument: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """Check a list of class names; return it as a tuple.

    A name that is not a ``torch.nn`` class but differs from one only in case
    (``"linear"``) is refused now; other names (your own classes) are checked against the
    model by `check_selection`.

    Args:
        argument: The argument's name, for the message.
        value: What was passed.
        allow_empty: Accept ``[]``.

    Raises:
        RecipeConfigError: Unless ``value`` is a list of distinct class names (non-empty,
            unless ``allow_empty``).

    Examples:
        >>> check_types("types", ["Linear", "MyBlock"])
        ('Linear', 'MyBlock')
        >>> check_types("types", ["linear"])
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid types=['linear']. ... 'Linear'...
    """
    names = names_sequence(
        argument, value, what="class names", example=["Linear", "Conv2d"], allow_empty=allow_empty
    )
    known = _torch_layer_names()
    for name in names:
        close = [k for k in known if k.lower() == name.lower()]
        if name not in known and close:
            raise config_error(
                argument,
                list(value),
                f"{name!r} is not a torch.nn class: class names are case-sensitive, "
                f"pass {close[0]!r}.",
            )
    return names


def check_globs(argument: str, value: Any, *, allow_none: bool = True) -> tuple[str, ...] | None:
    """Check a list of distinct name globs (or None); return it as a tuple.

    An empty list is accepted for ``exclude`` (nothing left out) but not for ``names``,
    where it would select nothing: pass None for every name.

    Raises:
        RecipeConfigError: Unless ``value`` is None (when allowed) or a list of globs.
    """
    if value is None and allow_none:
        return None
    return names_sequence(
        argument,
        value,
        what="module-name globs",
        example=["backbone.*"],
        allow_empty=argument == "exclude",
    )


def check_selection(
    root: nn.Module,
    types: Sequence[str],
    names: Sequence[str] | None,
    exclude: Sequence[str],
    *,
    types_given: bool,
) -> None:
    """Check that the given types, and every name and exclude glob, match modules of ``root``.

    A misspelt entry would otherwise select nothing and the recipe would silently skip
    the layers it meant. Run at setup, when the model is known.

    Args:
        root: The model.
        types: The class names that select layers.
        names: The name globs, or None.
        exclude: The exclude globs.
        types_given: Whether the user gave ``types`` (the recipe's defaults need not all
            occur in the model).

    Raises:
        RecipeConfigError: Naming the entry that matches nothing and listing what exists.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        >>> check_selection(net, ["Linear"], ["0"], [], types_given=True)
        >>> check_selection(net, ["Linear"], ["1"], [], types_given=True)
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid names=['1']. '1' matches no ...
    """
    model = type(root).__name__
    modules = list(root.named_modules())
    # A list of types may be generic (["Linear", "Conv2d"] for many models): refused only
    # when none of them occurs; a misspelt class name is refused at construction.
    if types_given and not any(is_type(module, types) for _, module in modules):
        present = {type(module).__name__ for _, module in modules}
        raise config_error(
            "types",
            list(types),
            f"No layer of {model} is of these types; its layer classes are: {listing(present)}.",
        )
    candidates = [n for n, module in modules if is_type(module, types)]
    for argument, globs in (("names", names or ()), ("exclude", exclude)):
        glob = first_unmatched(candidates, globs)
        if glob is not None:
            raise config_error(
                argument,
                list(globs),
                f"{glob!r} matches no layer of {model} of the selected types (a glob "
                f"matches a whole name: 'head' is a container, 'head.*' its layers); "
                f"their names are: {listing(candidates)}.",
            )
