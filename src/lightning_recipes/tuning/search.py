"""`tune`: an Optuna study over any LightningCLI config.

Each trial samples the search space, writes the config with the sampled values into
``<out_dir>/<study>/trial_NNNN/trial.yaml``, trains it exactly as
``lightning-recipes fit -c trial.yaml`` would (in this process, or in a subprocess when the
trial's Trainer launches several processes: DDP, several devices, ``n_jobs > 1``), and tells
Optuna the trial's value: by default the **best** value of the monitored metric over the
validation epochs (the epoch a ``ModelCheckpoint`` on the same metric keeps), or the last one
with ``value="last"``. A pruned trial is recorded as PRUNED.
"""

import contextlib
import copy
import gc
import logging
import math
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse
from lightning.pytorch import Callback, LightningModule, Trainer
from typing_extensions import override

from lightning_recipes._core.modes import ModeChoice, resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes._core.trainer import trainer_callbacks
from lightning_recipes._core.validate import command_args
from lightning_recipes.errors import (
    MissingMetricError,
    RecipeConfigError,
    choice_error,
    config_error,
)
from lightning_recipes.tuning.config import (
    ConfigParser,
    apply_params,
    config_keys,
    expand_config,
    load_config,
    unknown_key_error,
)
from lightning_recipes.tuning.pruning import PRUNERS
from lightning_recipes.tuning.space import SearchSpace, SpaceFunction, load_space, resize_lists
from lightning_recipes.tuning.storage import journal_url, share_storage, write_ahead_log
from lightning_recipes.tuning.trial import needs_subprocess

__all__ = [
    "FIGURES_AFTER_SECONDS",
    "PRUNERS",
    "SAMPLERS",
    "default_storage",
    "make_pruner",
    "make_sampler",
    "trial_config",
    "tune",
]

SamplerName = Literal["grid", "random", "tpe", "gp"]
PrunerName = Literal["median", "hyperband", "none"]
SAMPLERS = ("grid", "random", "tpe", "gp")
MEMORY = "memory"
"""The ``storage`` of a study kept in this process's memory (no file, no resume)."""
_FEATURE = "Hyperparameter search (lightning_recipes.tuning)"
# libyaml's emitter writes the same text as PyYAML's SafeDumper, 5x faster (a trial's config
# is written at every trial); PyYAML built without libyaml has only the Python one.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LENGTH = "__length__:"  # how SearchSpace.sample names a list's sampled length


class _ValueRecorder(Callback):
    """Record the monitored metric after each validation epoch (in-process trials only)."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.values: list[float] = []

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise MissingMetricError(
                f"tune(monitor={self.monitor!r}): the trial never logged {self.monitor!r}; "
                f"metrics logged: {logged}. Pass monitor= one of them."
            )
        self.values.append(float(value))  # once per validation epoch, not per step


FIGURES_AFTER_SECONDS = 30.0
"""``figures="auto"`` draws the figures after trials that ran for at least this long."""


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
    from lightning_recipes.tuning.pruning import build_pruner

    return build_pruner(name, **pruner_args(name, max_epochs=max_epochs))


def _reporter_entry(
    storage: str,
    study_name: str,
    trial_id: int,
    monitor: str,
    mode: str,
    pruner: str,
    args: Mapping[str, Any],
    result_dir: Path,
) -> dict[str, Any]:
    """The ``trainer.callbacks`` entry of the trial's `TrialReporter` (same pruner as the study)."""
    return {
        "class_path": "lightning_recipes.tuning.pruning.TrialReporter",
        "init_args": {
            "storage": storage,
            "study_name": study_name,
            "trial_id": trial_id,
            "monitor": monitor,
            "mode": mode,
            "prune": pruner != "none",
            "pruner": pruner,
            "pruner_args": dict(args),
            "result_dir": str(result_dir),
        },
    }


