"""Learning-rate schedules as Lightning ``lr_scheduler`` config dicts.

Each helper takes the optimizer and returns ``{"scheduler": ..., "interval": ...}``, ready
to return from ``configure_optimizers``::

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        steps = self.trainer.estimated_stepping_batches
        return {"optimizer": optimizer, "lr_scheduler": warmup_cosine(optimizer, steps)}

Per-step schedules (warm-up, cosine, one-cycle) use ``interval="step"``; per-epoch ones
(step decay, exponential decay) use ``interval="epoch"``. The formulas are pure functions
(`warmup_cosine_factor`, `warmup_linear_factor`) so they can be tested and plotted alone.
"""

import math
from collections.abc import Callable

from lightning.pytorch.utilities.types import LRSchedulerConfigType
from torch.optim import Optimizer
from torch.optim import lr_scheduler as sched

from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import config_error

__all__ = [
    "exponential_decay",
    "one_cycle",
    "step_decay",
    "warmup_cosine",
    "warmup_cosine_factor",
    "warmup_linear",
    "warmup_linear_factor",
]


def _check_optimizer(optimizer: object) -> None:
    if not isinstance(optimizer, Optimizer):
        raise config_error(
            "optimizer",
            type(optimizer).__name__,
            "Pass the torch.optim.Optimizer the schedule steps (built in configure_optimizers).",
        )


def _check_share(name: str, value: object, fix: str, *, low: float, high: float) -> None:
    """Refuse anything but a real number in [low, high] (the bounds given by ``fix``)."""
    if not (is_real(value) and low <= value <= high):
        raise config_error(name, value, fix)


def _check_steps(total_steps: int, warmup_steps: int, final_factor: float) -> None:
    if not is_int(total_steps) or total_steps < 1:
        raise config_error(
            "total_steps", total_steps, "Pass the number of optimizer steps, an integer >= 1."
        )
    if not is_int(warmup_steps) or not 0 <= warmup_steps < total_steps:
        raise config_error(
            "warmup_steps", warmup_steps, f"Pass 0 <= warmup_steps < total_steps ({total_steps})."
        )
    _check_share(
        "final_factor",
        final_factor,
        "Pass the final share of the peak LR, in [0, 1].",
        low=0,
        high=1,
    )


def _per_step(
    optimizer: Optimizer,
    factor: Callable[[int, int, int, float], float],
    total_steps: int,
    warmup_steps: int,
    final_factor: float,
) -> LRSchedulerConfigType:
    """A per-step LambdaLR following ``factor`` (one of the ``*_factor`` formulas)."""
    _check_optimizer(optimizer)
    _check_steps(total_steps, warmup_steps, final_factor)
    scheduler = sched.LambdaLR(
        optimizer, lambda step: factor(step, total_steps, warmup_steps, final_factor)
    )
    return {"scheduler": scheduler, "interval": "step", "name": factor.__name__[: -len("_factor")]}


def _warmup(step: int, warmup_steps: int) -> float:
    """The linear warm-up shared by the schedules: 1/(w+1), 2/(w+1), ... up to 1."""
    return (step + 1) / (warmup_steps + 1)


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0
) -> float:
    """Multiplier of the peak LR at ``step``: linear warm-up, then cosine decay.

    Rises linearly from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps`` steps, then
    follows half a cosine from 1 down to ``final_factor`` at ``total_steps``.

    Args:
        step: Optimizer step (0-based).
        total_steps: Steps of the whole schedule.
        warmup_steps: Steps of linear warm-up.
        final_factor: Multiplier reached at the end.

    Returns:
        The multiplier.

    Examples:
        >>> [round(warmup_cosine_factor(s, 10, 2), 3) for s in (0, 1, 2, 6, 10)]
        [0.333, 0.667, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_linear_factor(
    step: int, total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0
) -> float:
    """Multiplier of the peak LR at ``step``: linear warm-up, then linear decay.

    Args:
        step: Optimizer step (0-based).
        total_steps: Steps of the whole schedule.
        warmup_steps: Steps of linear warm-up.
        final_factor: Multiplier reached at the end.

    Returns:
        The multiplier.

    Examples:
        >>> [round(warmup_linear_factor(s, 10, 2), 3) for s in (0, 2, 6, 10)]
        [0.333, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return 1.0 - (1.0 - final_factor) * progress


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0
) -> LRSchedulerConfigType:
    """Linear warm-up then cosine decay, stepped per optimizer step.

    Args:
        optimizer: The optimizer; each group's LR is its peak.
        total_steps: Steps of the whole fit (``trainer.estimated_stepping_batches``).
        warmup_steps: Steps of linear warm-up.
        final_factor: Share of the peak LR reached at the end.

    Returns:
        A Lightning ``lr_scheduler`` config dict.
    """
    return _per_step(optimizer, warmup_cosine_factor, total_steps, warmup_steps, final_factor)


