"""`ablate`: which recipes of a LightningCLI config pay off, measured on the user's own model.

Each configuration of the design (`lightning_recipes.tuning.ablation.configurations`) is
trained with each seed, as a trial of an Optuna study in the same storage as `tune`'s (a
journal file by default): a killed ablation resumes where it stopped, and the trials are
fixed points of a grid (configuration, seed), so a second run trains nothing twice.
Pruning is off: every run finishes, to be compared. Seeds are paired: every configuration
of a seed shares the initialisation, data order and split (``seed_everything``).
"""

import math
import multiprocessing
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lightning_recipes._core.modes import ModeChoice, resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import positive_int
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.tuning.ablation import (
    AblationDesign,
    Effect,
    Factor,
    check_switchable,
    config_factors,
    configuration_config,
    configurations,
    factor_effects,
    recommended_config,
)
from lightning_recipes.tuning.ablation_runs import AblationRuns, StopWhenAllStarted, work
from lightning_recipes.tuning.config import load_config
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.in_process import (
    _dumped_sections,
    trial_config,
)
from lightning_recipes.tuning.study_setup import default_storage, open_study_storage
from lightning_recipes.tuning.trial import needs_subprocess

__all__ = ["Ablation", "ablate"]

_FEATURE = "Ablation (lightning_recipes.tuning.ablate)"


@dataclass
class Ablation:
    """What an ablation found.

    Attributes:
        factors: The callbacks switched on and off.
        design: The design.
        seeds: The seeds (``seed_everything`` of every configuration).
        runs: Each configuration (the factors on) with its value per seed.
        seconds: Each configuration with its wall time per seed.
        effects: Each factor's effect, most helpful first.
        time_ratio: Each factor's cost: wall time with it over without (geometric mean).
        memory: Each configuration with its peak memory per seed, in bytes (runs trained in
            this process; empty for subprocess runs).
        memory_ratio: Each factor's peak memory with it over without (geometric mean).
        cpu_ratio: Each factor's CPU time (of this process) with it over without: far less
            disturbed than wall time by other work on the machine (runs trained in this
            process; empty for subprocess runs).
        monitor: The metric that judged the runs.
        memory_kind: What the peak is: ``"cuda"`` (device memory allocated), ``"host"``
            (the process's peak resident memory during the run, its baseline included).
        out: The folder of the report, figure, JSON and ``recommended.yaml``.
        overhead: Seconds this call spent besides the runs it trained (checks, the study,
            the report), and the seconds of those runs.
    """

    factors: list[Factor]
    design: AblationDesign
    seeds: list[int]
    runs: dict[tuple[str, ...], list[float]]
    seconds: dict[tuple[str, ...], list[float]]
    effects: list[Effect]
    time_ratio: dict[str, float]
    out: Path
    overhead: tuple[float, float] = (0.0, 0.0)
    memory: dict[tuple[str, ...], list[float]] = field(default_factory=dict)
    memory_ratio: dict[str, float] = field(default_factory=dict)
    memory_kind: str = ""
    monitor: str = ""
    cpu_ratio: dict[str, float] = field(default_factory=dict)


