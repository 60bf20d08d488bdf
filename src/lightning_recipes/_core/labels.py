"""Where the labels are in a batch: one rule for every recipe, never guessing.

The label of a batch is taken from an explicit ``label_key`` (an index into a tuple/list
batch, a key into a dict batch), from a two-element ``(inputs, labels)`` batch, or from a
dict holding exactly one of the keys ``label`` / ``labels`` / ``y`` / ``target`` /
``targets``. Anything else, such as ``(x, y, sample_weight)`` or ``(x, y, group_id)``, is
refused with the fix: picking "the last integer tensor" silently counts the wrong thing.
"""

from collections.abc import Mapping
from typing import Any

import torch

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "LabelKey",
    "ambiguous_labels",
    "batch_labels",
    "check_label_key",
    "describe_batch",
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
        if isinstance(label_key, int):
            if not isinstance(batch, list | tuple):
                raise ambiguous_labels(
                    owner,
                    argument,
                    batch,
                    f"{argument}={label_key!r} is an index but the batch is not a tuple or list.",
                    "Pass the key of the label as a string",
                )
            if not -len(batch) <= label_key < len(batch):
                raise ambiguous_labels(
                    owner,
                    argument,
                    batch,
                    f"{argument}={label_key!r} is out of range for {len(batch)} elements.",
                    "Pass a valid index",
                )
            value = batch[label_key]
        else:
            if not isinstance(batch, Mapping):
                raise ambiguous_labels(
                    owner,
                    argument,
                    batch,
                    f"{argument}={label_key!r} is a key but the batch is not a dict.",
                    "Pass the position of the label as an int",
                )
            if label_key not in batch:
                raise ambiguous_labels(
                    owner,
                    argument,
                    batch,
                    f"the batch has no key {label_key!r}.",
                    "Pass one of its keys",
                )
            value = batch[label_key]
        if not isinstance(value, torch.Tensor):
            raise ambiguous_labels(
                owner,
                argument,
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
