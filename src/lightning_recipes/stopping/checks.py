"""`EarlyStopping`'s argument checks, and its warning for a mode the metric's name contradicts."""

from collections.abc import Mapping
from typing import Any

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.modes import name_direction
from lightning_recipes._core.validate import flag
from lightning_recipes.errors import choice_error, config_error

__all__: list[str] = []


def _check_args(
    monitor: Any, mode: Any, check_on_train_epoch_end: Any, flags: Mapping[str, Any]
) -> None:
    """Check the arguments Lightning's class also takes; warn if the mode reads wrong.

    Args:
        monitor: The metric to watch.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        check_on_train_epoch_end: True, False or None.
        flags: The boolean arguments by name, checked in this order.

    Raises:
        RecipeConfigError: On the first bad argument.
    """
    if not isinstance(monitor, str) or not monitor:
        raise config_error("monitor", monitor, "Pass the name of a logged metric.")
    if mode not in ("min", "max", "auto"):
        # Worded so that code matching Lightning's message ("`mode` can be ...") still does.
        raise config_error(
            "mode",
            mode,
            f"`mode` can be min, max, auto, got {mode}: pass 'min' for losses and errors, "
            "'max' for accuracy-like metrics, or 'auto' to read it from the metric's name.",
        )
    for name, value in flags.items():
        flag(name, value)
    if check_on_train_epoch_end is not None and not isinstance(check_on_train_epoch_end, bool):
        raise config_error(
            "check_on_train_epoch_end", check_on_train_epoch_end, "Pass True, False or None."
        )
    said = name_direction(monitor)
    if mode != "auto" and said is not None and said != mode:
        # Lightning's default mode is "min": EarlyStopping("val_acc") would stop as soon
        # as the accuracy stops falling. Say so rather than stop at the wrong epoch.
        helpers.rank_zero_warn(
            f"EarlyStopping(monitor={monitor!r}, mode={mode!r}): the name reads as a "
            f"metric to {'minimise' if said == 'min' else 'maximise'}, but mode={mode!r} "
            f"treats the {'highest' if mode == 'max' else 'lowest'} value as the best. "
            f"Pass mode={said!r} (or mode='auto') if that is not what you mean.",
            stacklevel=3,
        )


def _check_restore_args(restore_best_weights: Any, start_from_epoch: Any) -> None:
    """Check the arguments this class adds to Lightning's that `StopRule` does not check.

    Raises:
        RecipeConfigError: On the first bad argument.
    """
    if not (isinstance(restore_best_weights, bool)
            or restore_best_weights in ("copy", "checkpoint")):  # fmt: skip
        choices = ("False", "True", "copy", "checkpoint")
        raise choice_error("restore_best_weights", restore_best_weights, choices)
    if (
        isinstance(start_from_epoch, bool)
        or not isinstance(start_from_epoch, int)
        or (start_from_epoch < 0)
    ):
        raise config_error("start_from_epoch", start_from_epoch, "Pass an epoch number >= 0.")
