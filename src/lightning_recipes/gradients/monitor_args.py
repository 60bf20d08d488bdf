"""The checks of `GradientMonitor`'s arguments, made in its ``__init__`` before anything else."""

import math
from typing import Literal

from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.gradients.anomaly import ThresholdMode
from lightning_recipes.gradients.clipping import ClipMode
from lightning_recipes.gradients.groups import GroupBy, check_groups
from lightning_recipes.gradients.guard import NonFinite

__all__ = ["check_monitor_args"]


def check_monitor_args(
    groups: GroupBy | dict[str, list[str]],
    norm_type: float,
    log_every_n_steps: int | None,
    clip: ClipMode | None,
    max_norm: float | None,
    vanish_threshold: float | None,
    explode_threshold: float | None,
    threshold_mode: ThresholdMode,
    patience: int,
    on_anomaly: Literal["warn", "stop"],
    non_finite: NonFinite,
    plot: bool,
) -> None:
    """Refuse a `GradientMonitor` argument it cannot use, naming the fix.

    The arguments are `GradientMonitor`'s, checked in the order of its signature (the first
    wrong one is reported); their meaning is documented there.

    Raises:
        RecipeConfigError: If an argument is of the wrong type, out of range, or does not
            fit another one (``clip`` without ``max_norm``, ``vanish_threshold`` not below
            ``explode_threshold`` in absolute mode, ...).

    Examples:
        >>> check_monitor_args("layer", 2.0, None, "norm", 1.0, 1e-8, None, "absolute", 3,
        ...                    "warn", "warn", True)
        >>> check_monitor_args("layer", 2.0, None, "norm", None, 1e-8, None, "absolute", 3,
        ...                    "warn", "warn", True)
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid max_norm=None. clip='norm' needs ...
    """
    check_groups(groups)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
        raise config_error(
            "norm_type", norm_type, "Pass a number p > 0, e.g. 2.0, or float('inf')."
        )
    if not (norm_type > 0 or math.isinf(norm_type)):
        raise config_error("norm_type", norm_type, "Pass p > 0, e.g. 2.0, or float('inf').")
    if log_every_n_steps is not None and (not is_int(log_every_n_steps) or log_every_n_steps < 1):
        raise config_error(
            "log_every_n_steps",
            log_every_n_steps,
            "Pass a positive integer number of optimizer steps, or None for the Trainer's.",
        )
    if clip is not None and clip not in ("norm", "value", "agc"):
        raise choice_error("clip", clip, ("norm", "value", "agc"))
    if max_norm is not None and not is_real(max_norm):
        raise config_error("max_norm", max_norm, "Pass a positive number.")
    if clip is not None and (max_norm is None or not max_norm > 0 or math.isinf(max_norm)):
        raise config_error(
            "max_norm", max_norm, f"clip={clip!r} needs a positive, finite max_norm."
        )
    if clip is None and max_norm is not None:
        raise config_error("max_norm", max_norm, "Also pass clip='norm', 'value' or 'agc'.")
    for name, value in (
        ("vanish_threshold", vanish_threshold),
        ("explode_threshold", explode_threshold),
    ):
        if value is not None and (not is_real(value) or not 0 < value < math.inf):
            raise config_error(name, value, "Pass a positive, finite bound, or None to disable.")
    if (
        threshold_mode == "absolute"
        and vanish_threshold is not None
        and explode_threshold is not None
        and not vanish_threshold < explode_threshold
    ):
        raise config_error(
            "vanish_threshold",
            vanish_threshold,
            f"It must be below explode_threshold={explode_threshold!r}.",
        )
    if threshold_mode not in ("absolute", "relative"):
        raise choice_error("threshold_mode", threshold_mode, ("absolute", "relative"))
    if not is_int(patience) or patience < 1:
        raise config_error("patience", patience, "Pass an integer of 1 or more logging steps.")
    if on_anomaly not in ("warn", "stop"):
        raise choice_error("on_anomaly", on_anomaly, ("warn", "stop"))
    if non_finite not in ("skip", "stop", "raise", "warn"):
        raise choice_error("non_finite", non_finite, ("skip", "stop", "raise", "warn"))
    if not isinstance(plot, bool):
        raise config_error("plot", plot, "Pass True or False.")
