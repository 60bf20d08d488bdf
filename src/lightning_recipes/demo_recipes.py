"""The recipes the demo can add, and the callbacks they become in a working order."""

from collections.abc import Sequence
from typing import Literal

from lightning.pytorch import Callback

from lightning_recipes.demo_options import DemoData

__all__ = ["DEMO_RECIPES", "MNIST1D_SHAPE", "snapshot_cycle"]


DEMO_RECIPES = (
    "class-weighting",
    "find-lr",
    "early-stopping",
    "freeze",
    "attribution",
    "weight-penalty",
    "weight-init",
    "activations",
    "mixup",
    "cutmix",
    "label-smoothing",
    "image-augmentation",
    "adversarial",
    "robustness",
    "weight-average",
    "snapshot-ensemble",
)
"""Recipes the demo can add, in the order their callbacks run."""

MNIST1D_SHAPE = (1, 1, 40)
"""An MNIST-1D signal seen as a ``(C, H, W)`` image by the image recipes (a 1 x 40 strip)."""


def _recipe_callbacks(
    recipes: Sequence[str],
    max_epochs: int,
    layout: Literal["flat", "image"] = "flat",
    data: DemoData = "digits",
) -> list[Callback]:
    """The demo's callbacks for the chosen recipes, in a working order.

    On MNIST-1D (always the flat layout, ``(N, 40)``) the image recipes see each signal as
    a 1 x 40 image: CutMix pastes a segment of another signal, the augmentation shifts and
    stretches along time (no rotation, shear or flip: a reversed or tilted signal is another
    signal); the signals are standardised, not in [0, 1], so the attacks have no valid range
    to clip to and their radii are in standard deviations.
    """
    chosen = set(recipes)
    signals = data == "mnist1d"
    callbacks: list[Callback] = []
    if "class-weighting" in chosen:  # before the LR finder: it sweeps the weighted loss
        from lightning_recipes.imbalance import ClassWeighting

        callbacks.append(ClassWeighting())
    if "freeze" in chosen:
        from lightning_recipes.finetuning import Freezer

        callbacks.append(
            Freezer(unfreeze="gradual", every_n_epochs=max(max_epochs // 7, 1), lr_decay=0.5)
        )
    if "find-lr" in chosen:
        from lightning_recipes.lr import LRFinder

        callbacks.append(LRFinder())
    if "early-stopping" in chosen:
        from lightning_recipes.stopping import EarlyStopping

        # Macro F1, not the loss: with rare classes the best loss can come from an epoch
        # that still neglects them (measured: benchmarks/demo_recipes.py).
        callbacks.append(
            EarlyStopping("val_macro_f1", mode="max", patience=5, restore_best_weights=True)
        )
    if "weight-penalty" in chosen:
        from lightning_recipes.regularization import WeightPenalty

        callbacks.append(WeightPenalty(l2=1e-4))
    if "weight-init" in chosen:
        from lightning_recipes.initialization import WeightInit

        callbacks.append(WeightInit("kaiming_normal"))
    if "activations" in chosen:
        from lightning_recipes.activations import ActivationMonitor

        callbacks.append(ActivationMonitor())
    flat = MNIST1D_SHAPE if signals else (1, 8, 8) if layout == "flat" else None
    if "image-augmentation" in chosen:  # images first; no flip: a mirrored digit is another
        from lightning_recipes.augmentation import ImageAugmentation

        callbacks.append(
            ImageAugmentation(translate=(0.1, 0.0), scale=(0.9, 1.1), image_shape=flat)
            if signals
            else ImageAugmentation(rotation=10, scale=(0.9, 1.1), shear=10, image_shape=flat)
        )
    if "mixup" in chosen:
        from lightning_recipes.augmentation import MixUp

        callbacks.append(MixUp(alpha=0.4, stop_at_epoch=max(1, max_epochs - 2)))
    if "cutmix" in chosen:
        from lightning_recipes.augmentation import CutMix

        callbacks.append(CutMix(alpha=1.0, image_shape=flat))
    if "label-smoothing" in chosen:
        from lightning_recipes.augmentation import LabelSmoothing

        callbacks.append(LabelSmoothing(0.1))
    # Digits are in [0, 1]; MNIST-1D signals are standardised: radii in standard deviations.
    clip = None if signals else (0.0, 1.0)
    if "adversarial" in chosen:  # after augmentation: it attacks what the model sees
        from lightning_recipes.robustness import AdversarialTraining

        eps = 0.05 if signals else 0.1
        callbacks.append(AdversarialTraining(eps=eps, method="fgsm", ratio=0.5, clip=clip))
    if "robustness" in chosen:  # at the last validation and at test
        from lightning_recipes.robustness import RobustnessEvaluation

        epsilons = (0.02, 0.05, 0.1) if signals else (0.05, 0.1, 0.2)
        callbacks.append(
            RobustnessEvaluation(epsilons=epsilons, clip=clip, every_n_epochs=max_epochs)
        )
    if "weight-average" in chosen:  # EMA suits any schedule (SWA wants a flat or cyclic one)
        from lightning_recipes.averaging import WeightAverage

        # The decay follows the run's length (a fixed 0.999 would ruin a short demo).
        callbacks.append(WeightAverage("ema", start_epoch=max_epochs // 2))
    if "snapshot-ensemble" in chosen:
        from lightning_recipes.ensembles import SnapshotEnsemble

        callbacks.append(SnapshotEnsemble(cycle_epochs=snapshot_cycle(max_epochs)))
    if "attribution" in chosen:
        from lightning_recipes.attribution import Attribution

        names = [f"t{i}" for i in range(MNIST1D_SHAPE[-1])] if signals else None
        callbacks.append(Attribution(at_fit_end=False, feature_names=names))
    return callbacks


def snapshot_cycle(max_epochs: int) -> int:
    """Epochs per learning-rate cycle of ``snapshot-ensemble``: three cycles per run."""
    return max(max_epochs // 3, 1)
