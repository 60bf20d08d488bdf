"""On-device image augmentation with kornia: random affine warps and flips, seeded.

The transforms are kornia's (``RandomAffine``, ``RandomHorizontalFlip``,
``RandomVerticalFlip``), run on the batch where it already is (the GPU when training on
one), one random draw per image. `augment_images` runs them with its own seed inside
`preserved_rng`, so the global RNG is not advanced and the same seed gives the same
images. The thin callback, `ImageAugmentation`, is in
`lightning_recipes.augmentation.image_augmentation` (its old path here still works for one
release, with a `DeprecationWarning`).
"""

from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes._core.optional import require
from lightning_recipes._core.rng import preserved_rng

__all__ = ["FILL_MODES", "augment_images", "build_image_transform"]

FillMode = Literal["constant", "nearest", "reflect"]
FILL_MODES: tuple[str, ...] = ("constant", "nearest", "reflect")
"""Keras' ``fill_mode`` names; ``"wrap"`` has no kornia equivalent and is refused."""
_KORNIA_PADDING = {"constant": "zeros", "nearest": "border", "reflect": "reflection"}


def build_image_transform(
    *,
    rotation: float = 0.0,
    translate: float | tuple[float, float] = 0.0,
    scale: tuple[float, float] | None = None,
    shear: float = 0.0,
    horizontal_flip: bool = False,
    vertical_flip: bool = False,
    fill_mode: FillMode = "constant",
    p: float = 1.0,
) -> nn.Module:
    """The kornia transform for these settings (arguments as `ImageAugmentation`'s)."""
    augmentation = require("kornia.augmentation", extra="augment", feature="ImageAugmentation")
    steps: list[nn.Module] = []
    shift = (translate, translate) if isinstance(translate, int | float) else tuple(translate)
    if rotation or any(shift) or scale is not None or shear:
        steps.append(
            augmentation.RandomAffine(
                degrees=float(rotation),
                translate=tuple(float(s) for s in shift) if any(shift) else None,
                scale=tuple(float(s) for s in scale) if scale is not None else None,
                shear=float(shear) if shear else None,
                padding_mode=_KORNIA_PADDING[fill_mode],
                p=p,
            )
        )
    if horizontal_flip:
        steps.append(augmentation.RandomHorizontalFlip(p=0.5 * p))
    if vertical_flip:
        steps.append(augmentation.RandomVerticalFlip(p=0.5 * p))
    return nn.Sequential(*steps)


def augment_images(
    transform: nn.Module, images: Tensor, seed: int, fill_value: float = 0.0
) -> Tensor:
    """Apply ``transform`` to a batch of images with its own seed.

    Args:
        transform: From `build_image_transform`.
        images: ``(N, C, H, W)`` or ``(N, H, W)`` floating-point images.
        seed: The seed of this call's draws (the global RNG is left as it was).
        fill_value: Value of the pixels a ``"constant"`` warp brings in from outside
            (kornia pads with zeros: the images are shifted by ``fill_value`` around the
            warp, which is exact for its bilinear sampling).

    Returns:
        The augmented images, a new tensor of the same shape.

    Examples:
        >>> t = build_image_transform(horizontal_flip=True)
        >>> x = torch.rand(4, 1, 8, 8)
        >>> torch.equal(augment_images(t, x, 3), augment_images(t, x, 3))
        True
    """
    flat = images.dim() == 3
    batch = images.unsqueeze(1) if flat else images
    if fill_value:
        batch = batch - fill_value
    with preserved_rng():
        torch.manual_seed(seed)
        out = transform(batch)
    if fill_value:
        out = out + fill_value
    return out.squeeze(1) if flat else out  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    # Deprecated (one release): the callback moved to a module named after it.
    if name == "ImageAugmentation":
        return moved_attribute(__name__, name, "lightning_recipes.augmentation.image_augmentation")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
