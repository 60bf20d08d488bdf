"""Ready LightningModules and model builders."""

from lightning_recipes.modules.builders import (
    MLP,
    Backbone,
    SmallCNN,
    init_weights,
)

# Transitional: the doctests of lr/finder.py and stopping/callback.py (other helpers'
# packages, issue 14) still import `mlp`; not public, removed once they use `MLP`.
from lightning_recipes.modules.builders import mlp as mlp
from lightning_recipes.modules.classifier import Classifier
from lightning_recipes.modules.optim import build_optimizer, build_scheduler

__all__ = [
    "MLP",
    "Backbone",
    "Classifier",
    "SmallCNN",
    "build_optimizer",
    "build_scheduler",
    "init_weights",
]
