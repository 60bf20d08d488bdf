"""`ablate`: which recipes of a LightningCLI config pay off, measured on the user's own model.

Each configuration of the design (`lightning_recipes.tuning.ablation.configurations`) is
trained with each seed, as a trial of an Optuna study in the same storage as `tune`'s (a
journal file by default): a killed ablation resumes where it stopped, and the trials are
fixed points of a grid (configuration, seed), so a second run trains nothing twice.
Pruning is off: every run finishes, to be compared. Seeds are paired: every configuration
of a seed shares the initialisation, data order and split (``seed_everything``).
"""

import math
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.modes import ModeChoice, resolve_mode
from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import positive_int
from lightning_recipes.errors import MissingMetricError, RecipeConfigError, config_error
from lightning_recipes.tuning.ablation import (
    AblationDesign,
    Effect,
    Factor,
    config_factors,
    configuration_config,
    configurations,
    factor_effects,
    recommended_config,
)
from lightning_recipes.tuning.config import load_config
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.in_process import (
    _dumped_sections,
    _fit_in_process,
    _reporter_entry,
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


def ablate(
    config: str | Path | Mapping[str, Any],
    *,
    seeds: int = 3,
    design: AblationDesign = "leave-one-out",
    factors: Sequence[str | int] = (),
    monitor: str = "val_loss",
    mode: ModeChoice = "auto",
    value: Literal["best", "last"] = "best",
    storage: str | None = None,
    study_name: str | None = None,
    out_dir: str | Path = "runs",
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> Ablation:
    """Train every configuration of ``design`` with each seed and rank the recipes.

    Args:
        config: A LightningCLI YAML path or config dict (as ``lightning-recipes fit -c``).
        seeds: Seeds per configuration: ``seed_everything`` of the config, plus 1, plus 2...
        design: ``"leave-one-out"``, ``"add-one-in"`` or ``"factorial"``.
        factors: Callbacks to switch besides the library's, by position, class name or
            ``class_path``.
        monitor: The metric that judges a run (logged in validation).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (from ``monitor``'s name).
        value: A run's value: its ``"best"`` epoch or its ``"last"``.
        storage: An Optuna storage URL; default: ``<out_dir>/<study>/study.journal``.
        study_name: The study's name (default: the config file's stem + ``-ablation``).
            A multi-process Trainer (DDP) trains each run in a subprocess, as
            ``lightning-recipes fit -c run.yaml``.
        out_dir: The folder holding ``<study>/``.
        overrides: LightningCLI overrides applied to ``config`` first.
        progress: A progress bar over runs, showing the leading configuration.

    Returns:
        The `Ablation`; ``<out_dir>/<study>/`` holds ``ablation.md``, ``ablation.png``,
        ``ablation.json`` and ``recommended.yaml``.

    Raises:
        RecipeConfigError: For bad arguments, a config with no factor, or a configuration
            LightningCLI rejects; all before any run.
    """
    called = time.perf_counter()
    positive_int("seeds", seeds, "Pass how many seeds each configuration trains with (>= 1).")
    if value not in ("best", "last"):
        raise config_error("value", value, "Pass 'best' or 'last'.")
    mode = resolve_mode(monitor, mode)
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    base = load_config(config, overrides)
    found = config_factors(base, factors)
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
    for on in designs:  # every configuration parses before anything trains
        parser.check(trial_config(configuration_config(base, found, on), runs_dir))
    dumped = _dumped_sections(full, {})
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
    trusted = ["trainer.default_root_dir", "seed_everything"]
    trained: list[float] = []  # seconds of each run this call trained

    def objective(trial: Any) -> float:
        index = trial.suggest_categorical("configuration", grid["configuration"])
        seed = trial.suggest_categorical("seed", seed_list)
        cfg = configuration_config(base, found, designs[index])
        cfg["seed_everything"] = seed
        run_dir = (out / f"run_{trial.number:04d}").resolve()
        started = time.perf_counter()
        if subprocess_mode:
            told = _fit_in_subprocess(cfg, run_dir, url, name, trial._trial_id, monitor, mode)
            trained.append(time.perf_counter() - started)
            trial.set_user_attr("seconds", trained[-1])
            return float(told["value" if value == "best" else "last"])
        values, _ = _fit_in_process(
            trial_config(cfg, run_dir), None, monitor, parser, dumped, trusted=trusted
        )
        trained.append(time.perf_counter() - started)
        trial.set_user_attr("seconds", trained[-1])
        finite = [v for v in values if math.isfinite(v)]
        if not values:
            raise MissingMetricError(
                f"Run {trial.number} ran no validation epoch, so {monitor!r} has no value."
            )
        if value == "last" or not finite:
            return values[-1]
        return min(finite) if mode == "min" else max(finite)

    total = len(designs) * len(seed_list)
    done = len([t for t in study.trials if t.state.name == "COMPLETE"])
    if done < total:
        study.optimize(
            objective,
            n_trials=total - done,
            callbacks=[_Leader(total, done, designs, mode)] if progress else [],
            gc_after_trial=False,
            catch=(),
        )
    result = _collect(study, found, design, designs, seed_list, mode, out, url)
    result.overhead = (time.perf_counter() - called - sum(trained), sum(trained))
    from lightning_recipes.tuning.ablation_report import write_ablation

    write_ablation(result, recommended_config(base, found, result.effects), mode)
    return result


def _fit_in_subprocess(
    cfg: Mapping[str, Any],
    run_dir: Path,
    url: str,
    study_name: str,
    trial_id: int,
    monitor: str,
    mode: str,
) -> dict[str, Any]:
    """Train one run as ``lightning-recipes fit -c run.yaml`` in a subprocess (DDP configs).

    A `TrialReporter` that never prunes reports each epoch to the run's trial; its result
    (``result.json``) holds the best and the last value.
    """
    from lightning_recipes.tuning.trial import run_trial_subprocess

    reporter = _reporter_entry(url, study_name, trial_id, monitor, mode, "none", {}, run_dir)
    run_cfg = trial_config(cfg, run_dir, callbacks=[reporter])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "run.yaml"  # what `fit -c run.yaml` trains again
    path.write_text(yaml.safe_dump(run_cfg, sort_keys=False))
    result = run_trial_subprocess(path, run_dir, timeout=None)
    if result.get("value") is None:
        raise MissingMetricError(
            f"The run in {run_dir} finished without a value for {monitor!r}; see its trial.log."
        )
    return result


class _Leader:
    """A tqdm bar over runs, showing the configuration with the best mean so far."""

    def __init__(self, total: int, done: int, designs: list[tuple[str, ...]], mode: str) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

        self.bar = tqdm(total=total, initial=done, desc="ablation runs", unit="run")
        self.designs, self.mode = designs, mode
        self.every = max(len(on) for on in designs)  # the configuration with every factor

    def __call__(self, study: Any, trial: Any) -> None:
        self.bar.update(1)
        means: dict[int, list[float]] = {}
        for t in study.trials:
            if t.state.name == "COMPLETE":
                means.setdefault(t.params["configuration"], []).append(t.value)
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
    for trial in study.trials:
        if trial.state.name != "COMPLETE":
            continue
        on = designs[trial.params["configuration"]]
        runs[on][trial.params["seed"]] = float(trial.value)
        seconds[on][trial.params["seed"]] = float(trial.user_attrs.get("seconds", math.nan))
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
    logs = {on: [math.log(max(t, 1e-9)) for t in ts] for on, ts in times.items()}
    ratio = {e.factor: math.exp(e.mean) for e in factor_effects(logs, names, design, "max")}
    return Ablation(found, design, seeds, scores, times, effects, ratio, out)
