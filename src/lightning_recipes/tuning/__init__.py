"""Hyperparameter search on Optuna, DDP-safe pruning, K-fold cross-validation (extra ``tune``)."""

from lightning_recipes.tuning.cv import CVResult, FoldResult, cross_validate, cv_objective
from lightning_recipes.tuning.pruning import (
    PRUNERS,
    PrunerName,
    TrialReporter,
    TrialReportError,
    build_pruner,
    finish_trial,
)
from lightning_recipes.tuning.storage import open_storage
from lightning_recipes.tuning.trial import (
    TrialSubprocessError,
    add_reporter,
    needs_subprocess,
    run_trial_subprocess,
)

__all__ = [
    "PRUNERS",
    "CVResult",
    "FoldResult",
    "PrunerName",
    "TrialReportError",
    "TrialReporter",
    "TrialSubprocessError",
    "add_reporter",
    "build_pruner",
    "cross_validate",
    "cv_objective",
    "finish_trial",
    "needs_subprocess",
    "open_storage",
    "run_trial_subprocess",
]
