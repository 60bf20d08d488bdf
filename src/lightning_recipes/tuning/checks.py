"""`tune`'s checks before any trial runs: its arguments, and both ends of every range."""

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_recipes._core.modes import resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import command_args
from lightning_recipes.errors import (
    RecipeConfigError,
    choice_error,
    config_error,
)
from lightning_recipes.tuning.config import apply_params
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.space import SearchSpace, resize_lists
from lightning_recipes.tuning.study_setup import PRUNERS, SAMPLERS

__all__: list[str] = []

_FEATURE = "Hyperparameter search (lightning_recipes.tuning)"


def _check_args(
    n_trials: int,
    sampler: str,
    monitor: str,
    mode: str,
    pruner: str,
    timeout: float | None,
    n_jobs: int,
    cv: int | None,
    value: str,
    heartbeat_interval: int,
    overrides: Sequence[str],
) -> None:
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise config_error("n_trials", n_trials, "Pass a positive number of trials.")
    if sampler not in SAMPLERS:
        raise choice_error("sampler", sampler, SAMPLERS)
    if pruner not in PRUNERS:
        raise choice_error("pruner", pruner, PRUNERS)
    if not isinstance(monitor, str) or not monitor:
        raise config_error("monitor", monitor, "Pass the name of a logged metric, e.g. 'val_loss'.")
    resolve_mode(monitor, mode)
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise config_error("timeout", timeout, "Pass a positive number of seconds, or None.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise config_error("n_jobs", n_jobs, "Pass a positive number of parallel trials.")
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise config_error("cv", cv, "Pass the number of folds (>= 2), or None.")
    if value not in ("best", "last"):
        raise choice_error("value", value, ("best", "last"))
    command_args("overrides", overrides)
    if (
        isinstance(heartbeat_interval, bool)
        or not isinstance(heartbeat_interval, int)
        or heartbeat_interval < 1
    ):
        raise config_error("heartbeat_interval", heartbeat_interval, "Pass seconds, >= 1.")


def _probe_params(space: SearchSpace, high: bool) -> dict[str, Any]:
    """One value per parameter (the low or the high end), for a dry run of the config."""
    fixed: dict[str, Any] = {}
    for p in space.params:
        if p.grid is not None or p.type == "categorical":
            values = list(p.grid) if p.grid is not None else list(p.choices)
            ordered = sorted(values) if p.length_of else values
            fixed[p.name] = ordered[-1] if (high or p.length_of) else ordered[0]
        else:
            end = p.high if (high or p.length_of) else p.low
            fixed[p.name] = int(end) if p.type == "int" else end  # type: ignore[arg-type]
    return fixed


def _check_values(
    space: SearchSpace,
    base: Mapping[str, Any],
    parser: ConfigParser,
    shape: Callable[[Mapping[str, Any]], Mapping[str, Any]],
) -> None:
    """Parse the config with both ends of every range, so wrong types fail before trial 0.

    The configs are parsed in the shape of a trial's (``shape``: config -> the config a
    trial parses); the values they accept count as accepted for the trials, and the first
    parse is kept for trials of its shape where none is kept yet (a space that sets a
    list's length: see `ConfigParser.cli`).
    """
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    for high in (False, True):
        params = space.sample(optuna.trial.FixedTrial(_probe_params(space, high)))
        cfg = copy.deepcopy(dict(base))
        values = resize_lists(cfg, params)
        probe = apply_params(cfg, values)
        try:
            parser.check(shape(probe), template=not high)
        except RecipeConfigError as err:
            raise config_error(
                "space",
                values,
                "LightningCLI rejects the config with these sampled values (see its message "
                "above): check each parameter's type and range against the class it sets.",
            ) from err


def _default_name(config: str | Path | Mapping[str, Any]) -> str:
    if isinstance(config, str | Path):
        return re.sub(r"[^\w.-]+", "-", Path(config).stem) or "study"
    return "study"
