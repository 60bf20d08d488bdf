"""Transfer learning: freeze a backbone, unfreeze it gradually, discriminative learning rates."""

from lightning_recipes.finetuning.freezer import Freezer, unfrozen_at
from lightning_recipes.finetuning.groups import (
    LayerGroup,
    layer_decay_lrs,
    layer_groups,
    select_backbone,
    spread_lrs,
)

__all__ = [
    "Freezer",
    "LayerGroup",
    "layer_decay_lrs",
    "layer_groups",
    "select_backbone",
    "spread_lrs",
    "unfrozen_at",
]
