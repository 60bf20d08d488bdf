"""Run one trial's fit in a subprocess: the way to tune with multi-process strategies.

Lightning's ``ddp`` strategy starts the other ranks by re-running the command line of the
process that calls ``fit``. Inside a search loop that would re-run the search. So a trial
whose Trainer uses several processes runs as ``python -m lightning_recipes.cli fit -c
CONFIG`` in its own process group: the config holds a `TrialReporter` (see `add_reporter`)
that reports to the trial and writes ``result.json``, which `run_trial_subprocess` returns.
"""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

from lightning_recipes._core.validate import command_args
from lightning_recipes.errors import config_error
from lightning_recipes.tuning.pruning import RESULT_FILE
from lightning_recipes.tuning.trial_reporter import TrialReporter

__all__ = [
    "LOG_FILE",
    "TrialSubprocessError",
    "add_reporter",
    "needs_subprocess",
    "run_trial_subprocess",
]

LOG_FILE = "trial.log"
"""The file in ``out_dir`` holding the trial's stdout and stderr."""

REPORTER_CLASS_PATH = f"{TrialReporter.__module__}.{TrialReporter.__qualname__}"
# Its path in a config saved before it moved (still built, deprecated, for one release).
_OLD_REPORTER_CLASS_PATHS = ("lightning_recipes.tuning.pruning.TrialReporter",)

# Set by a launcher for the process it starts; a trial's fit must start its own job.
_DIST_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT",
             "GROUP_RANK", "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # fmt: skip
_MULTI_PROCESS_STRATEGIES = ("ddp", "fsdp", "deepspeed", "model_parallel", "xla")


class TrialSubprocessError(RuntimeError):
    """A trial's fit subprocess failed, hung past its timeout, or wrote no result.

    Attributes:
        returncode: The exit status (``None`` if it was killed at the timeout).
        log: The path of the trial's log.
        timed_out: Whether the fit ran past its timeout.
    """

    def __init__(self, message: str, *, returncode: int | None, log: Path, timed_out: bool):
        super().__init__(message)
        self.returncode = returncode
        self.log = log
        self.timed_out = timed_out


def add_reporter(config: Mapping[str, Any], **reporter_args: Any) -> dict[str, Any]:
    """A copy of a LightningCLI config with a `TrialReporter` added to the Trainer's callbacks.

    Args:
        config: The config (``trainer``, ``model``, ``data`` sections...).
        **reporter_args: `TrialReporter` arguments (``storage``, ``study_name``,
            ``trial_id``, ``monitor``, ``mode``, ``pruner``, ``result_dir``...), checked
            now by building one.

    Returns:
        The new config; ``config`` is not changed.

    Examples:
        >>> cfg = add_reporter({"trainer": {"max_epochs": 3}},
        ...                    storage="sqlite:///s.db", study_name="s", trial_id=0)
        >>> cfg["trainer"]["callbacks"][0]["class_path"]
        'lightning_recipes.tuning.trial_reporter.TrialReporter'
    """
    TrialReporter(**reporter_args)  # the same checks as the fit will make, before it starts
    args = {k: str(v) if isinstance(v, Path) else v for k, v in reporter_args.items()}
    new = deepcopy(dict(config))
    trainer = new.get("trainer")
    if trainer is None:
        trainer = new["trainer"] = {}
    if not isinstance(trainer, dict):
        raise config_error("config['trainer']", trainer, "Pass a mapping of Trainer arguments.")
    callbacks = trainer.get("callbacks") or []
    if not isinstance(callbacks, list):
        callbacks = [callbacks]
    callbacks = [
        c
        for c in callbacks
        if not (
            isinstance(c, Mapping)
            and c.get("class_path") in (REPORTER_CLASS_PATH, *_OLD_REPORTER_CLASS_PATHS)
        )
    ]  # a config saved from an earlier trial holds that trial's reporter: replace it
    callbacks.append({"class_path": REPORTER_CLASS_PATH, "init_args": args})
    trainer["callbacks"] = callbacks
    return new


