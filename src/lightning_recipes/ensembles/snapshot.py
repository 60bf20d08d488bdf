"""Deprecated: `SnapshotEnsemble` moved to `lightning_recipes.ensembles.snapshot_ensemble`.

``lightning_recipes.ensembles.snapshot.SnapshotEnsemble`` still works, with a
`DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.ensembles.snapshot_ensemble")
