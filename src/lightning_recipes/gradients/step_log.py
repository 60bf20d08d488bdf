"""The logging steps of `GradientMonitor`: when each optimizer logs, what is read, its names.

No Lightning: `LogSchedule` decides which optimizer steps are logging steps, `read_back`
brings a logging step's statistics and counters to the host in one transfer (the only
host sync of the step), and `step_metrics` names the values sent to the loggers.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_recipes.gradients.norms import GradStats

__all__ = ["LogSchedule", "StepReadout", "read_back", "step_metrics"]


class LogSchedule:
    """Which optimizer steps are logging steps, for each optimizer.

    One optimizer: every ``every``-th global step. Several (manual optimization, e.g. a
    GAN's generator and discriminator steps, each counting as a global step): each
    optimizer logs at its first step in every period, so that every network is logged
    whatever the period and the number of optimizers.

    Args:
        every: The logging period in global steps (set again once the Trainer's is known).

    Examples:
        >>> schedule = LogSchedule(every=2)
        >>> schedule.start(global_step=0)
        >>> [schedule.due(step, optimizer_index=0) for step in range(5)]
        [True, False, True, False, True]
    """

    def __init__(self, every: int = 1) -> None:
        self.every = every
        # The last logging period each optimizer was logged in.
        self._logged_period: dict[int, int] = {}
        self._start_period = -1

    def start(self, global_step: int) -> None:
        """Start training at ``global_step`` (restored from a checkpoint when resuming).

        The period the step is in was logged before the interruption unless the step
        opens it.
        """
        self._logged_period = {}
        self._start_period = (global_step - 1) // self.every

    def due(self, global_step: int, optimizer_index: int) -> bool:
        """Whether this optimizer step is a logging step, for this optimizer (and note it)."""
        period = global_step // self.every
        if period <= self._logged_period.get(optimizer_index, self._start_period):
            return False
        self._logged_period[optimizer_index] = period
        return True


@dataclass(frozen=True)
class StepReadout:
    """A logging step's statistics and counters, as host floats.

    Attributes:
        groups: The norm of every group (also those without a gradient at this step).
        total: The total norm.
        max_abs: The largest absolute gradient entry.
        zero_fraction: The share of exactly-zero entries.
        clipped: The steps clipped so far.
        guard: The host copy of `NonFiniteGuard.state`: skipped steps first.
    """

    groups: list[float]
    total: float
    max_abs: float
    zero_fraction: float
    clipped: float
    guard: list[float]


def read_back(stats: GradStats, clipped: Tensor, guard_state: Tensor) -> StepReadout:
    """Read a logging step's values back to the host, in one transfer.

    Args:
        stats: The step's statistics (`grad_stats`).
        clipped: The 0-dim count of clipped steps, on the same device.
        guard_state: `NonFiniteGuard.state` on the same device.

    Examples:
        >>> import torch
        >>> from lightning_recipes.gradients.norms import grad_stats
        >>> stats = grad_stats([torch.tensor([3.0, 0.0]), torch.tensor([4.0])])
        >>> readout = read_back(stats, torch.tensor(2), torch.tensor([0, -1, -1]))
        >>> readout.groups, readout.total, readout.clipped, readout.guard
        ([5.0], 5.0, 2.0, [0.0, -1.0, -1.0])
    """
    parts = [
        stats.groups,
        stats.total[None],
        stats.max_abs[None],
        stats.zero_fraction[None],
        clipped[None],
        guard_state,
    ]
    values = torch.cat([part.double() for part in parts]).tolist()  # the one host sync
    n_groups = len(stats.groups)
    total, max_abs, zero, clipped_value = values[n_groups : n_groups + 4]
    return StepReadout(
        values[:n_groups], total, max_abs, zero, clipped_value, values[n_groups + 4 :]
    )


def step_metrics(
    readout: StepReadout,
    group_values: Mapping[str, float],
    optimizer_index: int | None,
    *,
    per_group: bool,
    clip_fraction: float | None,
    skipped: bool,
) -> dict[str, float]:
    """The metrics of one logging step, by the name they are logged under.

    Args:
        readout: The step's values (`read_back`).
        group_values: The norm of each group with a gradient at this step.
        optimizer_index: The stepping optimizer's index when there are several (its
            totals go under ``grad/optimizer_<i>/``), else None (under ``grad/``).
        per_group: Log ``grad/norm/<group>`` (when there is more than one group).
        clip_fraction: ``grad/clip_fraction``, or None without clipping.
        skipped: Log ``grad/skipped_steps`` (when the guard zeroes non-finite steps).

    Examples:
        >>> readout = StepReadout([1.0, 2.0], 3.0, 4.0, 0.5, 0.0, [0.0, -1.0, -1.0])
        >>> sorted(step_metrics(readout, {"a": 1.0}, 1, per_group=True, clip_fraction=None,
        ...                     skipped=False))
        ['grad/norm/a', 'grad/optimizer_1/max_abs', 'grad/optimizer_1/norm_total',
         'grad/optimizer_1/zero_fraction']
    """
    prefix = "grad/" if optimizer_index is None else f"grad/optimizer_{optimizer_index}/"
    metrics = {
        f"{prefix}norm_total": readout.total,
        f"{prefix}max_abs": readout.max_abs,
        f"{prefix}zero_fraction": readout.zero_fraction,
    }
    if per_group:
        metrics.update({f"grad/norm/{g}": v for g, v in group_values.items()})
    if clip_fraction is not None:
        metrics["grad/clip_fraction"] = clip_fraction
    if skipped:
        metrics["grad/skipped_steps"] = readout.guard[0]
    return metrics
