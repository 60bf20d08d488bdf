"""Hyperparameter search and cross-validation over LightningCLI configs, on Optuna.

`tune` runs an Optuna study (grid, random, TPE or GP sampler; median or Hyperband pruning)
over any config that ``lightning-recipes fit -c`` accepts, with a search space that names
config keys (`load_space`), and writes ``study.md``, figures and ``best.yaml``.
`TrialReporter` prunes correctly under ``strategy="ddp"``; `cross_validate` runs stratified
K-fold with a fresh module per fold. Optuna is the optional extra ``tune``
(``pip install 'lightning-recipes[tune]'``); it is imported when a study starts, not when
this package is imported.

Modules, one job each: `search` (`tune` itself), `checks` (its arguments and both ends of
every range, before any trial), `study_setup` (storage, sampler, pruner), `in_process` (a
trial fitted in this process), `trial` (a trial in a subprocess), `trial_reporter`
(`TrialReporter`), `pruning` (`finish_trial`), `metric_recorder` (`MetricRecorder`, the
metrics of each validation run), `storage` and `journal` (where a study lives), `results`
(``study.md``, figures, ``best.yaml``), `progress`, `space` (with `space_param`), `config`
(with `config_parser`), `cv` (`cross_validate`) with `cv_folds` and `cv_results`, and
`ablate` (which recipes of a config pay off) with `ablation` (its designs and statistics,
pure) and `ablation_report`.
"""

from lightning_recipes.tuning.ablate import Ablation, ablate
from lightning_recipes.tuning.ablation import Effect, Factor, factor_effects
from lightning_recipes.tuning.config import apply_params, config_keys, load_config
from lightning_recipes.tuning.config_parser import expand_config
from lightning_recipes.tuning.cv import CVResult, FoldResult, cross_validate, cv_objective
from lightning_recipes.tuning.pruning import (
    PRUNERS,
    PrunerName,
    TrialReportError,
    build_pruner,
    finish_trial,
)
from lightning_recipes.tuning.results import best_config, write_results
from lightning_recipes.tuning.search import default_storage, make_pruner, make_sampler, tune
from lightning_recipes.tuning.space import Param, SearchSpace, load_space
from lightning_recipes.tuning.storage import open_storage
from lightning_recipes.tuning.trial import (
    TrialSubprocessError,
    add_reporter,
    needs_subprocess,
    run_trial_subprocess,
)
from lightning_recipes.tuning.trial_reporter import TrialReporter

__all__ = [
    "PRUNERS",
    "Ablation",
    "CVResult",
    "FoldResult",
    "Param",
    "PrunerName",
    "SearchSpace",
    "TrialReportError",
    "TrialReporter",
    "TrialSubprocessError",
    "Effect",
    "Factor",
    "ablate",
    "add_reporter",
    "apply_params",
    "best_config",
    "build_pruner",
    "config_keys",
    "cross_validate",
    "cv_objective",
    "default_storage",
    "expand_config",
    "factor_effects",
    "finish_trial",
    "load_config",
    "load_space",
    "make_pruner",
    "make_sampler",
    "needs_subprocess",
    "open_storage",
    "run_trial_subprocess",
    "tune",
    "write_results",
]
