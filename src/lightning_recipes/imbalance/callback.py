"""Deprecated: `ClassWeighting` moved to `lightning_recipes.imbalance.class_weighting`.

``lightning_recipes.imbalance.callback.ClassWeighting`` (and ``binary_pos_weight``, from
`lightning_recipes.imbalance.weights`) still work, with a `DeprecationWarning`, for one
release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute

# Names this module re-exported from elsewhere: where each lives.
_MOVED = {
    "binary_pos_weight": "lightning_recipes.imbalance.weights",
    "LOSS_ATTRIBUTES": "lightning_recipes._core.loss",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(
        __name__, name, _MOVED.get(name, "lightning_recipes.imbalance.class_weighting")
    )
