"""The unfreeze schedule of `Freezer`: ``unfreeze`` read and checked, and what it thaws when.

Pure functions: a schedule says how many backbone groups, counted from the top, are
trainable at each epoch. It is an epoch (the whole backbone from then on), ``None``
(never), ``"gradual"`` (one more group every ``every_n_epochs``) or ``{epoch: groups}``.
"""

import itertools
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from lightning_recipes._core.validate import is_int, non_negative_int, positive_int
from lightning_recipes.errors import config_error

__all__ = [
    "CheckedSchedule",
    "Schedule",
    "check_pace",
    "check_schedule",
    "group_rates",
    "group_unfreeze_epochs",
    "unfrozen_at",
    "unfrozen_count",
]

Schedule = Mapping[int, int] | Literal["gradual"] | int | None
"""What ``Freezer(unfreeze=...)`` accepts."""
CheckedSchedule = dict[int, int] | str | None
"""A `Schedule` after `check_schedule`: ``{epoch: groups}``, ``"gradual"`` or ``None``."""
_EVERY_GROUP = sys.maxsize  # the group count of `unfreeze=epoch`: capped at the total


def unfrozen_at(schedule: Mapping[int, int], epoch: int) -> int:
    """How many groups (from the top) a ``{epoch: groups}`` schedule has unfrozen at ``epoch``.

    Args:
        schedule: ``{epoch: number of groups unfrozen from the top}``.
        epoch: The epoch.

    Returns:
        The value of the latest scheduled epoch ``<= epoch`` (0 before the first).

    Raises:
        RecipeConfigError: If ``schedule`` is not a mapping or ``epoch`` is not an integer.

    Examples:
        >>> unfrozen_at({2: 1, 4: 3}, 3), unfrozen_at({2: 1, 4: 3}, 9), unfrozen_at({2: 1}, 0)
        (1, 3, 0)
    """
    if not isinstance(schedule, Mapping):
        raise config_error("schedule", schedule, "Pass a mapping {epoch: groups unfrozen}.")
    if not is_int(epoch):
        raise config_error("epoch", epoch, "Pass an integer epoch.")
    reached = [count for start, count in schedule.items() if start <= epoch]
    return max(reached, default=0)


def check_schedule(unfreeze: Schedule) -> CheckedSchedule:
    """Refuse an ``unfreeze`` argument that is not a schedule; return it as `CheckedSchedule`.

    Args:
        unfreeze: The ``unfreeze`` argument of `Freezer`.

    Returns:
        ``None`` or ``"gradual"`` as given, an epoch as ``{epoch: every group}``, a mapping
        as a dict of ints (integral strings, as JSON keys are, read as ints).

    Raises:
        RecipeConfigError: For a negative epoch, another type, an empty mapping, a
            non-integer entry, or a schedule that goes backwards.

    Examples:
        >>> check_schedule({"2": 1, 4: 3}), check_schedule("gradual")
        ({2: 1, 4: 3}, 'gradual')
    """
    if unfreeze is None or unfreeze == "gradual":
        return unfreeze
    if is_int(unfreeze):
        if unfreeze < 0:
            raise config_error(
                "unfreeze", unfreeze, "Pass the epoch (>= 0) that unfreezes the backbone."
            )
        return {int(unfreeze): _EVERY_GROUP}
    if isinstance(unfreeze, str) or not isinstance(unfreeze, Mapping):
        raise config_error(
            "unfreeze",
            unfreeze,
            "Pass an epoch, None, 'gradual' or {epoch: groups unfrozen}.",
        )
    if not unfreeze:
        raise config_error(
            "unfreeze", dict(unfreeze), "Pass None to never unfreeze, or {epoch: groups}."
        )
    schedule: dict[int, int] = {}
    for key, value in unfreeze.items():
        epoch, count = _as_int(key), _as_int(value)
        if epoch is None or count is None:
            raise config_error(
                "unfreeze",
                dict(unfreeze),
                "Epochs and group counts must be integers, e.g. {2: 1, 4: 2}.",
            )
        schedule[epoch] = count
    ordered = sorted(schedule.items())
    if any(e < 0 or n < 0 for e, n in ordered) or any(
        b[1] < a[1] for a, b in itertools.pairwise(ordered)
    ):
        raise config_error(
            "unfreeze",
            dict(unfreeze),
            "The schedule must not go backwards: epochs >= 0 and, by epoch, a "
            "non-decreasing number of unfrozen groups.",
        )
    return schedule


