"""Argument checks shared by every package: integers that are not bools, flags, numbers.

Each check raises `RecipeConfigError` in the house format (``Invalid name=value. fix``)
through `lightning_recipes.errors.config_error`; the caller chooses the sentence that says
how to fix it, so a package keeps its own wording.
"""

from typing import Any, TypeGuard

import numpy as np

from lightning_recipes.errors import config_error

__all__ = ["flag", "int_at_least", "is_int", "is_real", "non_negative_int", "positive_int"]


def is_int(value: object, *, numpy_ints: bool = False) -> TypeGuard[int]:
    """Whether ``value`` is an integer and not a bool (``True`` is an ``int`` in Python).

    Args:
        value: Anything.
        numpy_ints: Also accept NumPy integer scalars.

    Examples:
        >>> is_int(3), is_int(True), is_int(3.0)
        (True, False, False)
    """
    kinds = (int, np.integer) if numpy_ints else int
    return isinstance(value, kinds) and not isinstance(value, bool)


def is_real(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float and not a bool.

    Examples:
        >>> is_real(0.5), is_real(2), is_real(False), is_real("1")
        (True, True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_at_least(name: str, value: Any, minimum: int, fix: str, *, numpy_ints: bool = False) -> int:
    """Check that ``value`` is an integer (not a bool) ``>= minimum``.

    Args:
        name: The argument's name, as the user spelled it.
        value: What was passed.
        minimum: The smallest accepted value.
        fix: The sentence of the error that says what to pass.
        numpy_ints: Also accept NumPy integer scalars.

    Returns:
        ``value`` as a Python int.

    Raises:
        RecipeConfigError: If it is not.

    Examples:
        >>> int_at_least("num_classes", 3, 2, "Pass 2 or more.")
        3
        >>> int_at_least("num_classes", True, 2, "Pass 2 or more.")
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid num_classes=True. Pass 2 or more.
    """
    if not is_int(value, numpy_ints=numpy_ints) or value < minimum:
        raise config_error(name, value, fix)
    return int(value)


def positive_int(
    name: str, value: Any, fix: str = "Pass a positive integer.", *, numpy_ints: bool = False
) -> int:
    """Check that ``value`` is an integer ``>= 1`` (see `int_at_least`)."""
    return int_at_least(name, value, 1, fix, numpy_ints=numpy_ints)


def non_negative_int(
    name: str, value: Any, fix: str = "Pass a non-negative integer.", *, numpy_ints: bool = False
) -> int:
    """Check that ``value`` is an integer ``>= 0`` (see `int_at_least`)."""
    return int_at_least(name, value, 0, fix, numpy_ints=numpy_ints)


def flag(name: str, value: Any) -> bool:
    """Check that ``value`` is True or False (not 0/1, not a string).

    Examples:
        >>> flag("plot", True)
        True
    """
    if not isinstance(value, bool):
        raise config_error(name, value, "Pass True or False.")
    return value
