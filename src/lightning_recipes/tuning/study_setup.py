"""What a study is built from: its storage, sampler and pruner, as `tune` builds them."""

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lightning_recipes._core.optional import require
from lightning_recipes.errors import (
    choice_error,
    config_error,
)
from lightning_recipes.tuning.space import SearchSpace
from lightning_recipes.tuning.storage import journal_url, write_ahead_log

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MEMORY",
    "PRUNERS",
    "SAMPLERS",
    "PrunerName",
    "SamplerName",
    "build_pruner",
    "check_pruner",
    "default_storage",
    "make_pruner",
    "make_sampler",
    "open_study_storage",
    "pruner_args",
]

SamplerName = Literal["grid", "random", "tpe", "gp"]
PrunerName = Literal["median", "hyperband", "none"]
"""The pruners a search can use: Optuna's MedianPruner, HyperbandPruner, or none."""

PRUNERS: tuple[PrunerName, ...] = ("median", "hyperband", "none")


_PRUNER_ARGS: dict[str, tuple[str, ...]] = {
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    "none": (),
}


SAMPLERS = ("grid", "random", "tpe", "gp")
MEMORY = "memory"
"""The ``storage`` of a study kept in this process's memory (no file, no resume)."""
_FEATURE = "Hyperparameter search (lightning_recipes.tuning)"


def default_storage(out_dir: str | Path, study_name: str) -> str:
    """The default storage URL: an Optuna journal file ``<out_dir>/<study_name>/study.journal``.

    A journal, not SQLite: through SQLite's ``RDBStorage`` each report of a trial cost
    ~2.5 ms of CPU (a 12-trial study of short trials 1.6x a plain in-memory loop; 60-epoch
    trials 0.15 s each), through the journal ~0.2 ms (`HeartbeatJournalStorage`, measured
    in ``benchmarks/peers_tune.py``). Both resume, and share a study between the processes
    of one machine; PostgreSQL serves several machines.

    Args:
        out_dir: The folder holding the runs.
        study_name: The study's name.

    Returns:
        A ``journal://`` URL with an absolute path.
    """
    return journal_url(Path(out_dir) / study_name / "study.journal")


def make_sampler(name: str, *, seed: int | None, space: SearchSpace | None) -> Any:
    """Build one of Optuna's samplers.

    ``tpe`` is multivariate with ``group=True`` (each set of parameters that appear together,
    as in a conditional space, gets its own joint model) and ``constant_liar`` for parallel
    workers; ``gp`` is Optuna's Gaussian-process sampler; ``grid`` needs a `SearchSpace`
    whose parameters are all finite (see `SearchSpace.grid`).

    Args:
        name: ``"grid"``, ``"random"``, ``"tpe"`` or ``"gp"``.
        seed: Seed of the sampler, for reproducible studies.
        space: The space (required for ``grid``).

    Returns:
        The ``optuna.samplers.BaseSampler``.

    Raises:
        RecipeConfigError: For an unknown name, or ``grid`` without a declarative space.
    """
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    if name == "grid":
        if space is None:
            raise config_error(
                "sampler",
                name,
                "The grid sampler needs a declarative space (YAML or mapping), not a function.",
            )
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True
            )
    if name == "gp":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed)
    raise choice_error("sampler", name, SAMPLERS)


def pruner_args(name: str, *, max_epochs: int | None = None) -> dict[str, Any]:
    """The arguments `tune` gives pruner ``name`` (the study's and every reporter's).

    Median: stop a trial whose epoch value is worse than the median of earlier trials at
    that epoch, after 2 finished trials and from the second epoch. Hyperband: epochs are
    the resource, from 1 to the trials' ``max_epochs``.
    """
    if name == "median":
        return {"n_startup_trials": 2, "n_warmup_steps": 1}
    if name == "hyperband":
        resource: int | str = max_epochs if max_epochs is not None and max_epochs > 0 else "auto"
        return {"min_resource": 1, "max_resource": resource}
    return {}


def make_pruner(name: str, *, max_epochs: int | None = None) -> Any:
    """Build one of Optuna's pruners with `tune`'s arguments (see `pruner_args`).

    Args:
        name: ``"median"``, ``"hyperband"`` or ``"none"``.
        max_epochs: The trials' ``max_epochs``, Hyperband's maximum resource.

    Returns:
        The ``optuna.pruners.BasePruner``.

    Raises:
        RecipeConfigError: For an unknown name.
    """
    if name not in PRUNERS:
        raise choice_error("pruner", name, PRUNERS)
    return build_pruner(name, **pruner_args(name, max_epochs=max_epochs))


def open_study_storage(
    optuna: Any, url: str, heartbeat_interval: int, grace_period: int | None
) -> Any:
    """The storage of a study at ``url``, with heartbeats (an SQLite file in WAL mode)."""
    if not isinstance(url, str) or "://" not in url:
        raise config_error(
            "storage",
            url,
            "Pass a storage URL: journal:///path/study.journal, sqlite:///path/study.db or "
            "postgresql://user:pass@host/db.",
        )
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}  # parallel workers wait for the lock
    from lightning_recipes.tuning.storage import open_storage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # open_storage serialises the creation of the tables: processes opening an empty
        # PostgreSQL database at once otherwise collide (measured by tests/test_tuning_postgres).
        rdb = open_storage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period if grace_period is not None else 2 * heartbeat_interval,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    if isinstance(rdb, optuna.storages.RDBStorage) and url.startswith("sqlite"):
        write_ahead_log(rdb)
    return rdb


def check_pruner(name: Any, args: Any) -> dict[str, Any]:
    """Validate a pruner name and its arguments (the study's and each reporter's)."""
    if name not in PRUNERS:
        raise choice_error("pruner", name, PRUNERS)
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise config_error("pruner_args", args, "Pass a mapping of argument names to values.")
    allowed = _PRUNER_ARGS[name]
    for key in args:
        if key not in allowed:
            listed = ", ".join(repr(a) for a in allowed) or "none"
            raise config_error(
                "pruner_args",
                dict(args),
                f"{key!r} is not an argument of the {name!r} pruner; its arguments: {listed}.",
            )
    return dict(args)


def build_pruner(name: PrunerName, **args: Any) -> "optuna.pruners.BasePruner":
    """Build the Optuna pruner called ``name``.

    The search and every `TrialReporter` of its trials must use the same pruner: build both
    with this function and the same arguments.

    Args:
        name: ``"median"`` (`optuna.pruners.MedianPruner`), ``"hyperband"``
            (`optuna.pruners.HyperbandPruner`) or ``"none"`` (`optuna.pruners.NopPruner`).
        **args: Keyword arguments of that pruner (e.g. ``n_startup_trials=5``,
            ``n_warmup_steps=2`` for median; ``min_resource=1``, ``reduction_factor=3`` for
            hyperband).

    Returns:
        The pruner.

    Raises:
        RecipeConfigError: For an unknown name, an argument the pruner does not take, or a
            value it refuses.

    Examples:
        >>> type(build_pruner("median", n_startup_trials=3)).__name__
        'MedianPruner'
    """
    kwargs = check_pruner(name, args)
    pruners = require("optuna", extra="tune", feature=_FEATURE).pruners
    factory = {
        "median": pruners.MedianPruner,
        "hyperband": pruners.HyperbandPruner,
        "none": pruners.NopPruner,
    }[name]
    try:
        pruner: optuna.pruners.BasePruner = factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise config_error(
            "pruner_args", kwargs, f"The {name!r} pruner refused them: {err}"
        ) from err
    return pruner
