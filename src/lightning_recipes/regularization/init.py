"""Deprecated: the initialisation schemes moved to `lightning_recipes.initialization.schemes`.

``lightning_recipes.regularization.init.init_modules_`` (and every other name of that
module) still works, with a `DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.initialization.schemes")
