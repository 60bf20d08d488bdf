"""Snapshot ensembles and ensembles of trained models (issue 17).

- `average_probabilities`, `cosine_cycle_lr`, `cycle_end_epochs`: the math, pure.
- `snapshot_schedule`: the cyclic cosine schedule with restarts for ``configure_optimizers``.
- `SnapshotEnsemble`: a callback keeping the weights at the end of every cycle.
- `WeightAverage`: SWA or EMA on Lightning's `WeightAveraging`, with its defects fixed.
- `EnsembleModule`: averages the probabilities of snapshots or independently trained models.
"""

from lightning_recipes.ensembles.average import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.ensembles.averaging import AverageKind, WeightAverage
from lightning_recipes.ensembles.module import EnsembleModule
from lightning_recipes.ensembles.schedule import Interval, snapshot_schedule
from lightning_recipes.ensembles.snapshot import SnapshotEnsemble

__all__ = [
    "AverageKind",
    "WeightAverage",
    "EnsembleModule",
    "SnapshotEnsemble",
    "Interval",
    "average_probabilities",
    "cosine_cycle_lr",
    "cycle_end_epochs",
    "snapshot_schedule",
]