def warmup_linear(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, final_factor: float = 0.0
) -> LRSchedulerConfigType:
    """Linear warm-up then linear decay (the BERT schedule), stepped per optimizer step.

    Args:
        optimizer: The optimizer; each group's LR is its peak.
        total_steps: Steps of the whole fit.
        warmup_steps: Steps of linear warm-up.
        final_factor: Share of the peak LR reached at the end.

    Returns:
        A Lightning ``lr_scheduler`` config dict.
    """
    return _per_step(optimizer, warmup_linear_factor, total_steps, warmup_steps, final_factor)


def one_cycle(
    optimizer: Optimizer, total_steps: int, pct_start: float = 0.25
) -> LRSchedulerConfigType:
    """The one-cycle policy peaking at each group's current LR, stepped per optimizer step.

    Args:
        optimizer: The optimizer; each group's LR is its peak (group ratios are kept).
        total_steps: Steps of the whole fit.
        pct_start: Share of the steps spent rising.

    Returns:
        A Lightning ``lr_scheduler`` config dict.
    """
    _check_optimizer(optimizer)
    _check_steps(total_steps, 0, 0.0)
    if not (is_real(pct_start) and 0.0 < pct_start < 1.0):
        raise config_error("pct_start", pct_start, "Pass a share strictly between 0 and 1.")
    peaks = [group["lr"] for group in optimizer.param_groups]
    scheduler = sched.OneCycleLR(
        optimizer, max_lr=peaks, total_steps=total_steps, pct_start=pct_start
    )
    return {"scheduler": scheduler, "interval": "step", "name": "one_cycle"}


def step_decay(
    optimizer: Optimizer, every_epochs: int, factor: float = 0.1
) -> LRSchedulerConfigType:
    """Multiply the LR by ``factor`` every ``every_epochs`` epochs.

    Args:
        optimizer: The optimizer.
        every_epochs: Epochs between decays.
        factor: Multiplier at each decay, in (0, 1).

    Returns:
        A Lightning ``lr_scheduler`` config dict.
    """
    _check_optimizer(optimizer)
    if not is_int(every_epochs) or every_epochs < 1:
        raise config_error("every_epochs", every_epochs, "Pass a positive whole number of epochs.")
    if not (is_real(factor) and 0.0 < factor < 1.0):
        raise config_error("factor", factor, "Pass a decay factor strictly between 0 and 1.")
    scheduler = sched.StepLR(optimizer, step_size=every_epochs, gamma=factor)
    return {"scheduler": scheduler, "interval": "epoch", "name": "step_decay"}


def exponential_decay(optimizer: Optimizer, factor: float = 0.95) -> LRSchedulerConfigType:
    """Multiply the LR by ``factor`` after every epoch.

    Args:
        optimizer: The optimizer.
        factor: Multiplier per epoch, in (0, 1).

    Returns:
        A Lightning ``lr_scheduler`` config dict.
    """
    _check_optimizer(optimizer)
    if not (is_real(factor) and 0.0 < factor < 1.0):
        raise config_error("factor", factor, "Pass a decay factor strictly between 0 and 1.")
    scheduler = sched.ExponentialLR(optimizer, gamma=factor)
    return {"scheduler": scheduler, "interval": "epoch", "name": "exponential_decay"}
