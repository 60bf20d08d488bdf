"""Adversarial robustness (work in progress, issue 17): FGSM and PGD as pure functions.

The `AdversarialTraining` and `RobustnessEvaluation` callbacks are still to come; the
attacks are usable on their own (see `fgsm`, `pgd`).
"""

from lightning_recipes.robustness.attacks import Norm, fgsm, pgd, project

__all__ = ["Norm", "fgsm", "pgd", "project"]
