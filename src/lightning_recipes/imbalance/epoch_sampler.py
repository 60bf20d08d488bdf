"""The base of the resampling samplers: an epoch's list as a pure function of seed and epoch.

See `lightning_recipes.imbalance.samplers` for why (DDP's sampler wrapper, resume).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Sampler

from lightning_recipes._core.labels import class_ids
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
        self._labels = class_ids(labels, whole_floats=False, empty=False)
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
