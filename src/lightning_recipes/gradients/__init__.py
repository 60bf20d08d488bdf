"""Gradient health: fused norms, clipping, vanishing/exploding detection, gradient checks.

- `GradientMonitor`: per-layer gradient norms, clipping, vanishing/exploding alarms and a
  non-finite guard, in one callback (in `lightning_recipes.gradients.gradient_monitor`).
- `BatchMixingCheck`: at the start of training, checks that the model keeps the samples of
  a batch apart (in `lightning_recipes.gradients.batch_mixing_check`).
- `check_gradients`, `batch_mixing` and their result `GradCheckReport`: the checks as
  functions (in `lightning_recipes.gradients.check`).
- The math, pure: the norms (`grad_stats`, `step_norms`, ...; results `GradStats`,
  `StepNorms`), the clipping (`clip_by_norm_`, `adaptive_clip_`, ...), `parameter_groups`
  and the figure `norms_figure`.

The monitor's parts (``AnomalyTracker``, ``Anomaly``, ``anomaly_warning``,
``GradientClipper``, ``NonFiniteGuard``) and ``evaluation_mode`` are no longer exported
here: their old names still work for one release, with a `DeprecationWarning` naming the
module that holds them.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.errors import BatchMixingError
from lightning_recipes.gradients.batch_mixing_check import BatchMixingCheck
from lightning_recipes.gradients.check import GradCheckReport, batch_mixing, check_gradients
from lightning_recipes.gradients.clipping import (
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    unitwise_norm,
    zero_if_,
)
from lightning_recipes.gradients.figure import norms_figure
from lightning_recipes.gradients.gradient_monitor import GradientMonitor
from lightning_recipes.gradients.groups import parameter_groups
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
    "GradStats",
    "GradientMonitor",
    "StepNorms",
    "adaptive_clip_",
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

# Deprecated names (one release): the monitor's parts, and a core helper.
_MOVED = {
    "Anomaly": "lightning_recipes.gradients.anomaly",
    "AnomalyTracker": "lightning_recipes.gradients.anomaly",
    "anomaly_warning": "lightning_recipes.gradients.anomaly",
    "GradientClipper": "lightning_recipes.gradients.clipping",
    "NonFiniteGuard": "lightning_recipes.gradients.guard",
    "evaluation_mode": "lightning_recipes.gradients.check",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, _MOVED)
