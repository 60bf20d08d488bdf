"""TrialReporter: pruning of Optuna trials from inside a Lightning fit, correct under DDP.

Why Optuna's own Lightning callback is not enough under ``strategy="ddp"``:

* Lightning's ``ddp`` strategy starts the other ranks by re-running the command line. A
  script that creates the trial in the same process as the fit therefore creates one trial
  per rank, each rank reporting to its own trial (Optuna supports ``ddp_spawn`` only).
* A callback that raises ``optuna.TrialPruned`` inside the fit leaves the ranks that did not
  raise waiting at their next collective call: a hang, or a deadlock exception from the
  process group, instead of a pruned trial.

`TrialReporter` avoids both. It names its trial by ``(storage, study_name, trial_id)``, so
every rank of the fit refers to the one trial that the search asked for (the search runs
``lightning-recipes fit`` with a config holding the reporter; see `tuning.trial`). Once per
validation, every rank averages the monitored value, rank 0 alone reports it to the trial
and asks the pruner, and broadcasts the decision; every rank sets ``trainer.should_stop``
together and the fit ends normally. No exception is raised inside the fit: the caller
reads `TrialReporter.result` (or the ``result.json`` it writes) and marks the trial PRUNED
with `finish_trial`.
"""

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, non_negative_int
from lightning_recipes.errors import (
    MissingMetricError,
    RecipeConfigError,
    choice_error,
    config_error,
)
from lightning_recipes.tuning.pruning import RESULT_FILE, TrialReportError, _optuna
from lightning_recipes.tuning.storage import open_storage, redact_url
from lightning_recipes.tuning.study_setup import PrunerName, build_pruner, check_pruner

if TYPE_CHECKING:
    import optuna

__all__ = ["TrialReporter"]


