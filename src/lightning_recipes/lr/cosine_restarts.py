"""Cosine annealing with warm restarts (the snapshot ensembles' schedule), as a Lightning config."""

import math
from typing import Any, Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import choice_error, config_error

__all__ = ["Interval", "snapshot_schedule"]

Interval = Literal["epoch", "step"]


def snapshot_schedule(
    optimizer: Optimizer,
    cycle_epochs: int,
    eta_min: float = 0.0,
    interval: Interval = "step",
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """The cyclic cosine schedule of snapshot ensembles, ready for ``configure_optimizers``.

    torch's ``CosineAnnealingWarmRestarts`` with a constant cycle (``T_mult=1``): the
    learning rate restarts at the optimizer's rate every ``cycle_epochs`` epochs and
    anneals towards ``eta_min`` within the cycle, where ``SnapshotEnsemble`` takes a
    snapshot. With ``interval="step"`` (as in Huang et al. 2017) the rate moves every
    optimizer step and reaches ``eta_min`` at the cycle's last step; with ``"epoch"`` it
    moves once per epoch (the last epoch of a cycle then trains at
    ``cosine_cycle_lr(cycle_epochs - 1, cycle_epochs, lr)``, not at ``eta_min``).

    Args:
        optimizer: The optimizer; each group's ``lr`` is its rate at every restart.
        cycle_epochs: Epochs per cycle; pass the same number to ``SnapshotEnsemble``.
        eta_min: The floor of the rate, ``>= 0``.
        interval: ``"step"`` (needs ``steps_per_epoch``) or ``"epoch"``.
        steps_per_epoch: Optimizer steps per epoch, e.g.
            ``self.trainer.estimated_stepping_batches // self.trainer.max_epochs``.

    Returns:
        ``{"scheduler": ..., "interval": ..., "frequency": 1}``, the lr_scheduler config
        dict that ``configure_optimizers`` may return under ``"lr_scheduler"``.

    Raises:
        RecipeConfigError: On a bad argument (named in the message).

    Examples:
        >>> import torch
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
        >>> config = snapshot_schedule(opt, cycle_epochs=5, interval="epoch")
        >>> type(config["scheduler"]).__name__, config["interval"]
        ('CosineAnnealingWarmRestarts', 'epoch')
    """
    if not isinstance(optimizer, Optimizer):
        raise config_error("optimizer", type(optimizer).__name__, "Pass a torch.optim.Optimizer.")
    if not is_int(cycle_epochs) or cycle_epochs < 1:
        raise config_error("cycle_epochs", cycle_epochs, "Pass a positive integer of epochs.")
    if not is_real(eta_min) or not math.isfinite(eta_min) or eta_min < 0:
        raise config_error("eta_min", eta_min, "Pass a finite learning rate >= 0.")
    if interval not in ("epoch", "step"):
        raise choice_error("interval", interval, ["epoch", "step"])
    if interval == "step":
        if not is_int(steps_per_epoch) or steps_per_epoch < 1:
            raise config_error(
                "steps_per_epoch",
                steps_per_epoch,
                "With interval='step' pass the optimizer steps per epoch (a positive "
                "integer), or use interval='epoch'.",
            )
        period = cycle_epochs * steps_per_epoch
    else:
        if steps_per_epoch is not None:
            raise config_error(
                "steps_per_epoch",
                steps_per_epoch,
                "It is only used with interval='step'; leave it None with interval='epoch'.",
            )
        period = cycle_epochs
    for i, group in enumerate(optimizer.param_groups):
        if float(group["lr"]) < eta_min:
            raise config_error(
                "eta_min",
                eta_min,
                f"It exceeds the learning rate {group['lr']} of param group {i}; pass a "
                "smaller floor.",
            )
    scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=period, T_mult=1, eta_min=eta_min)
    return {"scheduler": scheduler, "interval": interval, "frequency": 1}
