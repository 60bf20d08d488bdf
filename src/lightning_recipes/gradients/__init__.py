"""Gradient health: fused norms, clipping, vanishing/exploding detection, gradient checks."""

from lightning_recipes.gradients.anomaly import Anomaly, AnomalyTracker, anomaly_warning
from lightning_recipes.gradients.check import (
    BatchMixingCheck,
    BatchMixingError,
    GradCheckReport,
    batch_mixing,
    check_gradients,
    evaluation_mode,
)
from lightning_recipes.gradients.clipping import (
    GradientClipper,
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    unitwise_norm,
    zero_if_,
)
from lightning_recipes.gradients.figure import norms_figure
from lightning_recipes.gradients.groups import parameter_groups
from lightning_recipes.gradients.guard import NonFiniteGuard
from lightning_recipes.gradients.monitor import GradientMonitor
from lightning_recipes.gradients.norms import (
    GradStats,
    StepNorms,
    combine_norms,
    dense_grads,
    grad_stats,
    step_norms,
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
    "GradientClipper",
    "GradientMonitor",
    "NonFiniteGuard",
    "StepNorms",
    "adaptive_clip_",
    "anomaly_warning",
    "clip_by_norm_",
    "clip_by_value_",
    "combine_norms",
    "dense_grads",
    "grad_stats",
    "norms_figure",
    "parameter_groups",
    "step_norms",
    "tensor_norms",
    "unitwise_norm",
    "zero_fraction",
    "zero_if_",
]
