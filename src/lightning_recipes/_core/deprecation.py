"""Renamed arguments and moved names: the old ones work for one release, with a warning."""

import importlib
import warnings
from collections.abc import Mapping
from typing import Any, TypeVar

from lightning_recipes.errors import RecipeConfigError

__all__ = ["moved_attribute", "renamed"]

T = TypeVar("T")


def renamed(owner: str, old: str, new: str, old_value: Any, new_value: T, default: T) -> T:
    """The value of argument ``new``, taken from its deprecated name ``old`` if given there.

    Args:
        owner: The class or function, for the message.
        old: The deprecated name.
        new: The current name.
        old_value: What was passed as ``old`` (None: not passed).
        new_value: What was passed as ``new``.
        default: ``new``'s default (passing both names is refused unless ``new`` kept it).

    Returns:
        The value to use.

    Raises:
        RecipeConfigError: If both names were given.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     renamed("ActivationMonitor", "every_n_steps", "log_every_n_steps", 5, None, None)
        5
        >>> str(caught[0].message).split(":")[0]
        'ActivationMonitor(every_n_steps=...) is deprecated'
    """
    if old_value is None:
        return new_value
    if new_value != default:
        raise RecipeConfigError(
            f"{owner}: pass {new}= only ({old}= is its deprecated name), not both."
        )
    warnings.warn(
        f"{owner}({old}=...) is deprecated: pass {new}= (the old name goes in the next release).",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value  # type: ignore[no-any-return]


def moved_attribute(old_module: str, name: str, new_module: str | Mapping[str, str]) -> Any:
    """``name`` from ``new_module``, for a module ``__getattr__`` keeping its old path alive.

    Args:
        old_module: The module the name was imported from (its ``__name__``).
        name: The attribute asked for.
        new_module: Where it lives now, or where each moved name lives now, by name.

    Returns:
        The attribute, with a `DeprecationWarning` naming the new path.

    Raises:
        AttributeError: If ``new_module`` has no such attribute either (or the mapping no
            such name).

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     moved_attribute("old.place", "sqrt", "math")(4.0)
        2.0
        >>> str(caught[0].message).split(" is ")[0]
        'old.place.sqrt'
        >>> moved_attribute("old.place", "cos", {"sqrt": "math"})
        Traceback (most recent call last):
        AttributeError: module 'old.place' has no attribute 'cos'
    """
    if not isinstance(new_module, str):
        if name not in new_module:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        new_module = new_module[name]
    module = importlib.import_module(new_module)
    if not hasattr(module, name) or name.startswith("__"):
        raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
    warnings.warn(
        f"{old_module}.{name} is deprecated and will be removed in the next release: "
        f"import it from {new_module}.",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(module, name)
