"""The base of the resampling samplers: an epoch's list as a pure function of seed and epoch.

See `lightning_recipes.imbalance.samplers` for why (DDP's sampler wrapper, resume).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Sampler

from lightning_recipes._core.validate import non_negative_int
from lightning_recipes.errors import config_error

__all__ = ["ClassWeights", "IndexArray", "Labels"]

Labels = Sequence[int] | npt.NDArray[np.integer[Any]] | torch.Tensor
"""Integer class ids: a sequence, a 1-D NumPy array or a 1-D tensor."""

ClassWeights = str | Sequence[float] | npt.NDArray[np.floating[Any]] | torch.Tensor
"""A weighting scheme by name, or one non-negative weight per class."""

IndexArray = npt.NDArray[np.int64]

_CHUNK = 1 << 18  # draws per vectorised step: bounds the temporaries, fixes the stream
_WEIGHT_SCHEMES = ("balanced", "sqrt")


class _Shown:
    """A value described in words, for error messages about large arrays."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _as_labels(labels: Labels) -> npt.NDArray[np.integer[Any]]:
    """Validate ``labels`` and return them as a 1-D array of non-negative integers."""
    if isinstance(labels, torch.Tensor):
        array = labels.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(labels)
        except (TypeError, ValueError) as err:
            raise config_error(
                "labels", _Shown(type(labels).__name__), "Pass a 1-D sequence of class ids."
            ) from err
    if array.ndim != 1:
        raise config_error(
            "labels",
            _Shown(f"<{array.ndim}-D array of shape {array.shape}>"),
            "Pass a 1-D sequence of integer class ids, one per sample (for one-hot or "
            "probability rows, their argmax: labels.argmax(1)).",
        )
    if array.size == 0:
        raise config_error("labels", _Shown("<empty>"), "Pass at least one class id.")
    if array.dtype.kind not in "iu":
        raise config_error(
            "labels",
            _Shown(f"<array of dtype {array.dtype}>"),
            "Pass integer class ids, e.g. labels.astype(int).",
        )
    if array.dtype == np.uint64:  # np.bincount cannot cast uint64 safely
        array = array.astype(np.int64)
    if int(array.min()) < 0:
        raise config_error(
            "labels", _Shown(f"<array with minimum {int(array.min())}>"), "Class ids start at 0."
        )
    return array


def _check_seed(seed: int) -> int:
    return non_negative_int("seed", seed, numpy_ints=True)


def _epoch_generator(seed: int, epoch: int) -> np.random.Generator:
    """The random generator of one epoch: a pure function of ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch])


def _iterate(indices: IndexArray) -> Iterator[int]:
    """Yield ``indices`` as Python ints, converting one chunk at a time."""
    for start in range(0, len(indices), _CHUNK):
        yield from indices[start : start + _CHUNK].tolist()


class _EpochSampler(Sampler[int]):
    """Base of the samplers: labels, seed, epoch and the cached list of the epoch."""

    def __init__(self, labels: Labels, seed: int) -> None:
        super().__init__()
        self._labels = _as_labels(labels)
        self.seed = _check_seed(seed)
        self.epoch = 0
        self._cached: tuple[int, IndexArray] | None = None

    @property
    def num_classes(self) -> int:
        """The number of classes: the largest class id in ``labels`` plus one."""
        return int(self._labels.max()) + 1

    def set_epoch(self, epoch: int) -> None:
        """Select the list of ``epoch`` (Lightning calls this at every epoch start).

        Args:
            epoch: The epoch about to start.

        Raises:
            RecipeConfigError: If ``epoch`` is not a non-negative integer.
        """
        self.epoch = self._check_epoch(epoch)

    def epoch_indices(self, epoch: int) -> IndexArray:
        """The sample indices of ``epoch``, in order, as a read-only ``int64`` array.

        The list of the most recent epoch asked for is cached, so ``len``, ``iter`` and
        repeated calls agree without drawing again.

        Args:
            epoch: The epoch (need not be the current one).

        Returns:
            The indices; a pure function of the constructor arguments and ``epoch``.

        Raises:
            RecipeConfigError: If ``epoch`` is not a non-negative integer.
        """
        epoch = self._check_epoch(epoch)
        if self._cached is None or self._cached[0] != epoch:
            indices = self._draw(_epoch_generator(self.seed, epoch))
            indices.flags.writeable = False
            self._cached = (epoch, indices)
        return self._cached[1]

    def resampled_counts(self) -> npt.NDArray[np.int64]:
        """How many times each class occurs in the current epoch's list.

        Returns:
            One count per class id, ``num_classes`` long.
        """
        drawn = self._labels[self.epoch_indices(self.epoch)]
        return np.bincount(drawn, minlength=self.num_classes).astype(np.int64)

    def __iter__(self) -> Iterator[int]:
        return _iterate(self.epoch_indices(self.epoch))

    def __len__(self) -> int:
        return len(self.epoch_indices(self.epoch))

    def _draw(self, rng: np.random.Generator) -> IndexArray:
        raise NotImplementedError

    @staticmethod
    def _check_epoch(epoch: int) -> int:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise config_error("epoch", epoch, "Pass a non-negative integer.")
        return int(epoch)


def _small_ints(labels: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.integer[Any]]:
    """The labels in the smallest unsigned dtype, so a stable sort is a radix sort."""
    top = int(labels.max())
    for dtype in (np.uint8, np.uint16):
        if top <= np.iinfo(dtype).max:
            return labels.astype(dtype, copy=False)
    return labels
