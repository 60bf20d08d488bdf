"""Optimizers and LR schedulers chosen by name, for modules configured from YAML."""

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.types import LRSchedulerConfigType
from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

from lightning_recipes.errors import choice_error, config_error

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "OptimizerName",
    "SchedulerName",
    "build_optimizer",
    "build_scheduler",
]

OptimizerName = Literal["adamw", "adam", "sgd", "rmsprop"]
SchedulerName = Literal["cosine", "onecycle", "multistep", "plateau"]

OPTIMIZERS: tuple[str, ...] = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULERS: tuple[str, ...] = ("cosine", "onecycle", "multistep", "plateau")


def check_optimizer_name(name: str) -> None:
    """Raise `RecipeConfigError` unless ``name`` is a known optimizer.

    Args:
        name: The optimizer name.
    """
    if name not in OPTIMIZERS:
        raise choice_error("optimizer", name, OPTIMIZERS)


def check_scheduler_name(name: str | None) -> None:
    """Raise `RecipeConfigError` unless ``name`` is None or a known scheduler.

    Args:
        name: The scheduler name.
    """
    if name is not None and name not in SCHEDULERS:
        listed = ", ".join(repr(s) for s in SCHEDULERS)
        raise config_error(
            "scheduler", name, f"Choose one of: {listed}, or None (null in YAML) for a fixed LR."
        )


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


def build_scheduler(
    name: str, optimizer: Optimizer, *, total_steps: int, max_epochs: int, monitor: str = "val_loss"
) -> LRSchedulerConfigType:
    """Create a Lightning ``lr_scheduler`` config dict by name.

    * ``"cosine"``: cosine annealing to 0 over all training steps (stepped per batch);
    * ``"onecycle"``: one-cycle policy peaking at the optimizer's LR (stepped per batch);
    * ``"multistep"``: divide the LR by 10 at 50% and 75% of ``max_epochs``;
    * ``"plateau"``: divide the LR by 10 when ``monitor`` has not improved for 5 epochs.

    Args:
        name: The scheduler name.
        optimizer: The optimizer to schedule.
        total_steps: Optimizer steps in the whole fit (``trainer.estimated_stepping_batches``).
        max_epochs: Epochs in the whole fit.
        monitor: Metric watched by ``"plateau"``.

    Returns:
        ``{"scheduler": ..., "interval": ..., ...}`` for ``configure_optimizers``.
    """
    check_scheduler_name(name)
    steps = max(int(total_steps), 1)
    make: dict[str, Callable[[], LRSchedulerConfigType]] = {
        "cosine": lambda: {
            "scheduler": sched.CosineAnnealingLR(optimizer, T_max=steps),
            "interval": "step",
        },
        "onecycle": lambda: {
            "scheduler": sched.OneCycleLR(
                optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=steps
            ),
            "interval": "step",
        },
        "multistep": lambda: {
            "scheduler": sched.MultiStepLR(
                optimizer, milestones=[max(max_epochs // 2, 1), max(3 * max_epochs // 4, 1)]
            ),
            "interval": "epoch",
        },
        "plateau": lambda: {
            "scheduler": sched.ReduceLROnPlateau(optimizer, mode="min", factor=0.1, patience=5),
            "interval": "epoch",
            "monitor": monitor,
        },
    }
    return make[name]()
