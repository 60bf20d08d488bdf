"""Argument checks shared by every package: integers that are not bools, flags, numbers, lists.

Each check raises `RecipeConfigError` in the house format (``Invalid name=value. fix``)
through `lightning_recipes.errors.config_error`; the caller chooses the sentence that says
how to fix it, so a package keeps its own wording.
"""

import math
from collections.abc import Collection, Sequence
from typing import Any, TypeGuard

import numpy as np

from lightning_recipes.errors import config_error

__all__ = [
    "batch_key",
    "distinct_batch_keys",
    "finite_sequence",
    "flag",
    "int_at_least",
    "is_int",
    "is_number",
    "is_real",
    "known_names",
    "listing",
    "names_sequence",
    "non_negative_int",
    "positive_int",
    "positive_real",
    "unknown_sentence",
]


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


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float, not a bool and not NaN (infinities pass).

    Examples:
        >>> is_number(1.5), is_number(float("inf")), is_number(float("nan")), is_number(True)
        (True, True, False, False)
    """
    return is_real(value) and value == value


def positive_real(name: str, value: Any, fix: str) -> float:
    """Check that ``value`` is a finite number ``> 0``; return it as a float.

    Args:
        name: The argument's name, for the error.
        value: The value given.
        fix: How to fix it, for the error.

    Raises:
        RecipeConfigError: Naming the argument and the value.

    Examples:
        >>> positive_real("eps", 0.1, "Pass a positive radius.")
        0.1
    """
    if not is_real(value) or not 0 < value < math.inf:
        raise config_error(name, value, fix)
    return float(value)


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


def names_sequence(
    name: str, value: Any, *, what: str, example: Sequence[str], allow_empty: bool = False
) -> tuple[str, ...]:
    """Check a list of distinct, non-empty strings (names, globs, keys); return it as a tuple.

    The mistakes it catches: one string where a list is expected (a string is a sequence of
    letters, so it would be read letter by letter), something that is not a list, an empty
    list (unless ``allow_empty``), an entry that is not a non-empty string, a repeated entry.

    Args:
        name: The argument's name, as the user spelled it.
        value: What was passed.
        what: What the entries are, for the message (``"class names"``).
        example: A valid value, for the message.
        allow_empty: Accept ``[]``.

    Returns:
        ``value`` as a tuple.

    Raises:
        RecipeConfigError: If it is not such a list.

    Examples:
        >>> names_sequence("types", ["Linear"], what="class names", example=["Linear"])
        ('Linear',)
        >>> names_sequence("types", "Linear", what="class names", example=["Linear"])
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid types='Linear'. ... types=['Linear'].
    """
    hint = f"Pass a list of {what}, e.g. {list(example)!r}"
    if isinstance(value, str):
        raise config_error(
            name, value, f"{hint} (a plain string is read letter by letter): {name}=[{value!r}]."
        )
    if not isinstance(value, Sequence):
        raise config_error(name, value, f"{hint}.")
    if not value and not allow_empty:
        raise config_error(name, value, f"{hint}; an empty list selects nothing.")
    bad = [item for item in value if not isinstance(item, str) or not item.strip()]
    if bad:
        raise config_error(name, value, f"{hint}: {bad[0]!r} is not a non-empty string.")
    repeated = sorted({item for item in value if list(value).count(item) > 1})
    if repeated:
        listed = ", ".join(repr(item) for item in repeated)
        raise config_error(name, value, f"{listed} appears more than once: give each once.")
    return tuple(value)


def command_args(name: str, value: Any) -> list[str]:
    """Check command-line arguments (``["--trainer.max_epochs=5"]``): a list of strings.

    Unlike `names_sequence`, entries may repeat and be empty (``["--a", "1", "--b", "1"]``).

    Raises:
        RecipeConfigError: For one string (it would be read letter by letter), a
            non-sequence, or a non-string entry.

    Examples:
        >>> command_args("overrides", ["--trainer.max_epochs=5"])
        ['--trainer.max_epochs=5']
    """
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not all(isinstance(item, str) for item in value)
    ):
        raise config_error(
            name,
            value,
            "Pass a list of '--section.key=value' strings, e.g. ['--trainer.max_epochs=5'] "
            "(a plain string would be read letter by letter).",
        )
    return list(value)


def known_names(name: str, value: Sequence[str], valid: Collection[str], what: str) -> None:
    """Check that every name in ``value`` is one of ``valid``; the error lists them all.

    Args:
        name: The argument's name.
        value: The names given.
        valid: The names that exist.
        what: What the valid names are, for the message (``"modules of Net"``).

    Raises:
        RecipeConfigError: Naming the first unknown entry (with a close spelling when one
            differs only in case) and listing the valid names.

    Examples:
        >>> known_names("names", ["fc"], ["fc", "head"], "modules")
        >>> known_names("names", ["Head"], ["fc", "head"], "modules")
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid names=['Head']. ...'head'?)...
    """
    for item in value:
        if item not in valid:
            raise config_error(name, list(value), unknown_sentence(item, valid, what))


def unknown_sentence(item: str, valid: Collection[str], what: str) -> str:
    """The sentence that says ``item`` is not one of ``valid`` and lists them.

    Examples:
        >>> unknown_sentence("val_los", ["val_loss", "val_acc"], "logged metrics")
        "'val_los' is not one of the logged metrics; they are: 'val_acc', 'val_loss'."
    """
    close = [v for v in valid if v.lower() == item.lower()]
    mean = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{item!r} is not one of the {what}{mean}; they are: {listing(valid)}."


def listing(names: Collection[str], limit: int = 30) -> str:
    """``names`` sorted and quoted, the first ``limit`` of them, for an error message.

    Examples:
        >>> listing(["b", "a"]), listing(["c", "b", "a"], limit=2), listing([])
        ("'a', 'b'", "'a', 'b', ... (1 more)", 'none')
    """
    ordered = sorted(names)
    shown = ", ".join(repr(v) for v in ordered[:limit]) or "none"
    return shown + (f", ... ({len(ordered) - limit} more)" if len(ordered) > limit else "")


def finite_sequence(
    name: str, value: Any, fix: str, *, minimum: float | None = None, allow_empty: bool = False
) -> tuple[float, ...]:
    """Check a list of finite real numbers (not bools), each ``>= minimum`` when given.

    Args:
        name: The argument's name.
        value: What was passed.
        fix: The sentence of the error that says what to pass.
        minimum: The smallest accepted value, or None.
        allow_empty: Accept ``[]``.

    Returns:
        ``value`` as a tuple of floats.

    Raises:
        RecipeConfigError: If it is not such a list.

    Examples:
        >>> finite_sequence("weights", [1, 0.5], "Pass weights >= 0.", minimum=0)
        (1.0, 0.5)
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise config_error(name, value, fix)
    if not value and not allow_empty:
        raise config_error(name, value, fix)
    for item in value:
        if not is_real(item) or not math.isfinite(item):
            raise config_error(name, value, fix)
        if minimum is not None and item < minimum:
            raise config_error(name, value, fix)
    return tuple(float(item) for item in value)


def batch_key(name: str, value: Any) -> int | str:
    """Check where something is in a batch: an index ``>= 0`` or a non-empty dict key.

    Examples:
        >>> batch_key("input_key", 0), batch_key("label_key", "y")
        (0, 'y')
    """
    if (is_int(value) and value >= 0) or (isinstance(value, str) and value):
        return value
    raise config_error(
        name,
        value,
        "Pass the index of the entry in a tuple/list batch (an int >= 0, e.g. 0 for the "
        "inputs of (inputs, labels)) or its key in a dict batch (a non-empty string).",
    )


def distinct_batch_keys(**keys: int | str | None) -> None:
    """Check that no two batch keys (``input_key=0, label_key=1``) point at the same entry.

    Examples:
        >>> distinct_batch_keys(input_key=0, label_key=0)
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid label_key=0. It is also input_key: ...
    """
    seen: dict[int | str, str] = {}
    for name, value in keys.items():
        if value is None:
            continue
        if value in seen:
            raise config_error(
                name,
                value,
                f"It is also {seen[value]}: the inputs and the labels are different entries "
                "of the batch.",
            )
        seen[value] = name
