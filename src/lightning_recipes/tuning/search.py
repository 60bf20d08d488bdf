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
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.modes import ModeChoice, resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes.errors import (
    MissingMetricError,
    config_error,
)
from lightning_recipes.tuning.checks import _check_args, _check_values, _default_name
from lightning_recipes.tuning.config import (
    apply_params,
    config_keys,
    load_config,
    unknown_key_error,
)
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.in_process import (
    _YAML_DUMPER,
    _dumped_sections,
    _fit_in_process,
    _free_memory,
    _reporter_entry,
    trial_config,
)
from lightning_recipes.tuning.progress import _ProgressBar, _Quiet
from lightning_recipes.tuning.space import SearchSpace, SpaceFunction, load_space, resize_lists
from lightning_recipes.tuning.storage import share_storage
from lightning_recipes.tuning.study_setup import (
    MEMORY,
    PRUNERS,
    SAMPLERS,
    PrunerName,
    SamplerName,
    default_storage,
    make_pruner,
    make_sampler,
    open_study_storage,
    pruner_args,
)
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

_FEATURE = "Hyperparameter search (lightning_recipes.tuning)"

FIGURES_AFTER_SECONDS = 30.0
"""``figures="auto"`` draws the figures after trials that ran for at least this long."""


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
    name = study_name or _default_name(config)
    if not re.fullmatch(r"[\w.-]+", name):
        raise config_error("study_name", name, "Use letters, digits, '.', '_' and '-' only.")
    out = Path(out_dir) / name
    parser = ConfigParser()  # every parse below and every trial reuses LightningCLI's parser
    # Expanded in the shape of an in-process trial's config (its folder and bar settings,
    # which nothing below reads), the parse serves every such trial whose config differs
    # from it only in accepted values (see ConfigParser.cli): no trial parses in full.
    probe_dir = (out / "trial_0000").resolve()

    def trial_shape(cfg: Mapping[str, Any]) -> dict[str, Any]:
        return trial_config(cfg, probe_dir)

    full = parser.expand(base, trial_shape=trial_shape)
    keys = config_keys(full)

    space_fn: SpaceFunction | None = None
    parsed: SearchSpace | None = None
    if isinstance(space, SearchSpace):
        parsed = space
    elif callable(space):
        space_fn = space
    else:
        parsed = load_space(space)
    url = f"memory://{name}" if storage == MEMORY else storage or default_storage(out_dir, name)
    # (for memory: the key under which the reporters find the study)
    max_epochs = (full.get("trainer") or {}).get("max_epochs")
    epochs = max_epochs if isinstance(max_epochs, int) else None
    subprocess_mode = n_jobs > 1 or needs_subprocess(full)
    use_reporter = subprocess_mode or pruner != "none"

    def reporter_of(trial_dir: Path, trial_id: int) -> dict[str, Any]:
        """The ``trainer.callbacks`` entry of a trial's `TrialReporter`."""
        return _reporter_entry(
            url, name, trial_id, monitor, mode, pruner, pruner_args(pruner, max_epochs=epochs),
            trial_dir,
        )  # fmt: skip

    if parsed is not None:
        parsed.check(full, keys)
        _check_values(parsed, base, parser, trial_shape)
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
        rdb = open_study_storage(optuna, url, heartbeat_interval, grace_period)
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
        reporter = reporter_of(trial_dir, trial._trial_id) if use_reporter else None
        run_cfg = trial_config(cfg, trial_dir, callbacks=[reporter] if reporter else ())
        cfg_path = trial_dir / "trial.yaml"  # what `fit -c trial.yaml` trains again
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
            values, pruned = _fit_in_process(
                trial_config(cfg, trial_dir), reporter, monitor, parser, dumped
            )
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
