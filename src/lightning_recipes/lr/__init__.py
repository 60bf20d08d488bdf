"""Learning rates: range-test suggestions and schedules (the LR finder lands with issue 5)."""

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
    SUGGESTIONS,
    Curve,
    ema_smooth,
    lightning_steepest,
    minimum,
    prepare_curve,
    slide,
    steep,
    valley,
)

__all__ = [
    "SUGGESTIONS",
    "Curve",
    "ema_smooth",
    "exponential_decay",
    "lightning_steepest",
    "minimum",
    "one_cycle",
    "prepare_curve",
    "slide",
    "steep",
    "step_decay",
    "valley",
    "warmup_cosine",
    "warmup_cosine_factor",
    "warmup_linear",
    "warmup_linear_factor",
]
