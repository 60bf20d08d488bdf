"""Learning rates: the range-test finder, its suggestion rules, and every schedule.

- `LRFinder`, `find_lr`: the range test as a callback and as a function (in
  `lightning_recipes.lr.lr_finder`); their result is an `LRFinderResult`.
- The suggestion rules, pure (`valley`, `steep`, `minimum`, ...; in
  `lightning_recipes.lr.suggest`), and the sweep (`sweep_lrs`, `run_sweep`).
- The schedules (`warmup_cosine`, `one_cycle`, `snapshot_schedule`, ...).

The core's LR plumbing (``group_ratios``, ``reference_lr``, ``scale_learning_rate``,
``set_module_lr``) is no longer exported here: its old names still work for one release,
with a `DeprecationWarning` naming `lightning_recipes.lr.apply`.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.lr.cosine_restarts import snapshot_schedule
from lightning_recipes.lr.lr_finder import DEFAULT_SUGGESTION, LRFinder, find_lr
from lightning_recipes.lr.result import LRFinderResult, all_suggestions, boundary
from lightning_recipes.lr.schedules import (
    exponential_decay,
    one_cycle,
    step_decay,
    warmup_cosine,
    warmup_cosine_factor,
    warmup_linear,
    warmup_linear_factor,
)
from lightning_recipes.lr.suggest import (
    MIN_POINTS,
    SUGGESTIONS,
    Curve,
    ema_smooth,
    landing,
    lightning_steepest,
    minimum,
    prepare_curve,
    slide,
    steep,
    valley,
)
from lightning_recipes.lr.sweep import Sweep, run_sweep, sweep_lrs

__all__ = [
    "DEFAULT_SUGGESTION",
    "MIN_POINTS",
    "SUGGESTIONS",
    "Curve",
    "LRFinder",
    "LRFinderResult",
    "Sweep",
    "all_suggestions",
    "boundary",
    "ema_smooth",
    "exponential_decay",
    "find_lr",
    "landing",
    "lightning_steepest",
    "minimum",
    "one_cycle",
    "prepare_curve",
    "run_sweep",
    "slide",
    "steep",
    "snapshot_schedule",
    "step_decay",
    "sweep_lrs",
    "valley",
    "warmup_cosine",
    "warmup_cosine_factor",
    "warmup_linear",
    "warmup_linear_factor",
]


def __getattr__(name: str) -> Any:
    # Deprecated (one release): the core's LR plumbing, re-exported by lr.apply only.
    if name in ("group_ratios", "reference_lr", "scale_learning_rate", "set_module_lr"):
        return moved_attribute(__name__, name, "lightning_recipes.lr.apply")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
