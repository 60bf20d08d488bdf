"""Deprecated: the robustness callbacks moved to one module each.

``lightning_recipes.robustness.callbacks.AdversarialTraining`` (now in
`lightning_recipes.robustness.adversarial_training`) and ``RobustnessEvaluation`` (now in
`lightning_recipes.robustness.robustness_evaluation`) still work, with a
`DeprecationWarning`, for one release.
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute

_MOVED = {
    "AdversarialTraining": "lightning_recipes.robustness.adversarial_training",
    "RobustnessEvaluation": "lightning_recipes.robustness.robustness_evaluation",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, _MOVED)
