"""The `CutMix` callback (Yun et al. 2019) over `mixing.cutmix_box` and `mixing.cutmix`."""

from typing import Any

from lightning_recipes._core.labels import LabelKey
from lightning_recipes.augmentation.batch_augmentation import (
    InputKey,
    check_alpha,
    check_image_shape,
)
from lightning_recipes.augmentation.mixing import cutmix, cutmix_box
from lightning_recipes.augmentation.mixing_augmentation import BatchDraws, MixingAugmentation

__all__ = ["CutMix"]


class CutMix(MixingAugmentation):
    """CutMix (Yun et al. 2019): paste a random box of another sample into each image.

    Each augmented training batch of images ``(N, C, H, W)`` (or ``(N, H, W)``) gets a
    box of area ``1 - lam`` (``lam ~ Beta(alpha, alpha)``, one box position per batch,
    clipped at the borders) from a permutation of itself; the loss becomes
    ``lam * L(y) + (1 - lam) * L(y[perm])`` with ``lam`` the share of each image that is
    still its own, computed with the module's own loss as for `MixUp`.

    Args:
        alpha: Beta parameter (1.0 in the paper: the box area is uniform).
        p: Probability that a training batch is mixed.
        seed: Seed of the private generators; None uses the run's seed.
        stop_at_epoch: 0-based epoch from which to stop; None never stops.
        input_key: Index (tuple/list batch) or key (dict batch) of the images.
        loss_attr: Module attribute holding the loss.
        image_shape: ``(C, H, W)`` of flat inputs ``(N, C*H*W)`` (flattened images, as
            Keras' MNIST examples keep them); None when the batch holds images.
        label_key: Where the labels are in a batch (index or key); None for ``(x, y)``.

    Examples:
        >>> CutMix(alpha=1.0, p=0.5).p
        0.5
    """

    identity = ("alpha", "p", "seed", "stop_at_epoch")
    recipe = "CutMix"

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        p: float = 1.0,
        seed: int | None = None,
        stop_at_epoch: int | None = None,
        input_key: InputKey = 0,
        loss_attr: str | None = None,
        image_shape: tuple[int, int, int] | None = None,
        label_key: LabelKey = None,
    ) -> None:
        self.alpha = check_alpha(alpha)
        self.image_shape = check_image_shape(image_shape)
        super().__init__(
            p=p,
            seed=seed,
            stop_at_epoch=stop_at_epoch,
            input_key=input_key,
            loss_attr=loss_attr,
            label_key=label_key,
        )

    def mix(self, batch: Any, draws: BatchDraws) -> None:
        """Paste the boxes and tell the loss."""
        inputs, flat = self.get_images(batch)
        box = cutmix_box(inputs.shape[-2], inputs.shape[-1], draws.lam, draws.centre)
        index = draws.partners(inputs.shape[0], inputs.device)
        mixed, lam = cutmix(inputs, index, box)
        self.set_images(batch, mixed, flat)
        assert self.loss_path is not None
        self.loss_path.mix(index, lam)

    def summary_facts(self) -> dict[str, Any]:
        """Alpha and p."""
        return {"alpha": self.alpha, "p": self.p}