def ablate(
    config: str | Path | Mapping[str, Any],
    *,
    seeds: int = 3,
    design: AblationDesign = "leave-one-out",
    factors: Sequence[str | int] = (),
    keep: Sequence[str | int] = (),
    monitor: str = "val_loss",
    mode: ModeChoice = "auto",
    value: Literal["best", "last"] = "best",
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path = "runs",
    overrides: Sequence[str] = (),
    progress: bool = True,
    n_jobs: int = 1,
) -> Ablation:
    """Train every configuration of ``design`` with each seed and rank the recipes.

    Args:
        config: A LightningCLI YAML path or config dict (as ``lightning-recipes fit -c``).
        seeds: Seeds per configuration: ``seed_everything`` of the config, plus 1, plus 2...
        design: ``"leave-one-out"``, ``"add-one-in"`` or ``"factorial"``.
        factors: Callbacks to switch besides the library's, by position, class name or
            ``class_path``.
        keep: Callbacks of this library to keep on in every run rather than switch (same
            forms): one that cannot be switched off alone is refused until kept.
        monitor: The metric that judges a run: logged in validation, or a test metric
            (``test_*``): each run is then tested once fit ends (``trainer.test`` on the
            weights fit ended with; single-process configs).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from ``monitor``'s name).
        value: A run's value: its ``"best"`` epoch or its ``"last"``.
        storage: An Optuna storage URL; default: ``<out_dir>/<study>/study.journal``.
        study_name: The study's name (default: the config file's stem + ``-ablation``).
            A multi-process Trainer (DDP) trains each run in a subprocess, as
            ``lightning-recipes fit -c run.yaml``.
        out_dir: The folder holding ``<study>/``.
        overrides: LightningCLI overrides applied to ``config`` first.
        progress: A progress bar over runs, showing the leading configuration.
        n_jobs: Processes training runs at once: this one and ``n_jobs - 1`` workers,
            sharing the study (journal or SQLite storage on one machine; a PostgreSQL
            storage URL lets workers on other machines join with the same command).

    Returns:
        The `Ablation`; ``<out_dir>/<study>/`` holds ``ablation.md``, ``ablation.png``,
        ``ablation.json`` and ``recommended.yaml``.

    Raises:
        RecipeConfigError: For bad arguments, a config with no factor, or a configuration
            LightningCLI rejects; all before any run.
    """
    called = time.perf_counter()
    positive_int("seeds", seeds, "Pass how many seeds each configuration trains with (>= 1).")
    positive_int("n_jobs", n_jobs, "Pass how many processes train runs at once (>= 1).")
    if value not in ("best", "last"):
        raise config_error("value", value, "Pass 'best' or 'last'.")
    mode = resolve_mode(monitor, mode)
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    base = load_config(config, overrides)
    found = config_factors(base, factors, keep)
    check_switchable(base, found)
    names = [f.name for f in found]
    designs = configurations(names, design)
    name = study_name or (
        f"{Path(config).stem}-ablation" if isinstance(config, str | Path) else "ablation"
    )
    if not re.fullmatch(r"[\w.-]+", name):
        raise config_error("study_name", name, "Use letters, digits, '.', '_' and '-' only.")
    out = Path(out_dir) / name
    first = base.get("seed_everything")
    start = first if isinstance(first, int) and not isinstance(first, bool) else 0
    seed_list = [start + i for i in range(seeds)]
    parser = ConfigParser()
    runs_dir = (out / "run").resolve()
    full = parser.expand(base, trial_shape=lambda cfg: trial_config(cfg, runs_dir))
    # A Trainer of several processes (DDP) trains each run as `fit -c run.yaml` in a
    # subprocess (the tested decision `tune` uses), reporting through a TrialReporter.
    subprocess_mode = needs_subprocess(full)
    tested = monitor.startswith("test_")
    if tested and subprocess_mode:
        raise config_error(
            "monitor",
            monitor,
            "A multi-process (DDP) config trains each run as `fit` in a subprocess, which "
            "does not test: monitor a validation metric, or ablate with trainer.devices=1.",
        )
    for on in designs:  # every configuration parses before anything trains
        parser.check(trial_config(configuration_config(base, found, on), runs_dir))
    url = storage or default_storage(out_dir, name)
    out.mkdir(parents=True, exist_ok=True)
    grid = {"configuration": list(range(len(designs))), "seed": seed_list}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=open_study_storage(optuna, url, 10, None),
            sampler=optuna.samplers.GridSampler(grid, seed=0),
            study_name=name,
            direction="minimize" if mode == "min" else "maximize",
            load_if_exists=True,
        )
        optuna.storages.fail_stale_trials(study)
    runs = AblationRuns(
        base, found, designs, seed_list, out, url, name, monitor, mode, value, tested,
        subprocess_mode,
    )  # fmt: skip
    runs._parsed = (parser, _dumped_sections(full, {}))  # this process's parse, reused
    total = len(designs) * len(seed_list)
    done = len([t for t in study.trials if t.state.name == "COMPLETE"])
    workers = []
    if done < total:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no fork of torch
        for index in range(1, min(n_jobs, total - done)):
            worker = context.Process(target=work, args=(runs, index), daemon=True)
            worker.start()
            workers.append(worker)
        callbacks: list[Any] = [StopWhenAllStarted(total)]
        if progress:
            callbacks.insert(0, _Leader(total, done, designs, mode))
        study.optimize(
            runs, n_trials=total - done, callbacks=callbacks, gc_after_trial=False, catch=()
        )
        for worker in workers:
            worker.join()
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise RecipeConfigError(
            f"{len(failed)} of the {len(workers)} worker process(es) failed (exit codes "
            f"{failed}); their runs' logs are in {out}/run_*. Run the ablation again to "
            "finish what is missing."
        )
    elapsed = time.perf_counter() - called
    trained = sum(
        float(t.user_attrs.get("seconds", 0.0))
        for t in study.trials
        if t.state.name == "COMPLETE" and t.number >= done
    )
    result = _collect(study, found, design, designs, seed_list, mode, out, url)
    result.monitor = monitor
    # Every process's time beside its runs (checks, the study, waiting on the last run).
    result.overhead = (max(elapsed * (1 + len(workers)) - trained, 0.0), trained)
    from lightning_recipes.tuning.ablation_report import write_ablation

    write_ablation(result, recommended_config(base, found, result.effects), mode)
    return result


