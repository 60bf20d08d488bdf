"""The `MixUp` callback (Zhang et al. 2018) over `mixing.mixup`."""

from typing import Any

from lightning_recipes._core.labels import LabelKey
from lightning_recipes.augmentation.batch_augmentation import InputKey, check_alpha
from lightning_recipes.augmentation.mixing import mixup
from lightning_recipes.augmentation.mixing_augmentation import BatchDraws, MixingAugmentation

__all__ = ["MixUp"]


class MixUp(MixingAugmentation):
    """MixUp (Zhang et al. 2018): train on convex combinations of pairs of samples.

    Each augmented training batch is mixed with a permutation of itself,
    ``x = lam * x + (1 - lam) * x[perm]`` with one ``lam ~ Beta(alpha, alpha)`` per
    batch, and the loss becomes ``lam * L(y) + (1 - lam) * L(y[perm])`` computed with the
    module's own loss, unchanged: its ``F.cross_entropy`` (or NLL, BCE) call on the
    batch's labels, or the ``loss_fn`` / ``criterion`` / ``loss`` attribute (or
    ``loss_attr``); class weights (``ClassWeighting``) apply to both terms. The batch
    keeps its hard labels: accuracy and other metrics computed in ``training_step`` see
    them (they then measure agreement with the dominant label of
    mixed inputs). Validation, test and prediction are untouched.

    Args:
        alpha: Beta parameter (0.2-0.4 for ImageNet-scale data, 1.0 for uniform ``lam``).
        p: Probability that a training batch is mixed.
        seed: Seed of the private generators; None uses the run's seed.
        stop_at_epoch: 0-based epoch from which to stop mixing; None never stops.
        input_key: Index (tuple/list batch) or key (dict batch) of the inputs.
        loss_attr: Module attribute holding the loss, when not ``loss_fn`` / ``criterion``
            / ``loss``; None also works when ``training_step`` calls ``F.cross_entropy``.
        label_key: Where the labels are in a batch (index or key); None for ``(x, y)``.

    Examples:
        >>> MixUp(alpha=0.4, stop_at_epoch=8).alpha
        0.4
    """

    identity = ("alpha", "p", "seed", "stop_at_epoch")
    recipe = "MixUp"

    def __init__(
        self,
        alpha: float = 0.4,
        *,
        p: float = 1.0,
        seed: int | None = None,
        stop_at_epoch: int | None = None,
        input_key: InputKey = 0,
        loss_attr: str | None = None,
        label_key: LabelKey = None,
    ) -> None:
        self.alpha = check_alpha(alpha)
        super().__init__(
            p=p,
            seed=seed,
            stop_at_epoch=stop_at_epoch,
            input_key=input_key,
            loss_attr=loss_attr,
            label_key=label_key,
        )

    def mix(self, batch: Any, draws: BatchDraws) -> None:
        """Mix the inputs and tell the loss."""
        inputs = self.get_inputs(batch)
        index = draws.partners(inputs.shape[0], inputs.device)
        self.set_inputs(batch, mixup(inputs, index, draws.lam))
        assert self.loss_path is not None
        self.loss_path.mix(index, draws.lam)

    def summary_facts(self) -> dict[str, Any]:
        """Alpha and p."""
        return {"alpha": self.alpha, "p": self.p}
