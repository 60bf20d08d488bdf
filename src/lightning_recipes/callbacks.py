"""Every lightning-recipes Callback in one place, for browsing and for YAML class paths.

``tests/test_registry.py`` checks that this list and the test registry name the same
callbacks, so a new callback cannot skip the generic checks.
"""

from lightning_recipes.activations import ActivationMonitor
from lightning_recipes.attribution import Attribution
from lightning_recipes.augmentation import CutMix, ImageAugmentation, LabelSmoothing, MixUp
from lightning_recipes.averaging import WeightAverage
from lightning_recipes.batch_size import BatchSizeFinder, GradientNoiseScale
from lightning_recipes.distillation import Distillation
from lightning_recipes.ensembles import SnapshotEnsemble
from lightning_recipes.finetuning import Freezer
from lightning_recipes.gradients import BatchMixingCheck, GradientMonitor
from lightning_recipes.history import MetricHistory
from lightning_recipes.imbalance import ClassWeighting, ImbalanceReport, LogitAdjustment
from lightning_recipes.initialization import WeightInit
from lightning_recipes.lr import LRFinder
from lightning_recipes.regularization import WeightPenalty
from lightning_recipes.robustness import AdversarialTraining, RobustnessEvaluation
from lightning_recipes.stopping import EarlyStopping

__all__ = [
    "BatchSizeFinder",
    "GradientNoiseScale",
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
    "Attribution",
    "BatchMixingCheck",
    "ClassWeighting",
    "Distillation",
    "EarlyStopping",
    "Freezer",
    "GradientMonitor",
    "ImbalanceReport",
    "LRFinder",
    "LogitAdjustment",
    "MetricHistory",
]
