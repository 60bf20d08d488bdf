"""Adversarial robustness: FGSM and PGD, adversarial training, accuracy under attack.

- `fgsm`, `pgd`, `project`: the attacks as pure functions (eval mode, no parameter
  gradient, valid input range, work under inference mode).
- `robust_accuracy`, `correct_counts`: clean and adversarial accuracy at a list of
  epsilons.
- `AdversarialTraining`: train on FGSM-fast or PGD-k versions of the batches.
- `RobustnessEvaluation`: accuracy under attack after validation and testing, plotted.
"""

from lightning_recipes.robustness.adversarial_training import AdversarialTraining
from lightning_recipes.robustness.attacks import Norm, fgsm, pgd, project
from lightning_recipes.robustness.evaluate import (
    AttackName,
    attack,
    correct_counts,
    robust_accuracy,
)
from lightning_recipes.robustness.robustness_evaluation import RobustnessEvaluation

__all__ = [
    "AdversarialTraining",
    "AttackName",
    "Norm",
    "RobustnessEvaluation",
    "attack",
    "correct_counts",
    "fgsm",
    "pgd",
    "project",
    "robust_accuracy",
]