def check_pace(every_n_epochs: Any, unfreeze: Any) -> None:
    """Refuse an ``every_n_epochs`` that is not a positive integer, or set without ``"gradual"``.

    Args:
        every_n_epochs: The pace of ``unfreeze="gradual"``.
        unfreeze: The ``unfreeze`` argument (for the message).

    Raises:
        RecipeConfigError: If ``every_n_epochs`` is not a positive integer, or is not 1
            while ``unfreeze`` is not ``"gradual"``.
    """
    positive_int("every_n_epochs", every_n_epochs)
    if every_n_epochs != 1 and unfreeze != "gradual":
        raise config_error(
            "every_n_epochs",
            every_n_epochs,
            f"It sets the pace of unfreeze='gradual' only (unfreeze={unfreeze!r}): "
            "leave it out, or pass unfreeze='gradual'.",
        )


def unfrozen_count(
    schedule: CheckedSchedule, every_n_epochs: int, epoch: int, n_groups: int
) -> int:
    """How many groups from the top a checked schedule makes trainable at ``epoch``.

    Args:
        schedule: A schedule from `check_schedule`.
        every_n_epochs: The pace of ``"gradual"``.
        epoch: The epoch.
        n_groups: Number of backbone groups (the cap).

    Returns:
        The number of unfrozen groups the schedule asks for, at most ``n_groups``.

    Examples:
        >>> unfrozen_count("gradual", 2, 5, 4), unfrozen_count({0: 9}, 1, 0, 4)
        (2, 4)
    """
    if schedule is None:
        wanted = 0
    elif schedule == "gradual":
        wanted = epoch // every_n_epochs
    else:
        assert isinstance(schedule, dict)
        wanted = unfrozen_at(schedule, epoch)
    return min(wanted, n_groups)


def group_unfreeze_epochs(
    schedule: CheckedSchedule, every_n_epochs: int, n_groups: int
) -> list[int | None]:
    """The epoch at which each of ``n_groups`` groups becomes trainable (None: never).

    Args:
        schedule: A schedule from `check_schedule`.
        every_n_epochs: The pace of ``"gradual"``.
        n_groups: Number of backbone groups.

    Returns:
        One entry per group, bottom first.

    Raises:
        RecipeConfigError: If ``n_groups`` is not an integer >= 0.

    Examples:
        >>> group_unfreeze_epochs({1: 1, 3: 3}, 1, 4)
        [None, 3, 3, 1]
    """
    non_negative_int("n_groups", n_groups, "Pass a number of groups >= 0.")
    from_top: list[int | None] = []
    for k in range(1, n_groups + 1):  # k-th group from the top
        if schedule is None:
            from_top.append(None)
        elif schedule == "gradual":
            from_top.append(k * every_n_epochs)
        else:
            assert isinstance(schedule, dict)
            reached = [e for e, count in schedule.items() if count >= k]
            from_top.append(min(reached, default=None))
    return from_top[::-1]


def group_rates(
    unfrozen: Sequence[int], n_groups: int, base_lr: float, lr_decay: float
) -> list[list[float | None]]:
    """The learning rate of every group at every epoch (None while frozen).

    Args:
        unfrozen: Per epoch, how many groups from the top are trainable.
        n_groups: Number of backbone groups.
        base_lr: The head's learning rate.
        lr_decay: The discriminative factor: the k-th group from the top gets
            ``base_lr * lr_decay**k``.

    Returns:
        ``rates[epoch][group]``, groups bottom first.

    Examples:
        >>> group_rates([0, 1, 2], 2, 1.0, 0.5)
        [[None, None], [None, 0.5], [0.25, 0.5]]
    """
    rows: list[list[float | None]] = []
    for count in unfrozen:
        first = n_groups - count
        rows.append(
            [base_lr * lr_decay ** (n_groups - i) if i >= first else None for i in range(n_groups)]
        )
    return rows


def _as_int(value: Any) -> int | None:
    """``value`` as an int if it is one (or an integral string, as JSON keys are), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
