"""Where the labels are in a batch: one rule for every recipe, never guessing.

The label of a batch is taken from an explicit ``label_key`` (an index into a tuple/list
batch, a key into a dict batch), from a two-element ``(inputs, labels)`` batch, or from a
dict holding exactly one of the keys ``label`` / ``labels`` / ``y`` / ``target`` /
``targets``. Anything else, such as ``(x, y, sample_weight)`` or ``(x, y, group_id)``, is
refused with the fix: picking "the last integer tensor" silently counts the wrong thing.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "LabelKey",
    "ambiguous_labels",
    "batch_labels",
    "check_label_key",
    "class_ids",
    "describe_batch",
    "labels_as_array",
]

LabelKey = int | str | None
"""Where the label is in a batch: an index into a tuple/list, a key into a dict, or None."""

_BATCH_KEYS = ("label", "labels", "y", "target", "targets")


def check_label_key(label_key: Any, argument: str = "label_key") -> LabelKey:
    """Validate a ``label_key`` argument (for constructors).

    Args:
        label_key: An int (index into tuple/list batches), a non-empty str (key into dict
            batches) or None.
        argument: The argument's name, for the error.

    Returns:
        ``label_key`` unchanged.

    Raises:
        RecipeConfigError: If it is of another type or an empty string.

    Examples:
        >>> check_label_key(1), check_label_key("label"), check_label_key(None)
        (1, 'label', None)
    """
    if label_key is None or (isinstance(label_key, str) and label_key):
        return label_key
    if isinstance(label_key, int) and not isinstance(label_key, bool):
        return label_key
    raise config_error(
        argument,
        label_key,
        "Pass the position of the label in a tuple/list batch (e.g. 1 for (x, y, weight)), "
        "the key of a dict batch (e.g. 'label'), or None for (x, y) batches.",
    )


class _Described:
    """A value shown in words in an error (``labels=<array of dtype float64>``), not printed."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def labels_as_array(
    labels: Any, argument: str = "labels", fix: str = "Pass an array."
) -> npt.NDArray[Any]:
    """Labels as a NumPy array: a tensor's values on the host (bfloat16 as float32).

    Raises:
        RecipeConfigError: For a ragged sequence (``fix`` says what to pass).
    """
    if isinstance(labels, torch.Tensor):
        tensor = labels.detach().cpu()
        return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
    try:
        return np.asarray(labels)
    except (TypeError, ValueError) as err:  # ragged
        raise config_error(argument, _Described(f"<{type(labels).__name__}>"), fix) from err


def class_ids(
    labels: Any,
    *,
    argument: str = "labels",
    whole_floats: bool = True,
    booleans: bool = False,
    empty: bool = True,
) -> npt.NDArray[np.int64]:
    """Labels as 1-D integer class ids: the one reading of "class ids" every recipe uses.

    Accepted: a 1-D sequence, NumPy array or tensor of non-negative integers; floating
    values that are all whole numbers (``0.0, 2.0``, as pandas and some loaders give
    them) unless ``whole_floats=False``; booleans only with ``booleans=True``.

    Args:
        labels: The labels, one per sample.
        argument: The argument to name in errors.
        whole_floats: Accept floating labels holding whole numbers. The samplers refuse
            them: a float label there is more often a target than a class.
        booleans: Accept a boolean array (as class ids 0 and 1).
        empty: Accept no labels at all.

    Returns:
        The class ids as ``int64``.

    Raises:
        RecipeConfigError: For a ragged or non-1-D input (one-hot or probability rows:
            pass their argmax), another dtype, non-whole or non-finite floats, negative
            ids, or an empty input when ``empty=False``.

    Examples:
        >>> class_ids([0, 2, 1]).tolist(), class_ids(np.array([1.0, 0.0])).tolist()
        ([0, 2, 1], [1, 0])
        >>> class_ids([0.5, 1.0])
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid labels=<array of dtype float64 \
with values that are not whole numbers>. Pass integer class ids, e.g. labels.astype(int).
    """
    array = labels_as_array(labels, argument, "Pass a 1-D sequence of class ids.")
    if array.ndim != 1:
        raise config_error(
            argument,
            _Described(f"<{array.ndim}-D array of shape {array.shape}>"),
            "Pass a 1-D sequence of integer class ids, one per sample (for one-hot or "
            "probability rows, their argmax: labels.argmax(1)).",
        )
    if array.size == 0:
        if not empty:
            raise config_error(argument, _Described("<empty>"), "Pass at least one class id.")
        return np.zeros(0, dtype=np.int64)
    kinds = "iu" + ("b" if booleans else "") + ("f" if whole_floats else "")
    if array.dtype.kind not in kinds:
        raise config_error(
            argument,
            _Described(f"<array of dtype {array.dtype}>"),
            "Pass integer class ids, e.g. labels.astype(int).",
        )
    if array.dtype.kind == "f" and not (
        np.all(np.isfinite(array)) and np.all(array == np.round(array))
    ):
        raise config_error(
            argument,
            _Described(f"<array of dtype {array.dtype} with values that are not whole numbers>"),
            "Pass integer class ids, e.g. labels.astype(int).",
        )
    ids = array.astype(np.int64)  # (a uint64 array too: np.bincount cannot cast it safely)
    if int(ids.min()) < 0:
        raise config_error(
            argument, _Described(f"<array with minimum {int(ids.min())}>"), "Class ids start at 0."
        )
    return ids


