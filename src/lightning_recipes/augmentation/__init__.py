"""Augmentation: MixUp, CutMix, label smoothing and on-device image transforms.

The math is in `mixing` (pure functions) and `images`; the callbacks are thin adapters
that act on training batches only. See ``docs/recipes/augmentation.md``.
"""

from lightning_recipes._core.loss import LOSS_ATTRIBUTES
from lightning_recipes.augmentation.batch_augmentation import BatchAugmentation
from lightning_recipes.augmentation.cut_mix import CutMix
from lightning_recipes.augmentation.images import (
    FILL_MODES,
    ImageAugmentation,
    augment_images,
    build_image_transform,
)
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
    "LOSS_ATTRIBUTES",
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
