"""Deprecated: `LRFinder` (with `find_lr`) moved to `lightning_recipes.lr.lr_finder`.

``lightning_recipes.lr.finder.LRFinder`` (and ``find_lr``, ``DEFAULT_SUGGESTION``) still
work, with a `DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, "lightning_recipes.lr.lr_finder")
