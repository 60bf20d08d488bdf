"""Deprecated: `MetricRecorder` moved to `lightning_recipes.tuning.metric_recorder`.

``lightning_recipes.tuning.recorder.MetricRecorder`` (and ``not_logged``) still work, with
a `DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.tuning.metric_recorder")
