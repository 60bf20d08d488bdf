"""Early stopping that keeps the best weights, in sync across ranks and resumes.

The callback is `EarlyStopping` (in `lightning_recipes.stopping.early_stopping`); the
decision rules it applies are pure functions in `lightning_recipes.stopping.rules`
(`judge`, `improves`, ...). Its reason to stop is an `EarlyStoppingReason`.

``infer_mode`` is no longer exported here: its old name still works for one release, with
a `DeprecationWarning` (it is ``lightning_recipes.stopping.rules.infer_mode``).
"""

from typing import Any

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes.stopping.early_stopping import EarlyStopping
from lightning_recipes.stopping.rules import EarlyStoppingReason, StopRule, judge

__all__ = ["EarlyStopping", "EarlyStoppingReason", "StopRule", "judge"]


def __getattr__(name: str) -> Any:
    # Deprecated (one release): a helper of the rules, not of the face.
    if name == "infer_mode":
        return moved_attribute(__name__, name, "lightning_recipes.stopping.rules")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
