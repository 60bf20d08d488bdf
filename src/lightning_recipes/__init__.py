"""lightning-recipes: PyTorch Lightning callbacks and modules for well-known training techniques.

The public API is flat::

    from lightning_recipes import Classifier, DigitsDataModule, MetricHistory
"""

from lightning_recipes.attribution import Attribution, explain
from lightning_recipes.augmentation import CutMix, ImageAugmentation, LabelSmoothing, MixUp
from lightning_recipes.data import (
    ArrayDataModule,
    DigitsDataModule,
    LabeledTensorDataset,
    make_imbalanced,
    stratified_split,
)
from lightning_recipes.ensembles import EnsembleModule, SnapshotEnsemble, WeightAverage
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
from lightning_recipes.imbalance import ClassWeighting, FocalLoss, ImbalanceReport
from lightning_recipes.lr import LRFinder, LRFinderResult, find_lr
from lightning_recipes.modules import MLP, Classifier, SmallCNN
from lightning_recipes.regularization import (
    ActivationMonitor,
    WeightInit,
    WeightPenalty,
    no_decay_param_groups,
)
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
    "BatchMixingCheck",
    "BatchMixingError",
    "ClassWeighting",
    "Classifier",
    "DigitsDataModule",
    "EarlyStopping",
    "FocalLoss",
    "Freezer",
    "GradientMonitor",
    "ImbalanceReport",
    "LRFinder",
    "LRFinderResult",
    "LabeledTensorDataset",
    "MetricHistory",
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
