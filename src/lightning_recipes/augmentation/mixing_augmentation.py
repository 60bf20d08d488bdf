"""The draws of MixUp and CutMix, by block of batches, and their common base.

A block's draws (gate, ``lam``, CutMix's box centre, the partner permutations) come from a
generator seeded by ``(seed, callback, rank, epoch, block)``: one seeding and one sort for
64 batches instead of one each (the per-batch draws cost ~70 us of a ~3.5 ms MNIST-1D step,
measured), and a batch's draws depend only on that key and its index, so a resumed run
replays them.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from lightning.pytorch import Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core.batch_pipeline import StageKind
from lightning_recipes._core.rng import reseed
from lightning_recipes.augmentation.batch_augmentation import BatchAugmentation
from lightning_recipes.augmentation.mixing import permutations

__all__ = ["PLAN_BATCHES", "BatchDraws", "MixPlan", "MixingAugmentation"]

PLAN_BATCHES = 64
"""Consecutive training batches whose mixing draws are made together (`MixPlan`)."""


@dataclass
class MixPlan:
    """The mixing draws of `PLAN_BATCHES` consecutive training batches of one epoch.

    Drawn together from a generator seeded by ``(seed, callback, rank, epoch, block)``: one
    seeding and one sort for 64 batches instead of one each (the per-batch draws cost
    ~70 us of a ~3.5 ms MNIST-1D step, measured). A batch's draws depend only on that key
    and its index, so a run resumed mid-epoch replays them; the permutations are drawn
    per batch size (the last, shorter batch gets its own), never from the order of use.
    """

    key: tuple[int, int]
    draws: np.ndarray  # (PLAN_BATCHES, 4): gate, lam, centre row, centre column
    seed: int  # of the permutations
    partners: dict[tuple[int, torch.device], Tensor]  # (size, device) -> permutations

    def batch(self, row: int) -> "BatchDraws":
        """The draws of the block's ``row``-th batch."""
        gate, lam, *centre = self.draws[row].tolist()
        return BatchDraws(self, row, gate, lam, (centre[0], centre[1]))


@dataclass
class BatchDraws:
    """One batch's mixing draws (from its `MixPlan`)."""

    plan: MixPlan
    row: int
    gate: float
    lam: float
    centre: tuple[float, float]

    def partners(self, size: int, device: torch.device) -> Tensor:
        """The batch's partner permutation (a row of the plan's, for this batch size)."""
        found = self.plan.partners.get((size, device))
        if found is None:
            # One stream per batch size, whatever the order the sizes come in.
            seed = (self.plan.seed + size * 0x9E3779B97F4A7C15) % 2**63
            found = permutations(PLAN_BATCHES, size, seed)
            if device.type != "cpu":
                found = found.to(device, non_blocking=True)
            self.plan.partners[(size, device)] = found
        return found[self.row]


class MixingAugmentation(BatchAugmentation):
    """Base of MixUp and CutMix: a ``Beta(alpha, alpha)`` weight and a partner permutation.

    Not used directly: its subclasses mix the batch in `mix`.
    """

    stage_kind: ClassVar[StageKind] = "mix"
    alpha: float
    _plan: MixPlan | None = None

    @override
    def apply(self, batch: Any, trainer: Trainer, batch_idx: int) -> bool:
        block, row = divmod(batch_idx, PLAN_BATCHES)
        key = (trainer.current_epoch, block)
        plan = self._plan
        if plan is None or plan.key != key:
            plan = self._plan = self._draw_plan(trainer.global_rank, key)
        draws = plan.batch(row)
        if self.p < 1.0 and draws.gate >= self.p:
            return False
        self.mix(batch, draws)
        return True

    def _draw_plan(self, rank: int, key: tuple[int, int]) -> MixPlan:
        assert self._seed is not None
        if self._draws is None:
            self._draws = np.random.default_rng()
        rng = reseed(self._draws, [self._seed, self._salt, rank, *key])
        draws = np.empty((PLAN_BATCHES, 4))
        draws[:, 0] = rng.random(PLAN_BATCHES)
        draws[:, 1] = rng.beta(self.alpha, self.alpha, PLAN_BATCHES)
        draws[:, 2:] = rng.random((PLAN_BATCHES, 2))
        return MixPlan(key, draws, int(rng.integers(2**63)), {})

    def mix(self, batch: Any, draws: BatchDraws) -> None:
        """Mix ``batch`` in place with ``draws`` and tell the loss (subclasses)."""
        raise NotImplementedError

    @override
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_plan", None)  # drawn again from the seed
        return state
