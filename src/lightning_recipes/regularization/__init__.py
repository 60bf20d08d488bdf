"""Regularization recipes: weight penalties and no-decay parameter groups.

- `WeightPenalty`: L1 / L2 / elastic-net penalties on chosen layers, exactly as if added to
  the loss (math: `penalty_value`, `add_penalty_grad_`).
- `no_decay_param_groups`: optimizer groups without weight decay on biases and norms.
- `select_modules`, `selected_parameters`, `DEFAULT_TYPES`, `NORM_TYPES`: the layer
  selection every recipe shares (by type and name pattern).

Initialisation (`WeightInit`, `init_modules_`, `lsuv_`) moved to
`lightning_recipes.initialization`, activation statistics (`ActivationMonitor`,
`activation_stats`, `summarize`) to `lightning_recipes.activations`: their old names here
still work for one release, with a `DeprecationWarning` naming the new path.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes._core.param_groups import no_decay_param_groups
from lightning_recipes._core.selection import (
    DEFAULT_TYPES,
    NORM_TYPES,
    select_modules,
    selected_parameters,
)
from lightning_recipes.regularization.penalty import add_penalty_grad_, penalty_value
from lightning_recipes.regularization.weight_penalty import WeightPenalty

__all__ = [
    "DEFAULT_TYPES",
    "NORM_TYPES",
    "WeightPenalty",
    "add_penalty_grad_",
    "no_decay_param_groups",
    "penalty_value",
    "select_modules",
    "selected_parameters",
]

# Deprecated names (one release): where each lives now.
_MOVED = {
    "WeightInit": "lightning_recipes.initialization",
    "init_modules_": "lightning_recipes.initialization",
    "lsuv_": "lightning_recipes.initialization",
    "SCHEMES": "lightning_recipes.initialization.schemes",
    "SCHEME_ALIASES": "lightning_recipes.initialization.schemes",
    "SCHEME_NAMES": "lightning_recipes.initialization.schemes",
    "ActivationMonitor": "lightning_recipes.activations",
    "activation_stats": "lightning_recipes.activations",
    "summarize": "lightning_recipes.activations",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, _MOVED)
