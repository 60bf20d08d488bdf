"""ImageAugmentation: random affine warps and flips of the training images, on device.

The transforms and their seeded application are in `lightning_recipes.augmentation.images`
(`build_image_transform`, `augment_images`); this callback decides which batches they
touch (training batches only, through the batch pipeline).
"""

from typing import Any

import numpy as np

from lightning_recipes._core.validate import flag, is_real
from lightning_recipes.augmentation.batch_augmentation import (
    BatchAugmentation,
    InputKey,
    check_image_shape,
)
from lightning_recipes.augmentation.images import (
    FILL_MODES,
    FillMode,
    augment_images,
    build_image_transform,
)
from lightning_recipes.errors import choice_error, config_error

__all__ = ["ImageAugmentation"]


class ImageAugmentation(BatchAugmentation):
    """Random rotation, translation, scaling, shear and flips of training images, on device.

    The on-device counterpart of Keras' ``ImageDataGenerator``: each training image
    ``(N, C, H, W)`` or ``(N, H, W)`` gets its own random affine warp (kornia's
    ``RandomAffine``) and flips, applied to the batch after it reached the device and
    before ``training_step`` (with `MixUp` / `CutMix`, images are transformed first,
    whatever the callback order). Validation, test and prediction batches are never
    touched, and the labels are unchanged. Draws are seeded by seed, rank, epoch and
    batch index: a resumed run replays them, and the global RNG is not touched.

    Args:
        rotation: Maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        translate: Maximum shift as a fraction of the width and height, one value or
            ``(horizontal, vertical)`` (Keras' ``width_shift_range``,
            ``height_shift_range``).
        scale: Zoom range ``(low, high)``, e.g. ``(0.9, 1.1)``; None keeps the size.
        shear: Maximum shear angle in degrees.
        horizontal_flip: Flip half of the images left-right.
        vertical_flip: Flip half of the images upside down.
        fill_mode: How pixels brought in from outside are filled: ``"constant"``
            (``fill_value``), ``"nearest"`` (the border's), ``"reflect"``.
        fill_value: The constant fill.
        p: Probability that an image is transformed (drawn per image).
        seed: Seed of the private generators; None uses the run's seed.
        stop_at_epoch: 0-based epoch from which to stop; None never stops.
        input_key: Index (tuple/list batch) or key (dict batch) of the images.
        image_shape: ``(C, H, W)`` of flat inputs ``(N, C*H*W)``; None when the batch
            holds images.

    Examples:
        >>> aug = ImageAugmentation(rotation=10, translate=0.1, horizontal_flip=True)
        >>> aug.fill_mode
        'constant'
    """

    identity = ("rotation", "translate", "scale", "shear", "flips=_flips", "seed")
    stage_kind = "transform"
    recipe = "Image augmentation"
    uses_loss = False
    per_batch = False

    def __init__(
        self,
        rotation: float = 0.0,
        translate: float | tuple[float, float] = 0.0,
        scale: tuple[float, float] | None = None,
        shear: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        fill_mode: FillMode = "constant",
        fill_value: float = 0.0,
        *,
        p: float = 1.0,
        seed: int | None = None,
        stop_at_epoch: int | None = None,
        input_key: InputKey = 0,
        image_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.image_shape = check_image_shape(image_shape)
        if not is_real(rotation) or not 0 <= rotation <= 180:
            raise config_error("rotation", rotation, "Pass a maximum angle in degrees, 0 to 180.")
        shift = (translate, translate) if is_real(translate) else translate
        if (
            not isinstance(shift, tuple | list)
            or len(shift) != 2
            or not all(is_real(s) and 0 <= s < 1 for s in shift)
        ):
            raise config_error(
                "translate",
                translate,
                "Pass a fraction of the image in [0, 1), or (horizontal, vertical) fractions.",
            )
        if scale is not None and (
            not isinstance(scale, tuple | list)
            or len(scale) != 2
            or not all(is_real(s) and s > 0 for s in scale)
            or scale[0] > scale[1]
        ):
            raise config_error("scale", scale, "Pass a zoom range (low, high), 0 < low <= high.")
        if not is_real(shear) or not 0 <= shear < 90:
            raise config_error("shear", shear, "Pass a maximum shear angle in degrees, 0 to 90.")
        flag("horizontal_flip", horizontal_flip)
        flag("vertical_flip", vertical_flip)
        if str(fill_mode) == "wrap":
            raise config_error(
                "fill_mode", fill_mode, "Keras' 'wrap' has no kornia equivalent: pass 'reflect'."
            )
        if fill_mode not in FILL_MODES:
            raise choice_error("fill_mode", fill_mode, FILL_MODES)
        if not is_real(fill_value) or not np.isfinite(fill_value):
            raise config_error("fill_value", fill_value, "Pass a finite number.")
        if fill_value and fill_mode != "constant":
            raise config_error(
                "fill_value", fill_value, "fill_value is used with fill_mode='constant' only."
            )
        if not (
            rotation or any(shift) or scale is not None or shear or horizontal_flip or vertical_flip
        ):
            raise config_error(
                "rotation",
                rotation,
                "ImageAugmentation has nothing to do: set rotation, translate, scale, shear or "
                "a flip.",
            )
        super().__init__(
            p=p, seed=seed, stop_at_epoch=stop_at_epoch, input_key=input_key, loss_attr=None
        )
        self.rotation = float(rotation)
        self.translate = (float(shift[0]), float(shift[1]))
        self.scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.shear = float(shear)
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.fill_mode: FillMode = fill_mode
        self.fill_value = float(fill_value)
        self.transform = build_image_transform(
            rotation=self.rotation,
            translate=self.translate,
            scale=self.scale,
            shear=self.shear,
            horizontal_flip=horizontal_flip,
            vertical_flip=vertical_flip,
            fill_mode=fill_mode,
            p=self.p,
        )

    @property
    def _flips(self) -> tuple[bool, bool]:
        return (self.horizontal_flip, self.vertical_flip)

    def augment(self, batch: Any, rng: np.random.Generator) -> None:
        """Transform the batch's images."""
        images, flat = self.get_images(batch)
        seed = int(rng.integers(2**63))
        self.set_images(batch, augment_images(self.transform, images, seed, self.fill_value), flat)

    def summary_facts(self) -> dict[str, Any]:
        """The transform's settings."""
        return {
            "rotation": self.rotation,
            "translate": list(self.translate),
            "scale": None if self.scale is None else list(self.scale),
            "shear": self.shear,
            "horizontal flip": self.horizontal_flip,
            "vertical flip": self.vertical_flip,
            "fill mode": self.fill_mode,
        }
