"""Early stopping that keeps the best weights, in sync across ranks and resumes.

The callback is `EarlyStopping`; the decision rules it applies are pure functions in
`lightning_recipes.stopping.rules` (`judge`, `improves`, `infer_mode`, ...).
"""

from lightning_recipes.stopping.callback import EarlyStopping
from lightning_recipes.stopping.rules import EarlyStoppingReason, StopRule, infer_mode, judge

__all__ = ["EarlyStopping", "EarlyStoppingReason", "StopRule", "infer_mode", "judge"]
