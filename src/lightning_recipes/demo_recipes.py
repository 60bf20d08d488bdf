"""The recipes the demo can add, and the callbacks they become in a working order."""

import importlib
from collections.abc import Sequence
from typing import Any, Literal

from lightning.pytorch import Callback

from lightning_recipes.demo_options import DemoData

__all__ = ["DEMO_RECIPES", "MNIST1D_SHAPE", "RecipeSpec", "recipe_specs", "snapshot_cycle"]


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


RecipeSpec = tuple[str, str, dict[str, Any]]
"""A demo recipe as a LightningCLI callback entry: (recipe, ``class_path``, ``init_args``)."""


def recipe_specs(
    recipes: Sequence[str],
    max_epochs: int,
    layout: Literal["flat", "image"] = "flat",
    data: DemoData = "digits",
) -> list[RecipeSpec]:
    """The demo's callbacks for the chosen recipes, in a working order, as config entries.

    One table serves the demo's Trainer (`_recipe_callbacks` builds each entry) and its
    LightningCLI config (`demo_config`), so ``lightning-recipes fit`` or ``ablate`` on the
    printed config trains what the demo trains.

    On MNIST-1D (always the flat layout, ``(N, 40)``) the image recipes see each signal as
    a 1 x 40 image: CutMix pastes a segment of another signal, the augmentation shifts and
    stretches along time (no rotation, shear or flip: a reversed or tilted signal is another
    signal); the signals are standardised, not in [0, 1], so the attacks have no valid range
    to clip to and their radii are in standard deviations.
    """
    chosen = set(recipes)
    signals = data == "mnist1d"
    specs: list[RecipeSpec] = []

    def add(recipe: str, class_path: str, **init_args: Any) -> None:
        if recipe in chosen:
            specs.append((recipe, f"lightning_recipes.{class_path}", init_args))

    # Class weighting before the LR finder: it sweeps the weighted loss.
    add("class-weighting", "imbalance.ClassWeighting")
    add(
        "freeze",
        "finetuning.Freezer",
        unfreeze="gradual",
        every_n_epochs=max(max_epochs // 7, 1),
        lr_decay=0.5,
    )
    add("find-lr", "lr.LRFinder")
    # Macro F1, not the loss: with rare classes the best loss can come from an epoch that
    # still neglects them (measured: benchmarks/demo_recipes.py).
    add(
        "early-stopping",
        "stopping.EarlyStopping",
        monitor="val_macro_f1",
        mode="max",
        patience=5,
        restore_best_weights=True,
    )
    add("weight-penalty", "regularization.WeightPenalty", l2=1e-4)
    add("weight-init", "initialization.WeightInit", scheme="kaiming_normal")
    add("activations", "activations.ActivationMonitor")
    flat = MNIST1D_SHAPE if signals else (1, 8, 8) if layout == "flat" else None
    # Images first; no flip: a mirrored digit is another digit.
    if signals:
        add(
            "image-augmentation",
            "augmentation.ImageAugmentation",
            translate=(0.1, 0.0),
            scale=(0.9, 1.1),
            image_shape=flat,
        )
    else:
        add(
            "image-augmentation",
            "augmentation.ImageAugmentation",
            rotation=10,
            scale=(0.9, 1.1),
            shear=10,
            image_shape=flat,
        )
    add("mixup", "augmentation.MixUp", alpha=0.4, stop_at_epoch=max(1, max_epochs - 2))
    add("cutmix", "augmentation.CutMix", alpha=1.0, image_shape=flat)
    add("label-smoothing", "augmentation.LabelSmoothing", smoothing=0.1)
    # Digits are in [0, 1]; MNIST-1D signals are standardised: radii in standard deviations.
    clip = None if signals else (0.0, 1.0)
    # After augmentation: it attacks what the model sees.
    add(
        "adversarial",
        "robustness.AdversarialTraining",
        eps=0.05 if signals else 0.1,
        method="fgsm",
        ratio=0.5,
        clip=clip,
    )
    add(  # at the last validation and at test
        "robustness",
        "robustness.RobustnessEvaluation",
        epsilons=(0.02, 0.05, 0.1) if signals else (0.05, 0.1, 0.2),
        clip=clip,
        every_n_epochs=max_epochs,
    )
    # EMA suits any schedule (SWA wants a flat or cyclic one); the decay follows the run's
    # length (a fixed 0.999 would ruin a short demo).
    add("weight-average", "averaging.WeightAverage", kind="ema", start_epoch=max_epochs // 2)
    add("snapshot-ensemble", "ensembles.SnapshotEnsemble", cycle_epochs=snapshot_cycle(max_epochs))
    add(
        "attribution",
        "attribution.Attribution",
        at_fit_end=False,
        feature_names=[f"t{i}" for i in range(MNIST1D_SHAPE[-1])] if signals else None,
    )
    return specs


def _recipe_callbacks(
    recipes: Sequence[str],
    max_epochs: int,
    layout: Literal["flat", "image"] = "flat",
    data: DemoData = "digits",
) -> list[Callback]:
    """The demo's callbacks for the chosen recipes, built from `recipe_specs`."""
    callbacks = []
    for _, class_path, init_args in recipe_specs(recipes, max_epochs, layout, data):
        module, name = class_path.rsplit(".", 1)
        callbacks.append(getattr(importlib.import_module(module), name)(**init_args))
    return callbacks


def snapshot_cycle(max_epochs: int) -> int:
    """Epochs per learning-rate cycle of ``snapshot-ensemble``: three cycles per run."""
    return max(max_epochs // 3, 1)
