"""Ready LightningModules and model builders."""

from lightning_recipes.modules.builders import (
    MLP,
    Backbone,
    SmallCNN,
    init_weights,
)
from lightning_recipes.modules.classifier import Classifier
from lightning_recipes.modules.conv1d import Mnist1dCNN
from lightning_recipes.modules.optim import build_optimizer, build_scheduler

__all__ = [
    "MLP",
    "Backbone",
    "Classifier",
    "Mnist1dCNN",
    "SmallCNN",
    "build_optimizer",
    "build_scheduler",
    "init_weights",
]
