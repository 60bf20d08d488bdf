"""Snapshot ensembles and ensembles of trained models (issue 17).

- `average_probabilities`, `cosine_cycle_lr`, `cycle_end_epochs`: the math, pure.
- `snapshot_schedule`: the cyclic cosine schedule with restarts for ``configure_optimizers``.
"""

from lightning_recipes.ensembles.average import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.ensembles.schedule import Interval, snapshot_schedule

__all__ = [
    "Interval",
    "average_probabilities",
    "cosine_cycle_lr",
    "cycle_end_epochs",
    "snapshot_schedule",
]
