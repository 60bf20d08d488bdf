"""Regularization recipes: penalties, no-decay groups, initialisation, activation statistics.

- `WeightPenalty`: L1 / L2 / elastic-net penalties on chosen layers, exactly as if added to
  the loss (math: `penalty_value`, `add_penalty_grad_`).
- `no_decay_param_groups`: optimizer groups without weight decay on biases and norms.
- `WeightInit`: He/Kaiming, Xavier/Glorot, orthogonal and LSUV at fit start
  (math: `init_modules_`, `lsuv_`).
- `ActivationMonitor`: per-layer mean, std, dead and saturated fractions, histograms over
  time (math: `activation_stats`).
"""

from lightning_recipes._core.param_groups import no_decay_param_groups
from lightning_recipes._core.selection import (
    DEFAULT_TYPES,
    NORM_TYPES,
    select_modules,
    selected_parameters,
)
from lightning_recipes.regularization.activation_monitor import ActivationMonitor
from lightning_recipes.regularization.activations import activation_stats, summarize
from lightning_recipes.regularization.init import (
    SCHEME_ALIASES,
    SCHEME_NAMES,
    SCHEMES,
    init_modules_,
    lsuv_,
)
from lightning_recipes.regularization.penalty import add_penalty_grad_, penalty_value
from lightning_recipes.regularization.weight_init import WeightInit
from lightning_recipes.regularization.weight_penalty import WeightPenalty

__all__ = [
    "ActivationMonitor",
    "DEFAULT_TYPES",
    "NORM_TYPES",
    "SCHEMES",
    "SCHEME_ALIASES",
    "SCHEME_NAMES",
    "WeightInit",
    "WeightPenalty",
    "activation_stats",
    "add_penalty_grad_",
    "init_modules_",
    "lsuv_",
    "no_decay_param_groups",
    "penalty_value",
    "select_modules",
    "selected_parameters",
    "summarize",
]