def needs_subprocess(config: Mapping[str, Any]) -> bool:
    """Whether a config's Trainer starts several processes (then run it with a subprocess).

    True for a DDP/FSDP/DeepSpeed/XLA strategy (``ddp_spawn`` included), more than one
    device (``devices: 2``, ``[0, 1]``, ``-1``), more than one node, or ``devices: auto``
    on an accelerator other than the CPU when several CUDA devices are visible.

    Examples:
        >>> needs_subprocess({"trainer": {"accelerator": "cpu", "devices": 1}})
        False
        >>> needs_subprocess({"trainer": {"strategy": "ddp", "devices": 2}})
        True
    """
    trainer = config.get("trainer") or {}
    strategy = trainer.get("strategy")
    if isinstance(strategy, Mapping):
        strategy = strategy.get("class_path", "")
    if isinstance(strategy, str) and any(
        name in strategy.lower() for name in _MULTI_PROCESS_STRATEGIES
    ):
        return True
    num_nodes = trainer.get("num_nodes", 1)
    if num_nodes not in (None, 1, "1"):
        return True
    devices = trainer.get("devices", "auto")
    if isinstance(devices, list | tuple):
        return len(devices) > 1
    if isinstance(devices, str) and devices != "auto":
        stripped = devices.strip()
        if "," in stripped:
            return len([d for d in stripped.split(",") if d.strip()]) > 1
        devices = int(stripped) if stripped.lstrip("-").isdigit() else devices
    if isinstance(devices, int):
        return devices == -1 or devices > 1
    if devices == "auto" and trainer.get("accelerator", "auto") != "cpu":
        import torch

        return torch.cuda.device_count() > 1
    return False


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    """End the fit and every rank it started (they share its process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_trial_subprocess(
    config_path: Path | str,
    out_dir: Path | str,
    timeout: float | None = None,
    *,
    args: Sequence[str] = (),
    cwd: Path | str | None = None,
) -> dict[str, Any]:
    """Run ``lightning-recipes fit -c config_path`` in a new process group; return its result.

    The config must hold a `TrialReporter` whose ``result_dir`` is ``out_dir`` (see
    `add_reporter`). The fit's output goes to ``out_dir/trial.log``. On a timeout, or if
    the caller is interrupted, the fit and every rank it started are killed.

    Args:
        config_path: The trial's LightningCLI YAML config.
        out_dir: The folder the reporter writes ``result.json`` into.
        timeout: Seconds the fit may run, or None for no limit.
        args: More command-line arguments for ``fit`` (e.g. ``--trainer.max_epochs=3``).
        cwd: The fit's working directory (relative paths in the config resolve from it);
            defaults to this process's.

    Returns:
        The ``result.json`` payload (see `TrialReporter.result`), with ``log`` added: the
        path of the trial's log.

    Raises:
        RecipeConfigError: If ``config_path`` is not a file, ``timeout`` is not positive,
            or ``args`` is not a list of strings.
        TrialSubprocessError: If the fit fails, runs past ``timeout``, or writes no result.
    """
    config_path = Path(config_path)
    if not config_path.is_file():
        raise config_error("config_path", str(config_path), "Pass the path of a YAML config.")
    if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
        raise config_error("timeout", timeout, "Pass a number of seconds > 0, or None.")
    command_args("args", args)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / RESULT_FILE
    result_path.unlink(missing_ok=True)  # never return a previous run's result
    log = out / LOG_FILE
    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "lightning_recipes.cli", "fit", "-c", str(config_path), *args]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # one group: a hung run is killed with all its ranks
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.poll() is None:  # timeout, or the caller was interrupted
                _kill_group(proc)
    if timed_out:
        raise TrialSubprocessError(
            f"The trial's fit ran past its timeout of {timeout} s and was killed "
            f"({' '.join(cmd)}). Log: {log}\n{_tail(log)}",
            returncode=None,
            log=log,
            timed_out=True,
        )
    if proc.returncode != 0:
        raise TrialSubprocessError(
            f"The trial's fit exited with status {proc.returncode} ({' '.join(cmd)}). "
            f"Log: {log}\n{_tail(log)}",
            returncode=proc.returncode,
            log=log,
            timed_out=False,
        )
    if not result_path.is_file():
        raise TrialSubprocessError(
            f"The trial's fit finished but wrote no {result_path}: its config needs a "
            f"TrialReporter with result_dir={str(out)!r} (see add_reporter). Log: {log}",
            returncode=proc.returncode,
            log=log,
            timed_out=False,
        )
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["log"] = str(log)
    return result
