"""Find the training labels of a dataset or batch, never guessing between several tensors.

The label of a batch is taken from an explicit ``label_key`` (an index into a tuple/list
batch, a key into a dict batch), from a two-element ``(inputs, labels)`` batch, or from a
dict holding exactly one of the keys ``label`` / ``labels`` / ``y`` / ``target`` /
``targets``. Anything else, such as ``(x, y, sample_weight)`` or ``(x, y, group_id)``, is
refused with the fix: picking "the last integer tensor" silently counts the wrong thing.

`multiclass_ids` and `binary_matrix` turn what was read (class ids, one-hot or
probability rows, 0/1 targets) into what is counted, or refuse it with the reason;
`labels_array` checks labels passed by hand, and `kind_of_labels` tells which they are.
"""

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Subset, TensorDataset

from lightning_recipes._core.labels import (
    LabelKey,
    ambiguous_labels,
    batch_labels,
    check_label_key,
    class_ids,
    labels_as_array,
)
from lightning_recipes.errors import config_error

__all__ = [
    "LABEL_ATTRIBUTES",
    "LabelKey",
    "LabelKind",
    "batch_labels",
    "binary_matrix",
    "check_label_key",
    "dataset_labels",
    "kind_of_labels",
    "labels_array",
    "multiclass_ids",
]

LABEL_ATTRIBUTES = ("targets", "labels", "y")
"""Dataset attributes read as the labels, in this order."""

LabelKind = Literal["multiclass", "binary"]
"""What the labels are counted as: class ids (or rows) of one class, or 0/1 targets."""

_SUM_TOLERANCE = 1e-3  # probability rows must sum to 1 within this


