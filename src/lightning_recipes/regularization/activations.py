"""Deprecated: the activation statistics moved to `lightning_recipes.activations.stats`.

``lightning_recipes.regularization.activations.activation_stats`` (and every other name
of that module) still works, with a `DeprecationWarning`, for one release; the figure,
``activations_figure``, is in `lightning_recipes.activations.figure`.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    if name == "activations_figure":
        return moved_attribute(__name__, name, "lightning_recipes.activations.figure")
    return moved_attribute(__name__, name, "lightning_recipes.activations.stats")
