"""A trial fitted in the `tune` process: its config, its fit, what it reports, its memory."""

import copy
import gc
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse
from lightning.pytorch.callbacks import Checkpoint

from lightning_recipes._core.trainer import trainer_callbacks
from lightning_recipes.errors import MissingMetricError
from lightning_recipes.tuning.config import apply_params
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.metric_recorder import MetricRecorder
from lightning_recipes.tuning.space import resize_lists

__all__ = ["trial_config"]

_FEATURE = "Hyperparameter search (lightning_recipes.tuning)"
# libyaml's emitter writes the same text as PyYAML's SafeDumper, 5x faster (a trial's config
# is written at every trial); PyYAML built without libyaml has only the Python one.
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LENGTH = "__length__:"  # how SearchSpace.sample names a list's sampled length


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
        "class_path": "lightning_recipes.tuning.trial_reporter.TrialReporter",
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
    reporter: Mapping[str, Any] | None,
    monitor: str,
    parser: ConfigParser,
    dumped: Mapping[str, Any],
    *,
    trusted: Sequence[str] = ("trainer.default_root_dir",),
    test: bool = False,
) -> tuple[list[float], bool]:
    """Train one trial as ``fit -c trial.yaml`` would; return the epoch values, pruned.

    ``run_cfg`` is the trial's config without its reporter, ``reporter`` the reporter's
    ``trainer.callbacks`` entry (``trial.yaml`` holds both). The study's parser is reused,
    and so is its parse of the study's config where this trial's differs from it in
    accepted values only (see `ConfigParser`); ``dumped`` (the expanded config with the
    trial's values) stands for LightningCLI's dump of the model and data sections. The
    reporter is built here from its entry, as jsonargparse would build it (its arguments
    are plain values), and placed where the Trainer places a callback of the config:
    before the checkpoints (parsing it with the config cost 1.4 ms a trial). With
    ``test``, the fitted model is then tested (``trainer.test``, the weights fit ended with)
    and the one value is the tested ``monitor``.
    """
    # trusted: leaves set by the caller to values of the parsed type (trial_config's folder)
    cli = parser.cli(run_cfg, save_config=False, dumped=dumped, reuse=True, trusted=trusted)
    recorder = MetricRecorder(monitor, owner="tune")
    callbacks = trainer_callbacks(cli.trainer)
    built = None
    if reporter is not None:
        from lightning_recipes.tuning.trial_reporter import TrialReporter

        built = TrialReporter(**reporter["init_args"])
        checkpoints = [i for i, c in enumerate(callbacks) if isinstance(c, Checkpoint)]
        callbacks.insert(checkpoints[0] if checkpoints else len(callbacks), built)
    if not test:
        callbacks.append(recorder)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if test:
        tested = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        found = {k: float(v) for k, v in (tested[0] if tested else {}).items()}
        if monitor not in found:
            raise MissingMetricError(
                f"The test metric {monitor!r} was not logged; the test logged: "
                f"{', '.join(sorted(found)) or 'nothing'}."
            )
        return [found[monitor]], False
    return recorder.values(monitor), built is not None and built.pruned


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