def _as_array(values: Any) -> npt.NDArray[Any] | None:
    """A numeric NumPy array from a tensor, array or list; None for anything else."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()  # NumPy has no bfloat16
        return tensor.numpy()
    if isinstance(values, np.ndarray | list | tuple):
        try:
            array = np.asarray(values)
        except ValueError:  # ragged
            return None
        if array.dtype.kind in "iubf" and array.size:
            return array
    return None


def dataset_labels(
    dataset: Any, label_key: LabelKey = None, *, owner: str = "ClassWeighting"
) -> npt.NDArray[Any] | None:
    """The labels of a dataset, read from its attributes (no iteration).

    Looks at ``targets``, ``labels`` or ``y`` (tensors, arrays or lists of numbers), the
    tensor ``label_key`` of a ``TensorDataset`` (the second one of a two-tensor
    ``TensorDataset`` without it), and through ``Subset`` (keeping its indices).

    Args:
        dataset: A map-style dataset.
        label_key: The label's position among a ``TensorDataset``'s tensors.
        owner: The recipe asking, for the error message.

    Returns:
        The labels as they are stored (class ids, one-hot or probability rows, 0/1
        targets), or None if the dataset does not expose them.

    Raises:
        RecipeConfigError: For a ``TensorDataset`` of more than two tensors without an
            int ``label_key`` (which of them is the label cannot be guessed).

    Examples:
        >>> import torch
        >>> from torch.utils.data import Subset, TensorDataset
        >>> data = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 1, 2]))
        >>> dataset_labels(Subset(data, [1, 3])).tolist()
        [1, 2]
    """
    if isinstance(dataset, Subset):
        inner = dataset_labels(dataset.dataset, label_key, owner=owner)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    for name in LABEL_ATTRIBUTES:
        found = _as_array(getattr(dataset, name, None))
        if found is not None:
            return found
    if isinstance(dataset, TensorDataset):
        tensors = dataset.tensors
        if isinstance(label_key, int):
            if not -len(tensors) <= label_key < len(tensors):
                raise config_error(
                    "label_key",
                    label_key,
                    f"{owner}: the TensorDataset has {len(tensors)} tensors; pass the "
                    "position of the labels among them.",
                )
            return _as_array(tensors[label_key])
        if label_key is None and len(tensors) == 2:
            return _as_array(tensors[1])
        if len(tensors) > 2 or isinstance(label_key, str):
            raise ambiguous_labels(
                owner,
                "label_key",
                tuple(t[:0] for t in tensors),
                f"a TensorDataset of {len(tensors)} tensors yields tuples, and only a "
                "two-tensor one is read without an int label_key.",
                "Pass label_key=<position of the labels>, e.g. label_key=1 for "
                "TensorDataset(x, y, sample_weight)",
            )
    return None


def iterate_labels(
    loader: Iterable[Any], label_key: LabelKey = None, *, owner: str = "ClassWeighting"
) -> Iterable[torch.Tensor]:
    """Yield the labels of every batch of a dataloader (see `batch_labels`)."""
    for batch in loader:
        yield batch_labels(batch, label_key, owner=owner)


def _shape(labels: npt.NDArray[Any]) -> str:
    return f"<{labels.dtype} labels of shape {labels.shape}>"


def labels_array(labels: npt.ArrayLike | torch.Tensor) -> npt.NDArray[Any]:
    """Validate ``labels=`` at construction; what they mean is decided with the loss.

    Args:
        labels: The training labels passed by the user.

    Returns:
        The labels as a NumPy array (a bfloat16 tensor as float32).

    Raises:
        RecipeConfigError: If they are empty, not numeric, not finite, or floating labels
            that are neither class ids, targets in [0, 1] nor rows ``(N, num_classes)``.

    Examples:
        >>> labels_array([0, 2, 1]).tolist()
        [0, 2, 1]
    """
    array = labels_as_array(labels)
    if array.ndim == 0 or array.size == 0:
        raise config_error(
            "labels", f"<array of shape {array.shape}>", "Pass one label per training sample."
        )
    if array.dtype.kind not in "iubf":
        raise config_error(
            "labels",
            f"<{array.dtype} array>",
            "Pass integer class ids, one-hot/probability rows, or 0/1 targets.",
        )
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise config_error("labels", "<array with NaN or inf>", "Pass finite labels.")
        whole = bool(np.all(array == np.round(array)))
        unit = bool(array.min() >= 0 and array.max() <= 1)
        if array.min() < 0 or (array.ndim == 1 and not (whole or unit)):
            raise config_error(
                "labels",
                f"<{array.dtype} array of shape {array.shape}>",
                "Floating labels must be whole-number class ids, 0/1 (or soft) targets in "
                "[0, 1], or one-hot/probability rows of shape (N, num_classes).",
            )
    return array


def kind_of_labels(labels: npt.NDArray[Any]) -> LabelKind:
    """Labels read without a loss object to tell: 0/1 targets for BCE or class ids/rows.

    Examples:
        >>> import numpy as np
        >>> kind_of_labels(np.array([0, 2])), kind_of_labels(np.array([[0.0, 1.0], [1.0, 0.0]]))
        ('multiclass', 'multiclass')
        >>> kind_of_labels(np.array([0.0, 1.0, 1.0]))
        'binary'
    """
    if labels.dtype.kind != "f":
        return "multiclass"
    rows = labels.ndim == 2 and bool(np.allclose(labels.sum(axis=1), 1.0, atol=1e-3))
    return "multiclass" if rows else "binary"


def multiclass_ids(
    labels: npt.NDArray[Any], *, ignore_index: int | None = None, argument: str = "labels"
) -> tuple[npt.NDArray[np.int64], int | None]:
    """The class ids to count for a multi-class loss, from what the data holds.

    * integer (or bool) labels of any shape are class ids, one per element (``(N,)``, or
      ``(N, d1, ...)`` for segmentation as ``CrossEntropyLoss`` takes them); elements
      equal to the loss's ``ignore_index`` are not counted;
    * floating labels of shape ``(N, C, ...)`` are one-hot or probability rows over
      dimension 1 (``CrossEntropyLoss``'s probability targets): each sample counts once,
      for its most probable class (its argmax), so label smoothing and mixup count the
      dominant class. Rows must be non-negative and sum to 1;
    * floating labels of shape ``(N,)`` holding whole numbers are class ids.

    Args:
        labels: The labels as read from the dataset or the batches.
        ignore_index: The loss's ``ignore_index`` (``-100`` for ``CrossEntropyLoss``).
        argument: The argument to name in errors.

    Returns:
        ``(ids, width)``: the 1-D class ids to count, and the number of classes given by
        probability rows (``C``), None for class ids.

    Raises:
        RecipeConfigError: For negative class ids, non-finite values, floating labels that
            are neither whole numbers nor probability rows, or complex/object labels.

    Examples:
        >>> import numpy as np
        >>> multiclass_ids(np.array([[0.0, 1.0], [0.8, 0.2], [0.3, 0.7]]))[0].tolist()
        [1, 0, 1]
        >>> multiclass_ids(np.array([2, -100, 0]), ignore_index=-100)[0].tolist()
        [2, 0]
    """
    if labels.dtype.kind in "iub":
        ids = labels.reshape(-1).astype(np.int64, copy=False)
        if ignore_index is not None:
            ids = ids[ids != ignore_index]
        if ids.size and int(ids.min()) < 0:
            raise config_error(
                argument,
                _shape(labels),
                f"Class ids start at 0; found {int(ids.min())}"
                + (
                    f" (the loss ignores {ignore_index} only)." if ignore_index is not None else "."
                ),
            )
        return ids, None
    if labels.dtype.kind != "f":
        raise config_error(argument, _shape(labels), "Pass integer class ids or probability rows.")
    if not np.all(np.isfinite(labels)):
        raise config_error(argument, _shape(labels), "Labels must be finite.")
    if labels.ndim == 1:  # whole numbers: class ids
        return class_ids(labels, argument=argument), None
    sums = labels.sum(axis=1)
    if labels.min() < 0 or not np.allclose(sums, 1.0, atol=_SUM_TOLERANCE):
        raise config_error(
            argument,
            _shape(labels),
            "Floating labels of shape (N, C, ...) are read as one-hot or probability rows "
            "over dimension 1, which must be >= 0 and sum to 1. For 0/1 multi-label "
            "targets use BCEWithLogitsLoss or FocalLoss(task='multilabel'); for class ids "
            "pass integers.",
        )
    return labels.argmax(axis=1).reshape(-1).astype(np.int64), int(labels.shape[1])


def binary_matrix(labels: npt.NDArray[Any], *, argument: str = "labels") -> npt.NDArray[np.bool_]:
    """Positives as a ``(samples, labels)`` matrix, for BCE-style (binary/multi-label) losses.

    Targets must lie in [0, 1]; a target counts as positive above 0.5 (0/1 targets
    exactly; soft targets by their rounded value). ``pos_weight`` broadcasts over the
    last dimension, so ``(N,)`` targets are one label and ``(..., L)`` targets ``L``.

    Args:
        labels: The targets as read from the dataset or the batches.
        argument: The argument to name in errors.

    Returns:
        A boolean matrix: one row per element of the leading dimensions, one column per
        label.

    Raises:
        RecipeConfigError: If a target is outside [0, 1] or not finite.

    Examples:
        >>> import numpy as np
        >>> binary_matrix(np.array([1, 0, 1])).sum(axis=0).tolist()
        [2]
    """
    if labels.dtype.kind not in "iubf":
        raise config_error(argument, _shape(labels), "Pass 0/1 targets.")
    values = labels.astype(np.float64, copy=False)
    if not np.all(np.isfinite(values)) or (values.size and (values.min() < 0 or values.max() > 1)):
        raise config_error(
            argument,
            _shape(labels),
            "BCE-style losses take targets in [0, 1] (0/1 per label). For class ids with "
            "more than two classes use CrossEntropyLoss or FocalLoss(task='multiclass').",
        )
    matrix = values.reshape(-1, 1) if values.ndim <= 1 else values.reshape(-1, values.shape[-1])
    return matrix > 0.5
