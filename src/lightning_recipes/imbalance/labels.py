"""Find the training labels of a dataset or dataloader, without iterating when possible."""

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Subset, TensorDataset

__all__ = ["LABEL_ATTRIBUTES", "batch_labels", "dataset_labels"]

LABEL_ATTRIBUTES = ("targets", "labels", "y")
"""Dataset attributes read as the labels, in this order."""

_BATCH_KEYS = ("label", "labels", "y", "target", "targets")


def _as_array(values: Any) -> npt.NDArray[np.int64] | None:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy().astype(np.int64, copy=False)
    if isinstance(values, np.ndarray | list | tuple):
        array = np.asarray(values)
        if array.dtype.kind in "iub":
            return array.astype(np.int64, copy=False)
    return None


def dataset_labels(dataset: Any) -> npt.NDArray[np.int64] | None:
    """The labels of a dataset, read from its attributes (no iteration).

    Looks at ``targets``, ``labels`` or ``y`` (tensors, arrays or lists of ints), the
    last tensor of a ``TensorDataset``, and through ``Subset`` (keeping its indices).

    Args:
        dataset: A map-style dataset.

    Returns:
        The labels (1-D for class ids, 2-D for multi-label targets), or None if the
        dataset does not expose them.

    Examples:
        >>> import torch
        >>> from torch.utils.data import Subset, TensorDataset
        >>> data = TensorDataset(torch.zeros(4, 2), torch.tensor([0, 1, 1, 2]))
        >>> dataset_labels(Subset(data, [1, 3])).tolist()
        [1, 2]
    """
    if isinstance(dataset, Subset):
        inner = dataset_labels(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    for name in LABEL_ATTRIBUTES:
        found = _as_array(getattr(dataset, name, None))
        if found is not None:
            return found
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return _as_array(dataset.tensors[-1])
    return None


def batch_labels(batch: Any) -> torch.Tensor:
    """The labels of one batch: the last element of a tuple/list, or a labelled dict entry.

    Args:
        batch: A batch as a DataLoader yields it.

    Returns:
        The label tensor.

    Raises:
        TypeError: If no labels can be found in the batch.
    """
    if isinstance(batch, list | tuple) and batch and isinstance(batch[-1], torch.Tensor):
        return batch[-1]
    if isinstance(batch, dict):
        for key in _BATCH_KEYS:
            if isinstance(batch.get(key), torch.Tensor):
                return batch[key]  # type: ignore[no-any-return]
    raise TypeError(
        f"Cannot find the labels in a batch of type {type(batch).__name__}: expected "
        f"(inputs, labels) or a dict with one of {', '.join(_BATCH_KEYS)}."
    )


def iterate_labels(loader: Iterable[Any]) -> Iterable[torch.Tensor]:
    """Yield the labels of every batch of a dataloader."""
    for batch in loader:
        yield batch_labels(batch)
