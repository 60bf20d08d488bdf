"""Pruning of Optuna trials: the trial's end told to the study, and the pruners by name.

`finish_trial` marks a trial PRUNED, FAIL or COMPLETE from the result that
`lightning_recipes.tuning.trial_reporter.TrialReporter` (the callback that reports to the
trial and prunes it on every rank, correct under DDP) left behind; ``RESULT_FILE`` is the
file it writes. ``lightning_recipes.tuning.pruning.TrialReporter``, its old path, still works
for one release, with a `DeprecationWarning`.
"""

import math
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes._core.optional import require
from lightning_recipes.errors import choice_error
from lightning_recipes.tuning.storage import redact_url
from lightning_recipes.tuning.study_setup import PRUNERS, PrunerName, build_pruner

if TYPE_CHECKING:
    import optuna

__all__ = [
    "PRUNERS",
    "RESULT_FILE",
    "PrunerName",
    "TrialReportError",
    "build_pruner",
    "finish_trial",
    "redact_url",
]

RESULT_FILE = "result.json"
"""The file `TrialReporter` writes into its ``result_dir`` at the end of the fit."""


class TrialReportError(RuntimeError):
    """Rank 0 could not report to the trial's storage; every rank raises this together."""


def _optuna() -> ModuleType:
    return require("optuna", extra="tune", feature="lightning_recipes.tuning")


def finish_trial(
    study: "optuna.Study",
    trial: "optuna.Trial | int",
    result: Mapping[str, Any],
    *,
    objective: Literal["best", "last"] = "best",
) -> "optuna.trial.TrialState":
    """Tell the study how a trial's fit ended, from `TrialReporter.result` or ``result.json``.

    Args:
        study: The study that asked the trial.
        trial: The trial, or its number.
        result: The reporter's result.
        objective: Tell the ``"best"`` monitored value (default) or the ``"last"`` one.

    Returns:
        PRUNED if the reporter pruned it, FAIL if it reported no finite value, COMPLETE
        otherwise.
    """
    if objective not in ("best", "last"):
        raise choice_error("objective", objective, ("best", "last"))
    state: type[optuna.trial.TrialState] = _optuna().trial.TrialState
    if result.get("pruned"):
        study.tell(trial, state=state.PRUNED)
        return state.PRUNED
    value = result.get(objective)
    if value is None or not math.isfinite(value):
        study.tell(trial, state=state.FAIL)
        return state.FAIL
    study.tell(trial, float(value))
    return state.COMPLETE


def __getattr__(name: str) -> Any:
    # Deprecated (one release): the callback moved to a module named after it.
    if name == "TrialReporter":
        return moved_attribute(__name__, name, "lightning_recipes.tuning.trial_reporter")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
