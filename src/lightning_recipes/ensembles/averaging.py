"""Deprecated: `WeightAverage` moved to `lightning_recipes.averaging`.

``lightning_recipes.ensembles.averaging.WeightAverage`` (and ``AverageKind``,
``ema_decay_for``, ``ema_horizon``) still work, with a `DeprecationWarning`, for one
release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    if name in ("ema_decay_for", "ema_horizon"):
        return moved_attribute(__name__, name, "lightning_recipes.averaging.ema")
    return moved_attribute(__name__, name, "lightning_recipes.averaging.weight_average")
