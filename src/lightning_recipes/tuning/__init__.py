"""Hyperparameter search and cross-validation over LightningCLI configs, on Optuna.

`tune` runs an Optuna study (grid, random, TPE or GP sampler; median or Hyperband pruning)
over any config that ``lightning-recipes fit -c`` accepts, with a search space that names
config keys (`load_space`), and writes ``study.md``, figures and ``best.yaml``. Optuna is
the optional extra ``tune`` (``pip install 'lightning-recipes[tune]'``); it is imported when
a study starts, not when this package is imported.
"""

from lightning_recipes.tuning.config import apply_params, config_keys, expand_config, load_config
from lightning_recipes.tuning.results import best_config, write_results
from lightning_recipes.tuning.search import default_storage, make_pruner, make_sampler, tune
from lightning_recipes.tuning.space import Param, SearchSpace, load_space

__all__ = [
    "Param",
    "SearchSpace",
    "apply_params",
    "best_config",
    "config_keys",
    "default_storage",
    "expand_config",
    "load_config",
    "load_space",
    "make_pruner",
    "make_sampler",
    "tune",
    "write_results",
]
