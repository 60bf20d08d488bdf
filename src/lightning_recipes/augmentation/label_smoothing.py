"""The `LabelSmoothing` callback (Szegedy et al. 2016) through the core's loss path."""

from typing import Any

import numpy as np
import torch

from lightning_recipes._core.labels import LabelKey
from lightning_recipes._core.validate import is_real
from lightning_recipes.augmentation.batch_augmentation import BatchAugmentation
from lightning_recipes.errors import config_error

__all__ = ["LabelSmoothing"]


class LabelSmoothing(BatchAugmentation):
    """Label smoothing (Szegedy et al. 2016) with the module's own loss.

    The training loss becomes ``(1 - smoothing) * L(y) + smoothing * L(u)``, ``u`` the
    uniform target (``1/K`` per class for cross-entropy-like losses, 0.5 per label for
    ``BCEWithLogitsLoss``): the loss of the smoothed target for any loss linear in its
    target. Class weights installed in the loss apply to both terms (``CrossEntropyLoss``
    weights the uniform term per class and averages it over samples). With `MixUp` or
    `CutMix` the mixed target is smoothed. The inputs and labels are untouched;
    validation uses the plain loss. With ``NLLLoss`` / ``F.nll_loss`` on log-probabilities
    the uniform term is their mean (the cross-entropy of the uniform target). Alone, on an
    unweighted cross-entropy of class indices, the call becomes torch's own
    ``F.cross_entropy(..., label_smoothing=smoothing)``: the same loss in one call. Refused:
    a loss that already smooths, and losses other than classification ones (MSE, ...).

    Args:
        smoothing: The share of the uniform target, in (0, 1).
        stop_at_epoch: 0-based epoch from which to stop smoothing; None never stops.
        loss_attr: Module attribute holding the loss.
        label_key: Where the labels are in a batch (index or key); None for ``(x, y)``.

    Examples:
        >>> LabelSmoothing(0.1).smoothing
        0.1
    """

    identity = ("smoothing", "stop_at_epoch")
    stage_kind = "smooth"
    recipe = "Label smoothing"
    draws = False  # p is 1 and smoothing draws nothing

    def __init__(
        self,
        smoothing: float = 0.1,
        *,
        stop_at_epoch: int | None = None,
        loss_attr: str | None = None,
        label_key: LabelKey = None,
    ) -> None:
        if not is_real(smoothing) or not 0.0 < smoothing < 1.0:
            raise config_error("smoothing", smoothing, "Pass a value in (0, 1), e.g. 0.1.")
        self.smoothing = float(smoothing)
        super().__init__(
            p=1.0,
            seed=0,
            stop_at_epoch=stop_at_epoch,
            input_key=0,
            loss_attr=loss_attr,
            label_key=label_key,
        )

    def _check_loss(self, loss: torch.nn.Module) -> None:
        if getattr(loss, "label_smoothing", 0.0):
            raise config_error(
                "smoothing",
                self.smoothing,
                f"The loss already smooths (label_smoothing={loss.label_smoothing}); "
                "remove one of the two.",
            )

    def augment(self, batch: Any, rng: np.random.Generator) -> None:
        """Tell the loss to smooth."""
        assert self.loss_path is not None
        self.loss_path.smooth(self.smoothing)

    def summary_facts(self) -> dict[str, Any]:
        """The smoothing."""
        return {"smoothing": self.smoothing}
