"""In-memory datasets that expose their labels."""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from lightning_recipes.errors import config_error

__all__ = ["LabeledTensorDataset", "as_tensor"]


def as_tensor(array: npt.ArrayLike | torch.Tensor, *, name: str) -> torch.Tensor:
    """Convert a numpy array, tensor or nested list to a tensor without copying when possible.

    Args:
        array: The data.
        name: The argument's name, for error messages.

    Returns:
        A tensor sharing memory with ``array`` where torch allows it.
    """
    if isinstance(array, torch.Tensor):
        return array
    try:
        return torch.as_tensor(np.asarray(array))
    except (TypeError, ValueError) as err:
        raise config_error(name, type(array).__name__, "Pass a numpy array or a tensor.") from err


class LabeledTensorDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Features and integer labels held as tensors, with the labels exposed as ``.targets``.

    Recipes that need the class distribution (class weighting, resampling) read
    ``dataset.targets`` instead of iterating the data.

    Args:
        features: ``(n, ...)`` features; floating arrays are converted to ``float32``.
        targets: ``(n,)`` integer class ids.

    Examples:
        >>> import torch
        >>> ds = LabeledTensorDataset(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
        >>> len(ds), ds.targets.tolist()
        (3, [0, 1, 1])
    """

    def __init__(
        self, features: npt.ArrayLike | torch.Tensor, targets: npt.ArrayLike | torch.Tensor
    ) -> None:
        x = as_tensor(features, name="features")
        y = as_tensor(targets, name="targets")
        if x.is_floating_point():
            x = x.float()
        if y.ndim != 1:
            raise config_error("targets", f"<shape {tuple(y.shape)}>", "Pass a 1-D array.")
        if y.is_floating_point() or y.is_complex():
            raise config_error("targets", f"<{y.dtype} tensor>", "Pass integer class ids.")
        if x.shape[0] != y.shape[0]:
            raise config_error(
                "features", f"<{x.shape[0]} rows>", f"Pass one row per label ({y.shape[0]})."
            )
        self.features = x
        self.targets = y.long()

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.targets[index]

    def subset(self, indices: npt.ArrayLike) -> "LabeledTensorDataset":
        """Return a new dataset holding the given rows (labels stay exposed).

        Args:
            indices: Row indices.

        Returns:
            The subset as a `LabeledTensorDataset`.
        """
        index = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return LabeledTensorDataset(self.features[index], self.targets[index])