def describe_batch(batch: Any) -> str:
    """The structure of a batch in words: types and shapes of its elements."""

    def one(value: Any) -> str:
        if isinstance(value, torch.Tensor):
            return f"{str(value.dtype).removeprefix('torch.')} tensor {tuple(value.shape)}"
        return type(value).__name__

    if isinstance(batch, Mapping):
        return "{" + ", ".join(f"{k!r}: {one(v)}" for k, v in batch.items()) + "}"
    if isinstance(batch, list | tuple):
        return "(" + ", ".join(one(v) for v in batch) + ")"
    return one(batch)


def ambiguous_labels(
    owner: str, argument: str, batch: Any, why: str, fix: str
) -> RecipeConfigError:
    return RecipeConfigError(
        f"{owner} cannot tell which part of the batch is the label: {why} The batch is "
        f"{describe_batch(batch)}. {fix} (the {argument} argument)."
    )


def _bad_key(
    owner: str, argument: str, key: LabelKey, batch: Any, why: str, fix: str
) -> RecipeConfigError:
    """A ``label_key`` the batch does not fit: the house error naming the argument."""
    return config_error(
        argument, key, f"{owner}: {why} The batch is {describe_batch(batch)}. {fix}."
    )


def _at_key(batch: Any, key: int | str, owner: str, argument: str) -> Any:
    """``batch[key]`` for an index into a tuple/list or a key of a dict, else the error."""
    shown = f"{argument}={key!r}"
    if isinstance(key, int):
        if not isinstance(batch, list | tuple):
            why = f"{shown} is an index but the batch is not a tuple or list."
            raise _bad_key(owner, argument, key, batch, why, "Pass the key of the label")
        if not -len(batch) <= key < len(batch):
            why = f"{shown} is out of range for a {type(batch).__name__} of {len(batch)} elements."
            raise _bad_key(owner, argument, key, batch, why, "Pass a valid index")
        return batch[key]
    if not isinstance(batch, Mapping):
        why = f"{shown} is a key but the batch is not a dict."
        raise _bad_key(owner, argument, key, batch, why, "Pass the position of the label")
    if key not in batch:
        why = f"the batch has no key {key!r}."
        raise _bad_key(owner, argument, key, batch, why, "Pass one of its keys")
    return batch[key]


def batch_labels(
    batch: Any,
    label_key: LabelKey = None,
    *,
    owner: str = "ClassWeighting",
    argument: str = "label_key",
) -> torch.Tensor:
    """The labels of one batch, read from ``label_key`` or an unambiguous batch structure.

    Args:
        batch: A batch as a DataLoader yields it.
        label_key: The label's index in a tuple/list batch or key in a dict batch; None
            for a two-element ``(inputs, labels)`` batch or a dict with exactly one of
            ``label``, ``labels``, ``y``, ``target``, ``targets``.
        owner: The recipe asking, for the error message.
        argument: The name of its ``label_key`` argument, for the error message.

    Returns:
        The label tensor.

    Raises:
        RecipeConfigError: If ``label_key`` does not fit the batch, or it is None and the
            batch has several candidates (e.g. ``(x, y, sample_weight)``) or none.

    Examples:
        >>> import torch
        >>> x, y, w = torch.zeros(2, 3), torch.tensor([0, 1]), torch.tensor([1, 1])
        >>> batch_labels((x, y)).tolist(), batch_labels((x, y, w), 1).tolist()
        ([0, 1], [0, 1])
        >>> batch_labels({"image": x, "label": y}).tolist()
        [0, 1]
    """
    if label_key is not None:
        value = _at_key(batch, label_key, owner, argument)
        if not isinstance(value, torch.Tensor):
            raise _bad_key(
                owner,
                argument,
                label_key,
                batch,
                f"{argument}={label_key!r} selects a {type(value).__name__}, not a tensor.",
                "Point it at the labels",
            )
        return value
    if isinstance(batch, list | tuple):
        if len(batch) == 2 and isinstance(batch[1], torch.Tensor):
            return batch[1]
        raise ambiguous_labels(
            owner,
            argument,
            batch,
            f"only a two-element (inputs, labels) batch is read without {argument}, and this "
            f"one has {len(batch)} elements.",
            f"Pass {argument}=<index of the label>, e.g. {argument}=1 for "
            "(x, y, sample_weight) or (x, y, group_id)",
        )
    if isinstance(batch, Mapping):
        found = [key for key in _BATCH_KEYS if isinstance(batch.get(key), torch.Tensor)]
        if len(found) == 1:
            return batch[found[0]]  # type: ignore[no-any-return]
        why = (
            f"it holds several label-like keys ({', '.join(map(repr, found))})."
            if found
            else f"it has none of the keys {', '.join(map(repr, _BATCH_KEYS))}."
        )
        raise ambiguous_labels(owner, argument, batch, why, f"Pass {argument}='<key of the label>'")
    raise ambiguous_labels(
        owner,
        argument,
        batch,
        f"a batch of type {type(batch).__name__} has no labels that can be found.",
        f"Yield (inputs, labels) or a dict batch and pass {argument}",
    )
