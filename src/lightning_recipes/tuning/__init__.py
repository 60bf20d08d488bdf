"""Hyperparameter search on Optuna and K-fold cross-validation (extra ``tune``)."""

from lightning_recipes.tuning.cv import CVResult, FoldResult, cross_validate, cv_objective

__all__ = ["CVResult", "FoldResult", "cross_validate", "cv_objective"]
