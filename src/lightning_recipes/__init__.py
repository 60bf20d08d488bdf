"""lightning-recipes: PyTorch Lightning callbacks and modules for well-known training techniques.

The public API is flat::

    from lightning_recipes import Classifier, DigitsDataModule, MetricHistory
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name is imported on first use
    from lightning_recipes.activations import ActivationMonitor
    from lightning_recipes.attribution import Attribution
    from lightning_recipes.attribution.explain import explain  # (mypy: not the submodule)
    from lightning_recipes.augmentation import CutMix, ImageAugmentation, LabelSmoothing, MixUp
    from lightning_recipes.averaging import WeightAverage
    from lightning_recipes.batch_size import BatchSizeFinder, GradientNoiseScale
    from lightning_recipes.data import (
        ArrayDataModule,
        DigitsDataModule,
        LabeledTensorDataset,
        Mnist1dDataModule,
        make_imbalanced,
        stratified_split,
    )
    from lightning_recipes.distillation import Distillation
    from lightning_recipes.ensembles import EnsembleModule, SnapshotEnsemble
    from lightning_recipes.errors import (
        BatchMixingError,
        MissingExtraError,
        MissingMetricError,
        NonFiniteGradientError,
        RecipeConfigError,
        RecipeWarning,
    )
    from lightning_recipes.finetuning import Freezer
    from lightning_recipes.gradients import BatchMixingCheck, GradientMonitor, check_gradients
    from lightning_recipes.history import MetricHistory
    from lightning_recipes.imbalance import (
        ClassWeighting,
        FocalLoss,
        ImbalanceReport,
        LogitAdjustment,
    )
    from lightning_recipes.initialization import WeightInit
    from lightning_recipes.lr import LRFinder, LRFinderResult, find_lr
    from lightning_recipes.modules import MLP, Classifier, Mnist1dCNN, SmallCNN
    from lightning_recipes.regularization import WeightPenalty, no_decay_param_groups
    from lightning_recipes.robustness import AdversarialTraining, RobustnessEvaluation
    from lightning_recipes.stopping import EarlyStopping

__version__ = "0.1.0"

__all__ = [
    "EnsembleModule",
    "SnapshotEnsemble",
    "WeightAverage",
    "AdversarialTraining",
    "RobustnessEvaluation",
    "CutMix",
    "ImageAugmentation",
    "LabelSmoothing",
    "MixUp",
    "ActivationMonitor",
    "WeightInit",
    "WeightPenalty",
    "no_decay_param_groups",
    "MLP",
    "ArrayDataModule",
    "Attribution",
    "BatchSizeFinder",
    "BatchMixingCheck",
    "BatchMixingError",
    "ClassWeighting",
    "Classifier",
    "DigitsDataModule",
    "Distillation",
    "EarlyStopping",
    "FocalLoss",
    "Freezer",
    "GradientMonitor",
    "GradientNoiseScale",
    "ImbalanceReport",
    "LRFinder",
    "LRFinderResult",
    "LabeledTensorDataset",
    "LogitAdjustment",
    "MetricHistory",
    "Mnist1dCNN",
    "Mnist1dDataModule",
    "MissingExtraError",
    "MissingMetricError",
    "NonFiniteGradientError",
    "RecipeConfigError",
    "RecipeWarning",
    "SmallCNN",
    "__version__",
    "check_gradients",
    "explain",
    "find_lr",
    "make_imbalanced",
    "stratified_split",
]


# The public names of each submodule. Importing the package imports none of them (no torch), so
# `lightning-recipes --help` answers at once; `__getattr__` imports a name when first used.
_EXPORTS: dict[str, str] = {
    "activations": "ActivationMonitor",
    "attribution": "Attribution explain",
    "augmentation": "CutMix ImageAugmentation LabelSmoothing MixUp",
    "data": (
        "ArrayDataModule DigitsDataModule LabeledTensorDataset Mnist1dDataModule make_imbalanced "
        "stratified_split"
    ),
    "averaging": "WeightAverage",
    "batch_size": "BatchSizeFinder GradientNoiseScale",
    "distillation": "Distillation",
    "ensembles": "EnsembleModule SnapshotEnsemble",
    "errors": (
        "BatchMixingError MissingExtraError MissingMetricError NonFiniteGradientError "
        "RecipeConfigError RecipeWarning"
    ),
    "finetuning": "Freezer",
    "gradients": "BatchMixingCheck GradientMonitor check_gradients",
    "history": "MetricHistory",
    "imbalance": "ClassWeighting FocalLoss ImbalanceReport LogitAdjustment",
    "initialization": "WeightInit",
    "lr": "LRFinder LRFinderResult find_lr",
    "modules": "MLP Classifier Mnist1dCNN SmallCNN",
    "regularization": "WeightPenalty no_decay_param_groups",
    "robustness": "AdversarialTraining RobustnessEvaluation",
    "stopping": "EarlyStopping",
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    """Import a public name, or a submodule, on first use (PEP 562)."""
    module = _MODULE_OF.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    elif name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