def trial_config(
    config: Mapping[str, Any],
    trial_dir: Path,
    *,
    callbacks: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The config a trial trains: ``config`` with its own log folder and extra callbacks.

    ``trainer.default_root_dir`` becomes ``trial_dir``; the per-epoch progress bar and the
    model summary are off unless the config sets them (the study shows its own bar).

    Args:
        config: The config with the trial's parameters applied.
        trial_dir: The trial's folder.
        callbacks: ``trainer.callbacks`` entries to append (class_path / init_args).

    Returns:
        The new config.
    """
    cfg = copy.deepcopy(dict(config))
    trainer = cfg.setdefault("trainer", {})
    trainer["default_root_dir"] = str(trial_dir)
    trainer.setdefault("enable_progress_bar", False)
    trainer.setdefault("enable_model_summary", False)
    if callbacks:
        existing = trainer.get("callbacks") or []
        if isinstance(existing, dict):
            existing = [existing]
        trainer["callbacks"] = [*existing, *(dict(c) for c in callbacks)]
    return cfg


def _fit_in_process(
    run_cfg: Mapping[str, Any],
    monitor: str,
    reporter: bool,
    parser: ConfigParser,
    dumped: Mapping[str, Any],
) -> tuple[list[float], bool]:
    """Train one trial's config as ``fit -c trial.yaml`` would; return the epoch values, pruned.

    The study's parser is reused, and so is its parse of the first trial's config where
    this trial's differs from it in scalar values only (see `ConfigParser`); ``dumped``
    (the expanded config with the trial's values) stands for LightningCLI's dump of the
    model and data sections; ``trial.yaml`` is the trial's config (no ``config.yaml``).
    """
    trusted = ["trainer.default_root_dir"]  # set by trial_config: the trial's folder
    if reporter:  # the reporter trial_config appended: the trial's id and folder
        last = len(run_cfg["trainer"]["callbacks"]) - 1
        trusted += [f"trainer.callbacks.{last}.init_args.{k}" for k in ("trial_id", "result_dir")]
    cli = parser.cli(run_cfg, save_config=False, dumped=dumped, reuse=True, trusted=trusted)
    recorder = _ValueRecorder(monitor)
    callbacks = trainer_callbacks(cli.trainer)
    callbacks.append(recorder)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    pruned = False
    if reporter:
        from lightning_recipes.tuning.pruning import (  # type: ignore[import-not-found,unused-ignore]
            TrialReporter,
        )

        pruned = any(isinstance(c, TrialReporter) and c.pruned for c in callbacks)
    return recorder.values, pruned


def _dumped_sections(full: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The model and data sections of a trial's config as LightningCLI dumps it.

    ``full`` is the study's expanded config (every default filled in); setting the sampled
    values there is what parsing and dumping the trial's config would give, at no cost.
    """
    sections = copy.deepcopy({k: v for k, v in full.items() if k in ("model", "data")})

    def section(key: str) -> str:
        return key.removeprefix(_LENGTH).split(".", 1)[0]

    sampled = {k: v for k, v in params.items() if section(k) in sections}
    return apply_params(sections, resize_lists(sections, sampled))


def _free_memory(study: Any, trial: Any) -> None:
    """After each trial: free the accelerator memory its cycles hold, and only then.

    Lightning's objects form reference cycles (Trainer <-> callbacks), which Python's
    collector frees soon enough for host memory. A full ``gc.collect()`` after every trial
    (Optuna's ``gc_after_trial``) costs about half a second with Lightning loaded, as much
    as a short trial; it is worth it only where a cycle holds device memory that the next
    trial needs.
    """
    del study, trial
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        gc.collect()
        torch.cuda.empty_cache()


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
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Parse the config with both ends of every range, so wrong types fail before trial 0.

    With ``shape`` (config -> the config a trial trains), the configs are parsed in that
    shape and the first parse is kept for the trials to reuse.
    """
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    for high in (False, True):
        params = space.sample(optuna.trial.FixedTrial(_probe_params(space, high)))
        cfg = copy.deepcopy(dict(base))
        values = resize_lists(cfg, params)
        probe = apply_params(cfg, values)
        try:
            if shape is None:
                parser.check(probe)
            else:
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


def tune(
    config: str | Path | Mapping[str, Any],
    space: str | Path | Mapping[str, Any] | SearchSpace | SpaceFunction,
    *,
    n_trials: int,
    sampler: SamplerName = "tpe",
    storage: str | None = None,
    study_name: str | None = None,
    monitor: str = "val_loss",
    mode: ModeChoice = "auto",
    pruner: PrunerName = "median",
    seed: int | None = None,
    timeout: float | None = None,
    n_jobs: int = 1,
    cv: int | None = None,
    out_dir: str | Path = "runs",
    progress: bool = True,
    overrides: Sequence[str] = (),
    value: Literal["best", "last"] = "best",
    heartbeat_interval: int = 10,
    grace_period: int | None = None,
    figures: bool | Literal["auto"] = "auto",
) -> Any:
    """Search hyperparameters of a LightningCLI config with Optuna and write the results.

    The study lives in ``storage`` (default: the journal file
    ``<out_dir>/<study>/study.journal``), so
    running ``tune`` again with the same study name continues it: finished trials are
    kept (a grid study whose every point has run trains nothing more), a trial whose
    process died is marked FAILED once its heartbeat is older than
    ``grace_period`` (and its parameters are retried once), and ``n_trials`` counts the
    COMPLETE and PRUNED trials of the study, from every worker. Several processes (on
    several machines with a ``postgresql://`` URL) given the same storage and study name
    share the study and the budget.

    When the study stops, ``<out_dir>/<study>/`` holds ``study.md`` (best parameters,
    trials table, figures), the figures as PNG, and ``best.yaml``: the config with the best
    parameters, which ``lightning-recipes fit -c best.yaml`` trains again.

    Args:
        config: A LightningCLI YAML path or config dict (as ``lightning-recipes fit -c``).
        space: A space YAML path, YAML text or mapping (see
            `lightning_recipes.tuning.space`), a `SearchSpace`, or a define-by-run function
            ``(trial) -> {config key: value}``.
        n_trials: The study's budget of COMPLETE + PRUNED trials.
        sampler: ``"grid"``, ``"random"``, ``"tpe"`` (multivariate, grouped) or ``"gp"``.
        storage: A storage URL: ``journal://`` and a file's path (an Optuna journal, the
            default's form), an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``
            for several machines), None for the default journal file, or ``"memory"``: the
            study lives in this process only, as in a hand-written Optuna loop (nothing to
            resume or share, no live dashboard; refused with ``n_jobs > 1``, ``cv`` or a
            multi-process Trainer). The report, ``best.yaml`` and the returned study are
            the same.
        study_name: The study's name (default: the config file's stem).
        monitor: The metric the trials are judged by (logged in validation).
        mode: ``"min"``, ``"max"``, or ``"auto"``: read from ``monitor``'s name, as
            `EarlyStopping` does (loss, error, NLL, MSE, MAE -> min; accuracy, F1, AUROC,
            precision, recall -> max); a name it cannot place is refused: pass the mode.
        pruner: ``"median"``, ``"hyperband"`` or ``"none"``.
        seed: The sampler's seed (the trials' training seed is the config's
            ``seed_everything``).
        timeout: Stop starting trials after this many seconds.
        n_jobs: Trials run in parallel by this process (each in its own subprocess).
        cv: Cross-validate each trial over this many folds (mean over folds).
        out_dir: The folder holding ``<study>/``.
        progress: Show a progress bar over trials with the best value so far.
        overrides: LightningCLI overrides applied to ``config`` first, e.g.
            ``["--trainer.max_epochs=5"]``.
        value: Tell Optuna the ``"best"`` monitored value over the epochs, or the ``"last"``.
        heartbeat_interval: Seconds between a running trial's heartbeats.
        grace_period: Seconds without a heartbeat after which a trial counts as dead
            (default: twice ``heartbeat_interval``).
        figures: Draw the figures (PNG) when the study stops: True, False, or ``"auto"``:
            when this call's trials ran for at least `FIGURES_AFTER_SECONDS` (drawing
            costs ~1 s, as much as a dozen short trials: at most ~3% of such a study).
            Undrawn, ``study.md`` says why and how to draw them later (`write_results`
            on the stored study).

    Returns:
        The ``optuna.Study``.

    Raises:
        RecipeConfigError: For bad arguments, unknown keys in the space (listing the valid
            ones), bad ranges, values LightningCLI rejects, a grid over a continuous range,
            or an existing study with the other direction; all before any trial runs.
    """
    _check_args(
        n_trials,
        sampler,
        monitor,
        mode,
        pruner,
        timeout,
        n_jobs,
        cv,
        value,
        heartbeat_interval,
        overrides,
    )
    if figures is not True and figures is not False and figures != "auto":
        raise config_error("figures", figures, "Pass True, False or 'auto'.")
    mode = resolve_mode(monitor, mode)
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    base = load_config(config, overrides)
    parser = ConfigParser()  # built once: every parse below and every trial reuses it
    full = expand_config(base, parser)
    keys = config_keys(full)

    space_fn: SpaceFunction | None = None
    parsed: SearchSpace | None = None
    if isinstance(space, SearchSpace):
        parsed = space
    elif callable(space):
        space_fn = space
    else:
        parsed = load_space(space)
    name = study_name or _default_name(config)
    if not re.fullmatch(r"[\w.-]+", name):
        raise config_error("study_name", name, "Use letters, digits, '.', '_' and '-' only.")
    out = Path(out_dir) / name
    url = f"memory://{name}" if storage == MEMORY else storage or default_storage(out_dir, name)
    # (for memory: the key under which the reporters find the study)
    max_epochs = (full.get("trainer") or {}).get("max_epochs")
    epochs = max_epochs if isinstance(max_epochs, int) else None
    subprocess_mode = n_jobs > 1 or needs_subprocess(full)
    use_reporter = subprocess_mode or pruner != "none"

    def run_config(cfg: Mapping[str, Any], trial_dir: Path, trial_id: int) -> dict[str, Any]:
        """The config a trial trains: its folder, and its reporter where it has one."""
        reporter = _reporter_entry(
            url, name, trial_id, monitor, mode, pruner, pruner_args(pruner, max_epochs=epochs),
            trial_dir,
        )  # fmt: skip
        return trial_config(cfg, trial_dir, callbacks=[reporter] if use_reporter else ())

    if parsed is not None:
        parsed.check(full, keys)
        # Checked in the shape of an in-process trial's config, the first check's parse
        # serves every such trial (see ConfigParser.cli): no trial parses in full.
        probe_dir = (out / "trial_0000").resolve()
        in_process = not subprocess_mode and cv is None
        shape = (lambda cfg: run_config(cfg, probe_dir, 0)) if in_process else None
        _check_values(parsed, base, parser, shape)
    sampler_obj = make_sampler(sampler, seed=seed, space=parsed)
    pruner_obj = make_pruner(pruner, max_epochs=epochs)
    out.mkdir(parents=True, exist_ok=True)
    if storage == MEMORY:
        if n_jobs > 1 or cv is not None or needs_subprocess(full):
            raise config_error(
                "storage",
                storage,
                "An in-memory study lives in this process only: it cannot serve trials run "
                "in subprocesses (n_jobs > 1, several devices or processes) or folds (cv). "
                "Leave storage unset (a journal file) or pass a sqlite:/// or postgresql:// URL.",
            )
        rdb = optuna.storages.InMemoryStorage()
    else:
        rdb = _storage(optuna, url, heartbeat_interval, grace_period)
    direction = "minimize" if mode == "min" else "maximize"
    study = optuna.create_study(
        storage=rdb,
        sampler=sampler_obj,
        pruner=pruner_obj,
        study_name=name,
        direction=direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise config_error(
            "mode",
            mode,
            f"The study {name!r} in this storage was created to "
            f"{study.direction.name.lower()}; pass the same mode or another study name.",
        )
    if seed is not None and study.trials:
        # A resumed study must not replay the seeded sampler's first draws: offset the seed
        # by what the study already holds (a fresh study keeps `seed` itself).
        study.sampler = make_sampler(sampler, seed=seed + len(study.trials), space=parsed)
    for key, setting in (("monitor", monitor), ("value", value)):
        study.set_user_attr(key, setting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)

    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=counted))
    remaining = n_trials - done
    if sampler == "grid" and study.sampler.is_exhausted(study):
        # Every grid point has run (in this process or an earlier one): Optuna's grid
        # sampler would train a random point again, a duplicate trial.
        remaining = 0
    lent = getattr(study, "_storage", rdb)  # private, but Optuna has no public accessor

    def objective(trial: Any) -> float:
        if space_fn is not None:
            params = dict(space_fn(trial))
            unknown = [k for k in params if k not in keys and not k.startswith("__length__:")]
            if unknown:
                raise unknown_key_error("space", unknown[0], keys)
        else:
            assert parsed is not None
            params = parsed.sample(trial)
        trial.set_user_attr("config_params", params)
        cfg = copy.deepcopy(base)
        cfg = apply_params(cfg, resize_lists(cfg, params))
        dumped = _dumped_sections(full, params)
        trial_dir = (out / f"trial_{trial.number:04d}").resolve()
        trial_dir.mkdir(parents=True, exist_ok=True)
        trial.set_user_attr("trial_dir", str(trial_dir))
        if cv is not None:
            from lightning_recipes.tuning.cv import (  # type: ignore[import-not-found,unused-ignore]
                cv_objective,
            )

            return float(
                cv_objective(
                    trial, cfg, cv, monitor, mode, use=value, overrides=(), out_dir=trial_dir
                )
            )
        # trial._trial_id: private, but Optuna has no public id of a trial in its storage
        run_cfg = run_config(cfg, trial_dir, trial._trial_id)
        cfg_path = trial_dir / "trial.yaml"
        cfg_path.write_text(yaml.dump(run_cfg, Dumper=_YAML_DUMPER, sort_keys=False))
        if subprocess_mode:
            from lightning_recipes.tuning.trial import (  # type: ignore[import-not-found,unused-ignore]
                run_trial_subprocess,
            )

            result = run_trial_subprocess(cfg_path, trial_dir, timeout=None)
            if result.get("pruned"):
                raise optuna.TrialPruned(f"pruned at epoch {result.get('epochs')}")
            told = result.get("value")
            if told is None:
                raise MissingMetricError(
                    f"Trial {trial.number} finished without a value for {monitor!r}; see "
                    f"{trial_dir}."
                )
            return float(told)
        # The trial's reporter writes through the study's own storage: for an RDB, Optuna's
        # cache in front of it (a study holds one; a storage lent bare would give the
        # reporter a cold cache, which reads every trial back at each report).
        with share_storage(url, lent):
            values, pruned = _fit_in_process(run_cfg, monitor, use_reporter, parser, dumped)
        trial.set_user_attr("epochs", len(values))
        if pruned:
            raise optuna.TrialPruned(f"pruned after {len(values)} epoch(s)")
        if not values:
            raise MissingMetricError(
                f"Trial {trial.number} ran no validation epoch, so {monitor!r} has no value; "
                "check trainer.limit_val_batches / check_val_every_n_epoch."
            )
        finite = [v for v in values if math.isfinite(v)]
        if value == "last" or not finite:
            return values[-1]
        return min(finite) if mode == "min" else max(finite)

    callbacks: list[Callable[[Any, Any], None]] = [
        optuna.study.MaxTrialsCallback(n_trials, states=counted),
        _free_memory,
    ]
    bar = _ProgressBar(n_trials, done, mode) if progress else None
    started = time.perf_counter()
    if bar is not None:
        callbacks.append(bar)
    try:
        if remaining > 0:
            with _Quiet(optuna) if progress else contextlib.nullcontext():
                study.optimize(
                    objective,
                    n_trials=remaining,
                    timeout=timeout,
                    n_jobs=n_jobs,
                    callbacks=callbacks,
                    gc_after_trial=False,  # a full collection costs ~0.5 s: see _free_memory
                )
    finally:
        if bar is not None:
            bar.close()
        from lightning_recipes.tuning.results import write_results

        ran = time.perf_counter() - started
        draw = figures is True or (figures == "auto" and ran >= FIGURES_AFTER_SECONDS)
        write_results(
            study,
            out,
            base,
            storage_url=url,
            monitor=monitor,
            sampler=sampler,
            figures=draw,
            not_drawn=None
            if figures is False
            else f"the trials of this run took {ran:.1f} s, less than the "
            f"{FIGURES_AFTER_SECONDS:.0f} s after which figures='auto' draws them",
        )
    return study


def _storage(optuna: Any, url: str, heartbeat_interval: int, grace_period: int | None) -> Any:
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


class _Quiet:
    """Lower Optuna's and Lightning's per-trial chatter while the progress bar shows."""

    _NAMES = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")

    def __init__(self, optuna: Any) -> None:
        self.optuna = optuna
        self.saved: list[tuple[logging.Logger, int]] = []
        self.verbosity = 0

    def __enter__(self) -> None:
        self.verbosity = self.optuna.logging.get_verbosity()
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)
        for name in self._NAMES:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level))
            logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self.optuna.logging.set_verbosity(self.verbosity)
        for logger, level in self.saved:
            logger.setLevel(level)
        self.saved.clear()


class _ProgressBar:
    """A tqdm bar over the study's counted trials, showing the best value so far."""

    def __init__(self, total: int, done: int, mode: str) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

        self.bar = tqdm(total=total, initial=min(done, total), desc="trials", unit="trial")
        self.mode = mode

    def __call__(self, study: Any, trial: Any) -> None:
        if trial.state.name in ("COMPLETE", "PRUNED"):
            self.bar.update(1)
        try:
            best = study.best_value
        except ValueError:  # no completed trial yet
            return
        self.bar.set_postfix(best=f"{best:.4g}", last=trial.state.name.lower())

    def close(self) -> None:
        self.bar.close()
