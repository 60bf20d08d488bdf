"""Augmentation: MixUp, CutMix, label smoothing and on-device image transforms.

The math is in `mixing` (pure functions) and `images`; the callbacks are thin adapters
that act on training batches only, each in a module named after it (`mix_up`, `cut_mix`,
`label_smoothing`, `image_augmentation`). See ``docs/recipes/augmentation.md``.

``LOSS_ATTRIBUTES`` (the core's list of loss attributes) is no longer exported here: its
old name still works for one release, with a `DeprecationWarning`.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.augmentation.batch_augmentation import BatchAugmentation
from lightning_recipes.augmentation.cut_mix import CutMix
from lightning_recipes.augmentation.image_augmentation import ImageAugmentation
from lightning_recipes.augmentation.images import FILL_MODES, augment_images, build_image_transform
from lightning_recipes.augmentation.label_smoothing import LabelSmoothing
from lightning_recipes.augmentation.mix_up import MixUp
from lightning_recipes.augmentation.mixing import (
    MixTerm,
    compose_mix,
    cutmix,
    cutmix_box,
    mixed_loss,
    mixup,
    sample_lam,
)

__all__ = [
    "FILL_MODES",
    "ImageAugmentation",
    "augment_images",
    "build_image_transform",
    "BatchAugmentation",
    "CutMix",
    "LabelSmoothing",
    "MixTerm",
    "MixUp",
    "compose_mix",
    "cutmix",
    "cutmix_box",
    "mixed_loss",
    "mixup",
    "sample_lam",
]


def __getattr__(name: str) -> Any:
    # Deprecated (one release): the core's list of loss attributes, not augmentation's.
    if name == "LOSS_ATTRIBUTES":
        return moved_attribute(__name__, name, "lightning_recipes._core.loss")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
