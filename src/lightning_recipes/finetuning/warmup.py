"""The linear warm-up of newly unfrozen param groups, applied around each optimizer step.

The rate a group trains at is scaled just before the step and put back right after the
batch, before the schedulers step: the schedulers only ever see the unscaled rate, so an
LR schedule and the warm-up compose.
"""

from collections.abc import Sequence
from typing import Any

__all__ = ["scale_warming_up", "unscale"]


def scale_warming_up(
    param_groups: Sequence[dict[str, Any]],
    warmup: dict[int, int],
    scaled: dict[int, float],
    warmup_steps: int,
) -> None:
    """Scale the rate of each warming-up group for this step, and count the step.

    Step ``s`` (from 0) of a group gets ``(s + 1) / (warmup_steps + 1)`` of its rate; a
    group leaves ``warmup`` after its last warm-up step.

    Args:
        param_groups: The optimizer's param groups (changed in place).
        warmup: Param-group index -> warm-up steps done (updated).
        scaled: Param-group index -> rate before scaling (filled, for `unscale`).
        warmup_steps: Optimizer steps over which a newly unfrozen group ramps up.

    Examples:
        >>> groups, warmup, scaled = [{"lr": 1.0}, {"lr": 0.8}], {1: 0}, {}
        >>> scale_warming_up(groups, warmup, scaled, 3)
        >>> groups[1]["lr"], warmup, scaled
        (0.2, {1: 1}, {1: 0.8})
    """
    for index, done in list(warmup.items()):
        group = param_groups[index]
        scaled[index] = group["lr"]
        group["lr"] = group["lr"] * (done + 1) / (warmup_steps + 1)
        warmup[index] = done + 1
        if done + 1 >= warmup_steps:
            del warmup[index]


def unscale(param_groups: Sequence[dict[str, Any]], scaled: dict[int, float]) -> None:
    """Put back the rates `scale_warming_up` scaled, and forget them.

    Args:
        param_groups: The optimizer's param groups (changed in place).
        scaled: Param-group index -> rate before scaling (emptied).
    """
    for index, value in scaled.items():
        param_groups[index]["lr"] = value
    scaled.clear()
