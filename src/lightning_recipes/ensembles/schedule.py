"""Deprecated: `snapshot_schedule` moved to `lightning_recipes.lr` with every LR schedule.

``lightning_recipes.ensembles.schedule.snapshot_schedule`` (and ``Interval``) still work,
with a `DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.lr.cosine_restarts")
