"""Optimizers chosen by name, for modules configured from YAML (the LR schedules: `lr`)."""

from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch.optim import Optimizer

from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.lr.named_schedules import (
    SCHEDULERS,
    SchedulerName,
    build_scheduler,
    check_scheduler_name,
    check_scheduler_options,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "OptimizerName",
    "SchedulerName",
    "build_optimizer",
    "build_scheduler",
    "check_optimizer_name",
    "check_scheduler_name",
    "check_scheduler_options",
]

OptimizerName = Literal["adamw", "adam", "sgd", "rmsprop"]
OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd", "rmsprop")


def check_optimizer_name(name: str) -> None:
    """Raise `RecipeConfigError` unless ``name`` is a known optimizer.

    Args:
        name: The optimizer name.
    """
    if name not in OPTIMIZERS:
        raise choice_error("optimizer", name, OPTIMIZERS)


def build_optimizer(
    name: str,
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
) -> Optimizer:
    """Create an optimizer by name.

    Args:
        name: ``"adamw"``, ``"adam"``, ``"sgd"`` (with Nesterov momentum) or ``"rmsprop"``.
        params: Parameters or parameter-group dicts.
        lr: Learning rate.
        weight_decay: Weight decay (decoupled for AdamW, L2 for the others).
        momentum: Momentum for SGD and RMSprop.

    Returns:
        The optimizer.

    Examples:
        >>> import torch
        >>> build_optimizer("sgd", torch.nn.Linear(2, 1).parameters(), lr=0.1)
        SGD (...)
    """
    check_optimizer_name(name)
    if not lr > 0:
        raise config_error("lr", lr, "Pass a positive learning rate.")
    if weight_decay < 0:
        raise config_error("weight_decay", weight_decay, "Pass 0 or a positive decay.")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=momentum > 0
        )
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, momentum=momentum)
