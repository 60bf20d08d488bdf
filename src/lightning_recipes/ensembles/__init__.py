"""Snapshot ensembles and ensembles of trained models (issue 17).

- `average_probabilities`, `cosine_cycle_lr`, `cycle_end_epochs`: the math, pure.
- the cyclic cosine schedule with restarts for ``configure_optimizers`` is
  `lightning_recipes.lr.snapshot_schedule` (every LR schedule lives in ``lr``).
- `SnapshotEnsemble`: a callback keeping the weights at the end of every cycle.
- `EnsembleModule`: averages the probabilities of snapshots or independently trained models.

`WeightAverage` (SWA, EMA) moved to `lightning_recipes.averaging`: its old name here (and
``AverageKind``'s) still works for one release, with a `DeprecationWarning`.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.ensembles.average import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.ensembles.module import EnsembleModule
from lightning_recipes.ensembles.snapshot_ensemble import SnapshotEnsemble

__all__ = [
    "EnsembleModule",
    "SnapshotEnsemble",
    "average_probabilities",
    "cosine_cycle_lr",
    "cycle_end_epochs",
]

# Deprecated names (one release): where each lives now.
_MOVED = {
    "snapshot_schedule": "lightning_recipes.lr.cosine_restarts",  # with every LR schedule
    "Interval": "lightning_recipes.lr.cosine_restarts",
    "WeightAverage": "lightning_recipes.averaging",
    "AverageKind": "lightning_recipes.averaging.weight_average",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, _MOVED)
