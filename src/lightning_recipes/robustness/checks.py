"""The arguments both robustness callbacks share, checked: the input range and batch keys."""

from typing import Any

from lightning_recipes._core.labels import LabelKey, check_label_key
from lightning_recipes._core.validate import batch_key, distinct_batch_keys, finite_sequence
from lightning_recipes.errors import config_error

__all__ = ["check_clip", "check_keys"]


def check_clip(value: Any) -> tuple[float, float] | None:
    """``clip`` checked: the valid input range ``(low, high)``, or None."""
    if value is None:
        return None
    fix = "Pass the valid input range [low, high] (finite numbers, low < high), or None."
    low_high = finite_sequence("clip", value, fix)
    if len(low_high) != 2 or not low_high[0] < low_high[1]:
        raise config_error("clip", value, fix)
    return low_high[0], low_high[1]


def check_keys(input_key: Any, label_key: Any) -> tuple[int | str, LabelKey]:
    """``input_key`` and ``label_key`` checked, and distinct."""
    keys = batch_key("input_key", input_key), check_label_key(label_key)
    distinct_batch_keys(input_key=keys[0], label_key=keys[1])
    return keys
