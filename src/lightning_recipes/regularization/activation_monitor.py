"""Deprecated: `ActivationMonitor` moved to `lightning_recipes.activations`.

``lightning_recipes.regularization.activation_monitor.ActivationMonitor`` still works,
with a `DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.activations.activation_monitor")
