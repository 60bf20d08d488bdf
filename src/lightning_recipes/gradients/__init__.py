"""Gradient health: fused norms, clipping, vanishing/exploding detection, gradient checks."""

from lightning_recipes.gradients.anomaly import Anomaly, AnomalyTracker
from lightning_recipes.gradients.check import (
    BatchMixingCheck,
    BatchMixingError,
    GradCheckReport,
    batch_mixing,
    check_gradients,
    evaluation_mode,
)
from lightning_recipes.gradients.clipping import (
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    unitwise_norm,
    zero_if_,
)
from lightning_recipes.gradients.monitor import GradientMonitor, parameter_groups
from lightning_recipes.gradients.norms import (
    GradStats,
    combine_norms,
    dense_grads,
    grad_stats,
    tensor_norms,
    zero_fraction,
)

__all__ = [
    "BatchMixingCheck",
    "BatchMixingError",
    "GradCheckReport",
    "batch_mixing",
    "check_gradients",
    "evaluation_mode",
    "Anomaly",
    "AnomalyTracker",
    "GradStats",
    "GradientMonitor",
    "adaptive_clip_",
    "clip_by_norm_",
    "clip_by_value_",
    "combine_norms",
    "dense_grads",
    "grad_stats",
    "parameter_groups",
    "tensor_norms",
    "unitwise_norm",
    "zero_fraction",
    "zero_if_",
]
