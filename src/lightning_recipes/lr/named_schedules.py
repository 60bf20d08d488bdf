"""The LR schedules a config names: the name-to-schedule registry of ``Classifier(scheduler=)``.

Each name builds a Lightning ``lr_scheduler`` config dict for ``configure_optimizers``:
torch's own schedulers where they do the job (cosine, one-cycle, multistep, plateau), the
schedules of this package for the others.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

from lightning.pytorch.utilities.types import LRSchedulerConfigType
from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

from lightning_recipes.errors import config_error
from lightning_recipes.lr import schedules
from lightning_recipes.lr.cosine_restarts import snapshot_schedule

__all__ = [
    "SCHEDULERS",
    "SchedulerName",
    "build_scheduler",
    "check_scheduler_name",
    "check_scheduler_options",
]

SchedulerName = Literal[
    "cosine",
    "onecycle",
    "multistep",
    "plateau",
    "warmup_cosine",
    "warmup_linear",
    "step_decay",
    "exponential_decay",
    "cosine_restarts",
]

SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
_WITH_OPTIONS = (
    "warmup_cosine",
    "warmup_linear",
    "step_decay",
    "exponential_decay",
    "cosine_restarts",
)


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


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    *,
    total_steps: int,
    max_epochs: int,
    monitor: str = "val_loss",
    options: Mapping[str, Any] | None = None,
) -> LRSchedulerConfigType:
    """Create a Lightning ``lr_scheduler`` config dict by name.

    * ``"cosine"``: cosine annealing to 0 over all training steps (stepped per batch);
    * ``"onecycle"``: one-cycle policy peaking at the optimizer's LR (stepped per batch);
    * ``"multistep"``: divide the LR by 10 at 50% and 75% of ``max_epochs``;
    * ``"plateau"``: divide the LR by 10 when ``monitor`` has not improved for 5 epochs;
    * ``"warmup_cosine"`` / ``"warmup_linear"``: `lightning_recipes.lr.warmup_cosine` /
      `~lightning_recipes.lr.warmup_linear` over all training steps, warm-up 5% of them
      unless ``options`` says ``warmup_steps`` (and optionally ``final_factor``);
    * ``"step_decay"``: `lightning_recipes.lr.step_decay`, every third of ``max_epochs``
      unless ``options`` says ``every_epochs`` (and optionally ``factor``);
    * ``"exponential_decay"``: `lightning_recipes.lr.exponential_decay` (``factor``, 0.95).
    * ``"cosine_restarts"``: the cyclic cosine of snapshot ensembles
      (`lightning_recipes.lr.snapshot_schedule`, stepped per batch), a cycle every
      third of ``max_epochs`` unless ``options`` says ``cycle_epochs`` (and ``eta_min``).

    Args:
        name: The scheduler name.
        optimizer: The optimizer to schedule.
        total_steps: Optimizer steps in the whole fit (``trainer.estimated_stepping_batches``).
        max_epochs: Epochs in the whole fit.
        monitor: Metric watched by ``"plateau"``.
        options: Keyword arguments of the helper behind the last four names.

    Returns:
        ``{"scheduler": ..., "interval": ..., ...}`` for ``configure_optimizers``.
    """
    check_scheduler_name(name)
    steps = max(int(total_steps), 1)
    extra = dict(options or {})
    check_scheduler_options(name, extra)
    return _build(name, optimizer, steps, max_epochs, monitor, extra)


def check_scheduler_options(name: str | None, options: Mapping[str, Any]) -> None:
    """Raise `RecipeConfigError` unless ``options`` are keyword arguments of ``name``'s helper.

    Args:
        name: The scheduler name (None: no scheduler, so no options).
        options: The options given.

    Examples:
        >>> check_scheduler_options("warmup_cosine", {"warmup_steps": 10})
        >>> check_scheduler_options("cosine", {"warmup_steps": 10})
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid scheduler_options=...
    """
    if not options:
        return
    if name not in _WITH_OPTIONS:
        raise config_error(
            "scheduler_options",
            dict(options),
            f"Scheduler {name!r} takes no options; options apply to {', '.join(_WITH_OPTIONS)}.",
        )
    helper = snapshot_schedule if name == "cosine_restarts" else getattr(schedules, name)
    fixed = ("optimizer", "total_steps", "interval", "steps_per_epoch")
    accepted = [p for p in inspect.signature(helper).parameters if p not in fixed]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise config_error(
            "scheduler_options", dict(options), f"{name!r} accepts {', '.join(accepted)}."
        )


def _build(
    name: str,
    optimizer: Optimizer,
    steps: int,
    max_epochs: int,
    monitor: str,
    extra: dict[str, Any],
) -> LRSchedulerConfigType:
    warmup = {"warmup_steps": round(0.05 * steps), **extra}
    every = {"every_epochs": max(max_epochs // 3, 1), **extra}
    make: dict[str, Callable[[], LRSchedulerConfigType]] = {
        "warmup_cosine": lambda: schedules.warmup_cosine(optimizer, steps, **warmup),
        "warmup_linear": lambda: schedules.warmup_linear(optimizer, steps, **warmup),
        "step_decay": lambda: schedules.step_decay(optimizer, **every),
        "exponential_decay": lambda: schedules.exponential_decay(optimizer, **extra),
        "cosine_restarts": lambda: snapshot_schedule(  # type: ignore[return-value,dict-item]
            optimizer,
            **{"cycle_epochs": max(max_epochs // 3, 1), **extra},
            interval="step",
            steps_per_epoch=max(steps // max(max_epochs, 1), 1),
        ),
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
