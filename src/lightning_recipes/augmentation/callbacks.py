"""Deprecated: the augmentation callbacks moved to one module each.

``lightning_recipes.augmentation.callbacks.MixUp`` (and the others) still work, with a
`DeprecationWarning`, for one release: import them from ``lightning_recipes.augmentation``
(or ``lightning_recipes.callbacks``).
"""

import importlib
import warnings
from typing import Any

_MOVED = {
    "BatchAugmentation": "batch_augmentation",
    "InputKey": "batch_augmentation",
    "check_image_shape": "batch_augmentation",
    "PLAN_BATCHES": "mixing_augmentation",
    "MixUp": "mix_up",
    "CutMix": "cut_mix",
    "LabelSmoothing": "label_smoothing",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = f"lightning_recipes.augmentation.{_MOVED[name]}"
    warnings.warn(
        f"lightning_recipes.augmentation.callbacks.{name} is deprecated and will be removed "
        f"in the next release: import it from lightning_recipes.augmentation ({module}).",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), name)