class TrialReporter(Recipe):
    """Report a monitored metric to an Optuna trial once per epoch and prune it on all ranks.

    Built from plain values (storage URL, study name, trial id), so LightningCLI can build it
    from YAML and ``ddp_spawn`` can pickle it; it connects to the storage at ``setup``, on
    global rank 0 only. At each validation end (not during the sanity check), the monitored
    value is averaged over ranks; rank 0 reports it with ``trial.report(value, step=epoch)``
    and asks ``trial.should_prune()``; the decision is broadcast and every rank sets
    ``trainer.should_stop`` at the same epoch. Nothing is raised inside the fit: afterwards
    `pruned` tells whether the trial was pruned, `result` holds the values, and
    `finish_trial` tells the study. With ``result_dir`` set, rank 0 also writes
    ``result_dir/result.json`` at the end of the fit (for a fit run in a subprocess).

    It refuses (at ``setup``, with `RecipeConfigError`) what would make the decision wrong:
    a storage or study it cannot open, a study whose direction is not ``mode``, a trial
    that is not RUNNING in that study, validation more than once per epoch
    (``val_check_interval`` other than ``1.0``), and no validation at all. A fit that keeps
    training after a prune because ``min_epochs`` is not reached makes no further reports.

    Args:
        storage: The study's storage URL (``journal:///runs/s/study.journal``,
            ``sqlite:///runs/s/study.db``,
            ``postgresql://user@host/db``): every rank's process must reach it.
        study_name: The study's name.
        trial_id: The storage's id of the RUNNING trial (``trial._trial_id`` of the trial
            returned by ``study.ask()``; not its number).
        monitor: The logged metric to report, e.g. ``"val_loss"``.
        mode: ``"min"`` if lower is better, ``"max"`` otherwise; must match the study's
            direction.
        prune: False to report without ever pruning.
        pruner: The study's pruner, by name (see `build_pruner`).
        pruner_args: That pruner's keyword arguments (as given to the search).
        result_dir: A folder where rank 0 writes ``result.json`` at the end of the fit.
        step_offset: Report epoch ``e`` at step ``step_offset + e``: lets several fits
            report to one trial without colliding (e.g. the folds of a cross-validation,
            which reports its running mean at steps ``0..k-1``: give fold ``f`` the offset
            ``k + f * max_epochs``).

    Examples:
        >>> reporter = TrialReporter("sqlite:///study.db", "digits", trial_id=3)
        >>> reporter.state_key  # doctest: +ELLIPSIS
        "TrialReporter{'study_name': 'digits', 'trial_id': 3, 'monitor': 'val_loss', ...}"
    """

    identity = ("study_name", "trial_id", "monitor", "step_offset")

    def __init__(
        self,
        storage: str,
        study_name: str,
        trial_id: int,
        monitor: str = "val_loss",
        mode: Literal["min", "max"] = "min",
        prune: bool = True,
        pruner: PrunerName = "median",
        pruner_args: dict[str, Any] | None = None,
        result_dir: str | Path | None = None,
        step_offset: int = 0,
    ) -> None:
        if not isinstance(storage, str) or "://" not in storage:
            raise config_error(
                "storage",
                storage,
                "Pass a database URL that every process of the fit can open, e.g. "
                "'journal:///runs/study/study.journal', 'sqlite:///runs/study/study.db' or "
                "'postgresql://user@host/db' (an "
                "in-memory study cannot be shared with the fit's processes).",
            )
        if not isinstance(study_name, str) or not study_name:
            raise config_error("study_name", study_name, "Pass the study's name.")
        non_negative_int(
            "trial_id", trial_id, "Pass the storage id of a RUNNING trial (an int >= 0)."
        )
        if not isinstance(monitor, str) or not monitor:
            raise config_error("monitor", monitor, "Pass the name of a logged metric.")
        if mode not in ("min", "max"):
            raise choice_error("mode", mode, ("min", "max"))
        flag("prune", prune)
        self._pruner_args = check_pruner(pruner, pruner_args)
        non_negative_int("step_offset", step_offset, "Pass an int >= 0.")
        if result_dir is not None and (not isinstance(result_dir, str | Path) or not result_dir):
            raise config_error("result_dir", result_dir, "Pass a folder path, or None.")
        self.storage = storage
        self.study_name = study_name
        self.trial_id = trial_id
        self.monitor = monitor
        self.mode = mode
        self.prune = prune
        self.pruner: PrunerName = pruner
        self.result_dir = Path(result_dir) if result_dir is not None else None
        self.step_offset = step_offset
        self.values: dict[int, float] = {}  # epoch -> the rank-averaged monitored value
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.last: float | None = None
        self.pruned_at_epoch: int | None = None
        self.epochs_run = 0
        self._trial: optuna.Trial | None = None  # live, rank 0 only, never pickled

    # ------------------------------------------------------------ state

    @property
    def pruned(self) -> bool:
        """Whether the pruner stopped this trial (the same on every rank)."""
        return self.pruned_at_epoch is not None

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "last": self.last,
            "pruned_at_epoch": self.pruned_at_epoch,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.values = {int(k): float(v) for k, v in state_dict["values"].items()}
        self.best = state_dict["best"]
        self.best_epoch = state_dict["best_epoch"]
        self.last = state_dict["last"]
        self.pruned_at_epoch = state_dict["pruned_at_epoch"]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_trial"] = None  # a live storage connection does not travel
        return state

    # ------------------------------------------------------------ setup

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        interval = trainer.val_check_interval
        if trainer.check_val_every_n_epoch is None or not (
            isinstance(interval, float) and interval == 1.0
        ):
            raise RecipeConfigError(
                f"TrialReporter reports once per epoch (the step of a pruner is the epoch), "
                f"but the Trainer validates by steps (val_check_interval={interval!r}, "
                f"check_val_every_n_epoch={trainer.check_val_every_n_epoch!r}). Use "
                f"val_check_interval=1.0 and check_val_every_n_epoch >= 1."
            )
        if trainer.limit_val_batches == 0:
            raise RecipeConfigError(
                "TrialReporter needs validation to report to the trial, but "
                "limit_val_batches=0 disables it. Allow validation batches."
            )
        error = self._connect() if trainer.is_global_zero else None
        error = helpers.broadcast(trainer, error)
        if error is not None:
            raise RecipeConfigError(error)

    def _connect(self) -> str | None:
        """Open the study and the trial (rank 0); return what is wrong, or None."""
        optuna = _optuna()
        where = f"study {self.study_name!r} in storage {redact_url(self.storage)!r}"
        try:
            backend = open_storage(self.storage)
            study = optuna.load_study(
                study_name=self.study_name,
                storage=backend,
                # The reporter never samples; a sampler with no before_trial side effect.
                sampler=optuna.samplers.RandomSampler(),
                pruner=build_pruner(self.pruner, **self._pruner_args),
            )
        except KeyError:
            return f"TrialReporter: there is no {where}. Create it first (tune does)."
        except Exception as err:  # any driver or URL error: say which storage failed
            return f"TrialReporter could not open {where}: {type(err).__name__}: {err}"
        if len(study.directions) != 1:
            return f"TrialReporter: {where} has several objectives; it reports one metric."
        direction = "min" if study.direction == optuna.study.StudyDirection.MINIMIZE else "max"
        if direction != self.mode:
            return (
                f"Invalid mode={self.mode!r}: {where} is set to "
                f"{'minimize' if direction == 'min' else 'maximize'}. Pass mode={direction!r}."
            )
        # Only the storage's public API: the trial's number, looked up back in our study.
        try:
            number = backend.get_trial_number_from_id(self.trial_id)
            study_id = backend.get_study_id_from_name(self.study_name)
            ours = backend.get_trial_id_from_study_id_trial_number(study_id, number)
        except KeyError:
            ours = None
        if ours != self.trial_id:
            return f"Invalid trial_id={self.trial_id!r}: no such trial in {where}."
        frozen = backend.get_trial(self.trial_id)
        if frozen.state != optuna.trial.TrialState.RUNNING:
            return (
                f"Invalid trial_id={self.trial_id!r}: trial {frozen.number} of {where} is "
                f"{frozen.state.name}, not RUNNING. Ask a new trial (study.ask())."
            )
        self._trial = optuna.trial.Trial(study, self.trial_id)
        return None

    # ------------------------------------------------------------ the decision

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Every condition below is the same on every rank, so all ranks reach the
        # collective calls together.
        if trainer.sanity_checking or self.pruned:
            return
        metric = trainer.callback_metrics.get(self.monitor)
        if metric is None:
            raise MissingMetricError(
                helpers.missing_metric_message(self.monitor, trainer, recipe="TrialReporter")
            )
        local = torch.as_tensor(metric, dtype=torch.float32).detach().to(pl_module.device)
        value = float(helpers.reduce_mean(trainer, local))  # once per epoch, not per step
        epoch = trainer.current_epoch
        decision: tuple[bool, str | None] = (False, None)
        if trainer.is_global_zero:
            decision = self._report(value, epoch)
        prune, error = helpers.broadcast(trainer, decision)
        if error is not None:
            raise TrialReportError(error)
        self.values[epoch] = value
        self.last = value
        if not math.isnan(value) and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        ):
            self.best, self.best_epoch = value, epoch
        if prune:
            self.pruned_at_epoch = epoch
            trainer.should_stop = True
            helpers.rank_zero_info(
                f"TrialReporter: trial {self.trial_id} of study {self.study_name!r} pruned "
                f"at epoch {epoch} ({self.monitor}={value:.6g}); every rank stops."
            )

    def _report(self, value: float, epoch: int) -> tuple[bool, str | None]:
        """Report on rank 0 and ask the pruner; errors are returned, to be raised by all."""
        if self._trial is None:
            return False, "TrialReporter: no open trial on rank 0 (setup did not run?)."
        try:
            self._trial.report(value, step=self.step_offset + epoch)
            return (self.prune and self._trial.should_prune()), None
        except Exception as err:
            return False, (
                f"TrialReporter could not report {self.monitor}={value} at epoch {epoch} to "
                f"trial {self.trial_id} of study {self.study_name!r} in "
                f"{redact_url(self.storage)!r}: {type(err).__name__}: {err}"
            )

    # ------------------------------------------------------------ the outcome

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.epochs_run = trainer.current_epoch
        if self.result_dir is not None and trainer.is_global_zero:
            self.result_dir.mkdir(parents=True, exist_ok=True)
            path = self.result_dir / RESULT_FILE
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.result(), indent=2))
            os.replace(tmp, path)  # a reader never sees half a file

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trial = None

    def result(self) -> dict[str, Any]:
        """What the fit reported: the payload of ``result.json``.

        Returns:
            ``value`` (the best monitored value, the one a search tells the study;
            ``None`` if nothing was reported), ``best``, ``best_epoch``, ``last``,
            ``pruned``, ``pruned_at_epoch``, ``epochs`` (epochs run), ``values``
            (epoch -> value, keys as strings; reported at ``step_offset + epoch``), and
            the trial's identity.
        """
        return {
            "study_name": self.study_name,
            "trial_id": self.trial_id,
            "monitor": self.monitor,
            "mode": self.mode,
            "value": self.best,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "last": self.last,
            "pruned": self.pruned,
            "pruned_at_epoch": self.pruned_at_epoch,
            "epochs": self.epochs_run,
            "values": {str(epoch): v for epoch, v in sorted(self.values.items())},
            "step_offset": self.step_offset,
        }
