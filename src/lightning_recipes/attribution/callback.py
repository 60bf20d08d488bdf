"""Deprecated: `Attribution` moved to `lightning_recipes.attribution.attribution`.

``lightning_recipes.attribution.callback.Attribution`` (and ``feature_importance``, from
`lightning_recipes.attribution.explanation`) still work, with a `DeprecationWarning`, for
one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute

# Names this module re-exported from elsewhere: where each lives.
_MOVED = {
    "feature_importance": "lightning_recipes.attribution.explanation",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(
        __name__, name, _MOVED.get(name, "lightning_recipes.attribution.attribution")
    )
