"""Snapshot ensembles and ensembles of trained models (issue 17).

- `average_probabilities`, `cosine_cycle_lr`, `cycle_end_epochs`: the math, pure.
- the cyclic cosine schedule with restarts for ``configure_optimizers`` is
  `lightning_recipes.lr.snapshot_schedule` (every LR schedule lives in ``lr``).
- `SnapshotEnsemble`: a callback keeping the weights at the end of every cycle.
- `WeightAverage`: SWA or EMA on Lightning's `WeightAveraging`, with its defects fixed.
- `EnsembleModule`: averages the probabilities of snapshots or independently trained models.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.ensembles.average import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.ensembles.averaging import AverageKind, WeightAverage
from lightning_recipes.ensembles.module import EnsembleModule
from lightning_recipes.ensembles.snapshot import SnapshotEnsemble

__all__ = [
    "AverageKind",
    "WeightAverage",
    "EnsembleModule",
    "SnapshotEnsemble",
    "average_probabilities",
    "cosine_cycle_lr",
    "cycle_end_epochs",
]


def __getattr__(name: str) -> Any:
    if name in ("snapshot_schedule", "Interval"):  # moved to lr with every LR schedule
        return moved_attribute(__name__, name, "lightning_recipes.lr.cosine_restarts")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