class _Leader:
    """A tqdm bar over runs, showing the configuration with the best mean so far."""

    def __init__(self, total: int, done: int, designs: list[tuple[str, ...]], mode: str) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

        self.bar = tqdm(total=total, initial=done, desc="ablation runs", unit="run")
        self.designs, self.mode = designs, mode
        self.every = max(len(on) for on in designs)  # the configuration with every factor

    def __call__(self, study: Any, trial: Any) -> None:
        means: dict[int, list[float]] = {}
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        for t in complete:
            means.setdefault(t.params["configuration"], []).append(t.value)
        self.bar.update(min(len(complete), self.bar.total) - self.bar.n)  # workers' runs too
        pick = min if self.mode == "min" else max
        best = pick(means, key=lambda c: sum(means[c]) / len(means[c]))
        on = self.designs[best]
        shown = "all" if len(on) > 1 and len(on) == self.every else " + ".join(on) or "none"
        self.bar.set_postfix_str(f"leader: {shown}")
        if self.bar.n >= self.bar.total:
            self.bar.close()


def _collect(
    study: Any,
    found: list[Factor],
    design: AblationDesign,
    designs: list[tuple[str, ...]],
    seeds: list[int],
    mode: Literal["min", "max"],
    out: Path,
    url: str,
) -> Ablation:
    """The ablation's results from the study's complete trials."""
    runs: dict[tuple[str, ...], dict[int, float]] = {on: {} for on in designs}
    seconds: dict[tuple[str, ...], dict[int, float]] = {on: {} for on in designs}
    memory: dict[tuple[str, ...], dict[int, float]] = {on: {} for on in designs}
    cpu: dict[tuple[str, ...], dict[int, float]] = {on: {} for on in designs}
    kinds: set[str] = set()
    for trial in study.trials:
        if trial.state.name != "COMPLETE":
            continue
        on = designs[trial.params["configuration"]]
        runs[on][trial.params["seed"]] = float(trial.value)
        seconds[on][trial.params["seed"]] = float(trial.user_attrs.get("seconds", math.nan))
        if "cpu_seconds" in trial.user_attrs:
            cpu[on][trial.params["seed"]] = float(trial.user_attrs["cpu_seconds"])
        if "peak_memory" in trial.user_attrs:
            memory[on][trial.params["seed"]] = float(trial.user_attrs["peak_memory"])
            kinds.add(str(trial.user_attrs.get("memory_kind", "host")))
    missing = [(on, s) for on in designs for s in seeds if s not in runs[on]]
    if missing:
        raise RecipeConfigError(
            f"The ablation in {url} lacks {len(missing)} run(s) (e.g. {missing[0]}); run it "
            "again to finish them."
        )
    scores = {on: [runs[on][s] for s in seeds] for on in designs}
    times = {on: [seconds[on][s] for s in seeds] for on in designs}
    names = [f.name for f in found]
    effects = factor_effects(scores, names, design, mode)
    ratio = _ratios(times, names, design)
    peaks: dict[tuple[str, ...], list[float]] = {}
    memory_ratio: dict[str, float] = {}
    if all(len(memory[on]) == len(seeds) for on in designs):
        peaks = {on: [memory[on][s] for s in seeds] for on in designs}
        memory_ratio = _ratios(peaks, names, design)
    cpu_ratio: dict[str, float] = {}
    if all(len(cpu[on]) == len(seeds) for on in designs):
        cpu_ratio = _ratios({on: [cpu[on][s] for s in seeds] for on in designs}, names, design)
    kind = " and ".join(sorted(kinds))  # one kind unless the storage mixes machines
    return Ablation(
        found, design, seeds, scores, times, effects, ratio, out, (0.0, 0.0), peaks,
        memory_ratio, kind, "", cpu_ratio,
    )  # fmt: skip


def _ratios(
    values: Mapping[tuple[str, ...], list[float]], names: list[str], design: AblationDesign
) -> dict[str, float]:
    """Each factor's ratio with it over without: the paired effect of log values, exp'd."""
    logs = {on: [math.log(max(v, 1e-9)) for v in vs] for on, vs in values.items()}
    return {e.factor: math.exp(e.mean) for e in factor_effects(logs, names, design, "max")}
