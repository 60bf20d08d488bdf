"""Write a learning rate into an optimizer, its schedulers and a module, keeping group ratios.

The one place that edits optimizer and scheduler learning-rate state (DESIGN.md): the LR
finder (``lr/``) and the freezer (``finetuning/``) both use it, and neither imports the
other.

A learning rate is one number, but an optimizer may hold several param groups with
different rates (discriminative fine-tuning: a smaller rate for the backbone), and a
scheduler keeps its own copy of the rates it scales (``base_lrs``, ``initial_lr``,
OneCycleLR's ``max_lr``). Setting only ``param_groups[i]["lr"]`` is undone by the next
scheduler step. These functions scale every one of those places by the same factor, so
the ratios between groups and the shape of the schedule survive.

The *reference* rate of a group is its peak as the scheduler records it: ``max_lr`` (set by
OneCycleLR), else ``initial_lr`` (set by every scheduler at construction), else ``lr``.
The optimizer's reference rate is the largest group reference: the head's rate in a
discriminative setup, the peak of a one-cycle schedule.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor, nn
from torch.optim import Optimizer

__all__ = [
    "LR_GROUP_KEYS",
    "SCHEDULER_LR_LISTS",
    "group_ratios",
    "group_reference",
    "reference_lr",
    "scale_learning_rate",
    "set_module_lr",
    "split_param_groups",
]

LR_GROUP_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
"""Param-group keys holding learning rates (torch's schedulers write the last three)."""

SCHEDULER_LR_LISTS = ("base_lrs", "max_lrs", "_last_lr")
"""Scheduler attributes holding one learning rate per group (LRScheduler, CyclicLR)."""


def group_reference(group: dict[str, Any]) -> float:
    """The reference (peak) learning rate of one param group.

    Args:
        group: An optimizer param group.

    Returns:
        ``max_lr`` if the group has it, else ``initial_lr``, else ``lr``.

    Examples:
        >>> group_reference({"lr": 0.0, "initial_lr": 0.1})  # warm-up starts at 0
        0.1
    """
    for key in ("max_lr", "initial_lr", "lr"):
        if key in group:
            return float(group[key])
    raise KeyError("A param group without 'lr'")


def reference_lr(optimizer: Optimizer) -> float:
    """The optimizer's reference learning rate: the largest group reference.

    Args:
        optimizer: The optimizer.

    Returns:
        The largest `group_reference` over its param groups.

    Examples:
        >>> import torch
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> opt = torch.optim.SGD([{"params": a.parameters(), "lr": 0.01},
        ...                        {"params": b.parameters(), "lr": 0.1}])
        >>> reference_lr(opt)
        0.1
    """
    return max(group_reference(group) for group in optimizer.param_groups)


def group_ratios(optimizer: Optimizer) -> list[float]:
    """Each group's reference rate divided by the optimizer's reference rate.

    Args:
        optimizer: The optimizer.

    Returns:
        One ratio per param group, the largest being 1 (all 1 if every rate is 0).
    """
    reference = reference_lr(optimizer)
    if reference == 0:
        return [1.0] * len(optimizer.param_groups)
    return [group_reference(group) / reference for group in optimizer.param_groups]


def _scaled(value: float, factor: float, reference: float, new_lr: float) -> float:
    # The reference rate itself becomes exactly new_lr (no rounding from old * new / old),
    # so a run whose LR was found equals a run whose LR was typed in, bit for bit.
    return new_lr if value == reference else value * factor


def scale_learning_rate(
    optimizer: Optimizer, new_lr: float, schedulers: Iterable[Any] = ()
) -> float:
    """Make ``new_lr`` the optimizer's reference rate, scaling every rate by one factor.

    Every learning-rate key of every param group (``lr``, ``initial_lr``, ``max_lr``,
    ``min_lr``) and the per-group lists of the given schedulers (``base_lrs``,
    ``max_lrs``, ``_last_lr``) are multiplied by ``new_lr / reference_lr(optimizer)``;
    values equal to the old reference become exactly ``new_lr``.

    Args:
        optimizer: The optimizer to change in place.
        new_lr: The new reference learning rate, positive.
        schedulers: The schedulers stepping this optimizer (torch ``LRScheduler`` or
            anything with ``base_lrs``); others are left alone.

    Returns:
        The factor applied.

    Raises:
        ValueError: If ``new_lr`` is not positive or the current reference rate is 0
            (no ratio to preserve).

    Examples:
        >>> import torch
        >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> opt = torch.optim.SGD([{"params": a.parameters(), "lr": 0.01},
        ...                        {"params": b.parameters(), "lr": 0.1}])
        >>> scale_learning_rate(opt, 0.5)
        5.0
        >>> [group["lr"] for group in opt.param_groups]
        [0.05, 0.5]
    """
    if not new_lr > 0:
        raise ValueError(f"new_lr must be positive, got {new_lr}")
    reference = reference_lr(optimizer)
    if reference == 0:
        raise ValueError("Every param group has learning rate 0: there is no ratio to keep.")
    factor = new_lr / reference
    for group in optimizer.param_groups:
        for key in LR_GROUP_KEYS:
            if isinstance(group.get(key), float | int):
                group[key] = _scaled(float(group[key]), factor, reference, new_lr)
    for scheduler in schedulers:
        if getattr(scheduler, "optimizer", optimizer) is not optimizer:
            continue
        for name in SCHEDULER_LR_LISTS:
            values = getattr(scheduler, name, None)
            if isinstance(values, list):
                setattr(
                    scheduler, name, [_scaled(float(v), factor, reference, new_lr) for v in values]
                )
    return factor


def set_module_lr(
    module: nn.Module, new_lr: float, names: str | Sequence[str] | None = None
) -> list[str]:
    """Write ``new_lr`` to a module's learning-rate attribute and hyperparameter.

    Args:
        module: A LightningModule (or any module).
        new_lr: The learning rate.
        names: Attribute names to set (a single string is one name); by default those of
            ``("lr", "learning_rate")`` that the module has as an attribute or in
            ``module.hparams``.

    Returns:
        The names written (attribute and/or ``hparams`` entry), e.g. ``["lr"]``.

    Examples:
        >>> from lightning.pytorch import LightningModule
        >>> class Net(LightningModule):
        ...     def __init__(self, lr: float = 0.1) -> None:
        ...         super().__init__()
        ...         self.save_hyperparameters()
        ...         self.lr = lr
        >>> net = Net()
        >>> set_module_lr(net, 0.02), net.lr, net.hparams.lr
        (['lr'], 0.02, 0.02)
    """
    hparams = getattr(module, "hparams", None)
    # One name given as a string is that name, not its characters ("lr" -> "l", "r").
    candidates = (
        ("lr", "learning_rate") if names is None else [names] if isinstance(names, str) else names
    )
    written: list[str] = []
    for name in candidates:
        in_hparams = hparams is not None and name in hparams
        if hasattr(module, name) and not callable(getattr(module, name)):
            setattr(module, name, new_lr)
            written.append(name)
        if in_hparams:
            hparams[name] = new_lr  # type: ignore[index]
            if name not in written:
                written.append(name)
    return written


COPIED_SCHEDULER_LISTS = ("lr_lambdas", "min_lrs")
"""Per-group scheduler lists copied as they are (the rate lists, `SCHEDULER_LR_LISTS`, scale)."""


def split_param_groups(
    optimizer: Optimizer,
    schedulers: Sequence[Any],
    groups: Sequence[Sequence[nn.Parameter]],
    decay: float,
) -> list[int]:
    """Move each group of parameters into its own optimizer param group (by identity).

    A new param group copies the hyperparameters of the param group its first parameter
    was in (the first group if none), with every learning-rate key times ``decay**k``
    (``k``-th group from the top, ``k >= 1``). The schedulers' per-group lists (and those
    of `SequentialLR` / `ChainedScheduler` children) are extended to match, so schedules
    continue. Optimizer state is keyed by parameter, so it moves with them.

    Args:
        optimizer: The optimizer to edit.
        schedulers: Its schedulers.
        groups: Parameter lists, bottom first.
        decay: The factor between neighbouring groups.

    Returns:
        The optimizer param-group index of each group (bottom first).
    """
    source_of: dict[int, int] = {}
    for index, group in enumerate(optimizer.param_groups):
        for param in group["params"]:
            source_of[id(param)] = index
    moved = {id(p) for params in groups for p in params}
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in moved]
    indices = []
    for level, params in zip(range(len(groups), 0, -1), groups, strict=True):
        source = next((source_of[id(p)] for p in params if id(p) in source_of), 0)
        template = optimizer.param_groups[source]
        factor = decay**level
        new = {key: value for key, value in template.items() if key != "params"}
        for key in LR_GROUP_KEYS:
            if isinstance(new.get(key), float | int):
                new[key] = new[key] * factor
        new["params"] = list(params)
        optimizer.add_param_group(new)
        indices.append(len(optimizer.param_groups) - 1)
        for scheduler in schedulers:
            _extend_scheduler(scheduler, optimizer, source, factor)
    return indices


def _extend_scheduler(scheduler: Any, optimizer: Optimizer, source: int, factor: float) -> None:
    """Append one group's entry to every per-group list of a scheduler (and its children)."""
    for child in getattr(scheduler, "_schedulers", []):  # SequentialLR, ChainedScheduler
        _extend_scheduler(child, optimizer, source, factor)
    if getattr(scheduler, "optimizer", None) is not optimizer:
        return
    count = len(optimizer.param_groups)
    for name in (*SCHEDULER_LR_LISTS, *COPIED_SCHEDULER_LISTS):
        value = getattr(scheduler, name, None)
        if isinstance(value, list) and len(value) == count - 1:  # one entry per old group
            entry = value[source]
            if name in SCHEDULER_LR_LISTS and isinstance(entry, float | int | Tensor):
                entry = entry * factor
            value.append(entry)
