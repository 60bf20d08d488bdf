"""Learning rates: range-test suggestions (the LR finder and schedules land with issue 5)."""

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
    "lightning_steepest",
    "minimum",
    "prepare_curve",
    "slide",
    "steep",
    "valley",
]
