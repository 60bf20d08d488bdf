"""The runs of an ablation: one (configuration, seed) run per trial, in any process.

`ablate` asks the study for runs in its own process and, with ``n_jobs``, in worker
processes that share the study; each run trains in process (`_fit_in_process`) or, for a
multi-process (DDP) config, as ``lightning-recipes fit -c run.yaml`` in a subprocess.
"""

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.peak_memory import peak_memory
from lightning_recipes.errors import MissingMetricError
from lightning_recipes.tuning.ablation import Factor, configuration_config
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.in_process import (
    _dumped_sections,
    _fit_in_process,
    _reporter_entry,
    trial_config,
)
from lightning_recipes.tuning.study_setup import open_study_storage

__all__ = ["AblationRuns", "StopWhenAllStarted", "work"]


@dataclass
class AblationRuns:
    """The objective: train one (configuration, seed) run; picklable for worker processes."""

    base: dict[str, Any]
    found: list[Factor]
    designs: list[tuple[str, ...]]
    seeds: list[int]
    out: Path
    url: str
    name: str
    monitor: str
    mode: Literal["min", "max"]
    value: Literal["best", "last"]
    tested: bool
    subprocess_mode: bool
    _parsed: tuple[ConfigParser, dict[str, Any]] | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_parsed": None}  # each process parses for itself

    def _parser(self) -> tuple[ConfigParser, dict[str, Any]]:
        if self._parsed is None:
            parser = ConfigParser()
            runs_dir = (self.out / "run").resolve()
            full = parser.expand(self.base, trial_shape=lambda cfg: trial_config(cfg, runs_dir))
            self._parsed = (parser, _dumped_sections(full, {}))
        return self._parsed

    def __call__(self, trial: Any) -> float:
        """Train the run the trial's grid point names; return its value."""
        index = trial.suggest_categorical("configuration", list(range(len(self.designs))))
        seed = trial.suggest_categorical("seed", self.seeds)
        cfg = configuration_config(self.base, self.found, self.designs[index])
        cfg["seed_everything"] = seed
        run_dir = (self.out / f"run_{trial.number:04d}").resolve()
        started = time.perf_counter()
        if self.subprocess_mode:
            told = _fit_in_subprocess(
                cfg, run_dir, self.url, self.name, trial._trial_id, self.monitor, self.mode
            )
            trial.set_user_attr("seconds", time.perf_counter() - started)
            return float(told["value" if self.value == "best" else "last"])
        parser, dumped = self._parser()
        started, cpu = time.perf_counter(), time.process_time()
        with peak_memory() as peak:
            values, _ = _fit_in_process(
                trial_config(cfg, run_dir), None, self.monitor, parser, dumped,
                trusted=["trainer.default_root_dir", "seed_everything"], test=self.tested,
            )  # fmt: skip
        trial.set_user_attr("seconds", time.perf_counter() - started)
        trial.set_user_attr("cpu_seconds", time.process_time() - cpu)
        if peak.bytes is not None:
            trial.set_user_attr("peak_memory", peak.bytes)
            trial.set_user_attr("memory_kind", peak.kind)
        finite = [v for v in values if math.isfinite(v)]
        if not values:
            raise MissingMetricError(
                f"Run {trial.number} ran no validation epoch, so {self.monitor!r} has no value."
            )
        if self.value == "last" or not finite:
            return values[-1]
        return min(finite) if self.mode == "min" else max(finite)


def work(runs: AblationRuns, index: int) -> None:
    """Worker ``index`` of ``n_jobs``: train runs of the shared study until all are taken."""
    del index  # which worker it is changes nothing; kept for the process' arguments
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = {"configuration": list(range(len(runs.designs))), "seed": runs.seeds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.load_study(
            study_name=runs.name,
            storage=open_study_storage(optuna, runs.url, 10, None),
            # The study's own sampler seed: the grid sampler numbers its points in an order
            # drawn from its seed, and every process must mean the same run by a number.
            sampler=optuna.samplers.GridSampler(grid, seed=0),
        )
    total = len(runs.designs) * len(runs.seeds)
    stop = StopWhenAllStarted(total)
    if not stop.all_started(study):
        study.optimize(runs, n_trials=total, callbacks=[stop], gc_after_trial=False, catch=())


class StopWhenAllStarted:
    """Stop asking for runs once every run is taken: never train one twice in parallel.

    Optuna's grid sampler, once every point has started, hands out the unfinished ones
    again (so that a dead worker's point still gets done); the runs of an ablation are
    too long to duplicate, and a dead worker's run is redone when the command runs again.
    """

    def __init__(self, total: int) -> None:
        self.total = total

    def all_started(self, study: Any) -> bool:
        """Whether every (configuration, seed) run of the grid is finished or running."""
        taken = {
            (t.params.get("configuration"), t.params.get("seed"))
            for t in study.get_trials(deepcopy=False)
            if t.state.name in ("COMPLETE", "RUNNING") and "seed" in t.params
        }
        return len(taken) >= self.total

    def __call__(self, study: Any, trial: Any) -> None:
        """After each run: stop this process once no run is left to start."""
        del trial
        if self.all_started(study):
            study.stop()


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
