"""Deprecated: `GradientMonitor` moved to `lightning_recipes.gradients.gradient_monitor`.

``lightning_recipes.gradients.monitor.GradientMonitor`` (and the module's other names,
``REMEDIES`` and ``parameter_groups``) still work, with a `DeprecationWarning`, for one
release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute

# Names this module re-exported from elsewhere: where each lives.
_MOVED = {
    "REMEDIES": "lightning_recipes.gradients.anomaly",
    "parameter_groups": "lightning_recipes.gradients.groups",
}


def __getattr__(name: str) -> Any:
    new = _MOVED.get(name, "lightning_recipes.gradients.gradient_monitor")
    return moved_attribute(__name__, name, new)
