"""Apply a learning rate to an optimizer, its schedulers and a module (see `_core.optim`)."""

from lightning_recipes._core.optim import (
    LR_GROUP_KEYS,
    SCHEDULER_LR_LISTS,
    group_ratios,
    group_reference,
    reference_lr,
    scale_learning_rate,
    set_module_lr,
)

__all__ = [
    "LR_GROUP_KEYS",
    "SCHEDULER_LR_LISTS",
    "group_ratios",
    "group_reference",
    "reference_lr",
    "scale_learning_rate",
    "set_module_lr",
]
