"""A training shuffle that a resumed run replays exactly."""

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import RandomSampler

__all__ = ["EpochShuffleSampler"]


class EpochShuffleSampler(RandomSampler):
    """Shuffle with a permutation that depends only on ``(seed, epoch)``.

    A ``DataLoader(shuffle=True, generator=g)`` draws each epoch's order from a generator
    whose state is not in the checkpoint, so a run resumed at epoch 5 replays epoch 0's
    order and diverges from the run it continues. This sampler's order for epoch ``e`` is
    ``randperm(n)`` seeded with ``seed + e`` (the rule of ``DistributedSampler``), and
    Lightning calls ``set_epoch`` on it at every epoch start, so an interrupted and
    resumed run sees the same batches as an uninterrupted one. Under DDP, Lightning
    replaces it (it is a ``RandomSampler``) with a shuffling ``DistributedSampler``, which
    follows the same rule.

    Args:
        data_source: The dataset (only its length is used).
        seed: Base seed.

    Examples:
        >>> sampler = EpochShuffleSampler(range(5), seed=1)
        >>> first = list(sampler); sampler.set_epoch(1); second = list(sampler)
        >>> sorted(first) == sorted(second) == [0, 1, 2, 3, 4], first != second
        (True, True)
    """

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` (called by Lightning at each epoch start).

        Args:
            epoch: The epoch about to start.
        """
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()
