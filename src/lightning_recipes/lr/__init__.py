"""Learning rates: the range-test finder, its suggestion rules, and every schedule."""

from lightning_recipes.lr.apply import (
    group_ratios,
    reference_lr,
    scale_learning_rate,
    set_module_lr,
)
from lightning_recipes.lr.cosine_restarts import snapshot_schedule
from lightning_recipes.lr.finder import DEFAULT_SUGGESTION, LRFinder, find_lr
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
    "group_ratios",
    "landing",
    "lightning_steepest",
    "minimum",
    "one_cycle",
    "prepare_curve",
    "reference_lr",
    "run_sweep",
    "scale_learning_rate",
    "set_module_lr",
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
