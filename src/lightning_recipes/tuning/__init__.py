"""Hyperparameter search (Optuna) and cross-validation over LightningCLI configs."""
