"""EarlyStopping: Lightning's callback, plus best weights, baseline, warm-up and DDP sync."""

from dataclasses import replace
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary, planned_change_epochs, validated_weights
from lightning_recipes._core.modes import resolve_mode
from lightning_recipes._core.recipe import Recipe
from lightning_recipes.errors import MissingMetricError
from lightning_recipes.stopping.checkpoint import (
    Restore,
    _holds_best_check,
    _load_checkpoint,
    matching_checkpoint,
)
from lightning_recipes.stopping.checks import _check_args, _check_restore_args
from lightning_recipes.stopping.rules import (
    DeltaMode,
    EarlyStoppingReason,
    StopRule,
    StopState,
    judge,
)

__all__ = ["EarlyStopping"]


class EarlyStopping(Recipe, LightningEarlyStopping):
    """Stop training when a monitored metric stops improving, and keep the best weights.

    A subclass of ``lightning.pytorch.callbacks.EarlyStopping``: the Trainer treats it as
    its early-stopping callback (``trainer.early_stopping_callback``, and its
    ``on_train_epoch_end`` runs after the LightningModule's, as for every monitoring
    callback). The same arguments with the same meaning and defaults, the same decisions
    and attributes (``wait_count``, ``stopped_epoch``, ``best_score``, ``stopping_reason``,
    ``stopping_reason_message``), the same state key (a checkpoint written with Lightning's
    class resumes with this one). On top:

    * ``restore_best_weights``: when fit ends (stopped early or at ``max_epochs``), the
      module holds the weights of the best check. They are kept as a CPU copy, or, when a
      ``ModelCheckpoint`` saves the same metric in the same mode, reloaded from its best
      checkpoint (no second copy in memory). When a weight average (`WeightAverage`)
      ran the validation, its weights are the ones kept: they are the ones that scored.
    * ``baseline``: the value to beat; checks that do not beat it count against patience.
    * ``start_from_epoch``: checks before this epoch are ignored (warm-up).
    * ``min_delta_mode="relative"``: ``min_delta`` is a fraction of the best value.
    * ``mode="auto"``: ``min`` for losses and errors, ``max`` for accuracy, F1, AUC...
      (the same name rule as `tune` and `cross_validate`). The default stays Lightning's
      ``"min"``; a mode that contradicts the metric's name (``EarlyStopping("val_acc")``,
      which would stop when the accuracy stops *falling*) is warned about.
    * Under DDP the monitored value is averaged over ranks before any decision (with a
      warning if it differed, i.e. it was logged without ``sync_dist=True``), so
      ``best_score``, ``wait_count`` and the decision are identical on every rank.
      Lightning's class decides on each rank's own value and keeps per-rank state.
    * When the check that reaches ``stopping_threshold`` beats the best, its weights are the
      ones kept and ``best_epoch`` is its epoch; ``best_score`` stays Lightning's (the best
      before that check).

    Args:
        monitor: The metric to watch (as logged with ``self.log``).
        min_delta: Smallest change that counts as an improvement (>= 0).
        patience: Checks without improvement before stopping. Checks happen at each
            validation (or each training epoch end, see ``check_on_train_epoch_end``).
        verbose: Log improvements and the stop.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (inferred from the metric's name).
        strict: Raise if the metric is missing; with False, warn once and skip the check.
        check_finite: Stop when the metric becomes NaN or infinite.
        stopping_threshold: Stop as soon as the metric is better than this.
        divergence_threshold: Stop as soon as the metric is worse than this.
        check_on_train_epoch_end: Check at the end of the training epoch instead of after
            validation; None picks as Lightning does (train epoch end when validation runs
            once per epoch).
        log_rank_zero_only: Log on rank 0 only.
        restore_best_weights: ``False``, ``True`` (reload from a ModelCheckpoint that can
            hold every best check, decided at setup, else keep a CPU copy), ``"copy"`` or
            ``"checkpoint"`` (refused at setup, with the reason, when no ModelCheckpoint can).
        baseline: The value the metric must beat.
        start_from_epoch: Ignore the checks of epochs before this one (epochs count from
            0); a missing metric is still reported at the first check.
        min_delta_mode: ``"absolute"`` or ``"relative"``.
        wait_for_unfreezing: When another recipe plans to change what trains (the
            `Freezer`'s unfreeze schedule), patience counts from the last change reached,
            and a patience stop waits until the last planned change (a non-finite value or
            a threshold still stops at once). ``False``: Lightning's plain rule.

    Attributes:
        best_epoch: Epoch of the best check (None before any improvement).
        best_step: Global step of the best check.
        restored_from: Where the best weights came from at the end (``"memory"``, a
            checkpoint path) or None if nothing was restored.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> stopper = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
        >>> trainer = Trainer(max_epochs=3, limit_train_batches=2, callbacks=[stopper],
        ...                   logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(Classifier(MLP(64, [16]), num_classes=10), DigitsDataModule())
        >>> stopper.restored_from, stopper.best_epoch is not None
        ('memory', True)
    """

    identity = ("monitor", "mode")  # Lightning's key: its checkpoints load
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "the weights are sharded across ranks. Use restore_best_weights=False with "
        "a ModelCheckpoint(monitor=...) and load its best_model_path after fit."
    )

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: Literal["min", "max", "auto"] = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
        *,
        restore_best_weights: bool | Restore = False,
        baseline: float | None = None,
        start_from_epoch: int = 0,
        min_delta_mode: DeltaMode = "absolute",
        wait_for_unfreezing: bool = True,
    ) -> None:
        flags = {"verbose": verbose, "strict": strict, "log_rank_zero_only": log_rank_zero_only,
                 "wait_for_unfreezing": wait_for_unfreezing}  # fmt: skip
        _check_args(monitor, mode, check_on_train_epoch_end, flags)
        resolved = resolve_mode(monitor, mode)
        rule = StopRule(
            mode=resolved,
            patience=patience,
            min_delta=min_delta,
            delta_mode=min_delta_mode,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            baseline=baseline,
        )
        _check_restore_args(restore_best_weights, start_from_epoch)
        super().__init__(
            monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=resolved,
            strict=strict,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            check_on_train_epoch_end=check_on_train_epoch_end,
            log_rank_zero_only=log_rank_zero_only,
        )
        self.rule = rule
        self.restore_best_weights = restore_best_weights
        self.baseline = baseline
        self.start_from_epoch = start_from_epoch
        self.wait_for_unfreezing = wait_for_unfreezing
        self.patience_reset_at: int | None = None  # the planned change patience counts from
        self.deferred_stops = 0  # patience stops held back until the last planned change
        self.min_delta_mode = min_delta_mode
        if baseline is not None:
            self.best_score = torch.tensor(float(baseline))
        self.best_epoch: int | None = None
        self.best_step: int | None = None
        self.restored_from: str | None = None
        self._best_weights: dict[str, Tensor] | None = None
        self._checkpoint: ModelCheckpoint | None = None
        # Set by each check: where it happens, and whether its weights became the best.
        self._where: tuple[int, int] = (0, 0)
        self._improved = False
        # The value of a best check that the ModelCheckpoint has not yet been seen to save.
        self._unconfirmed: float | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------ setup

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)  # resolves check_on_train_epoch_end
        if not self.restore_best_weights or stage != "fit":
            return
        self.check_strategy(trainer, recipe="EarlyStopping(restore_best_weights=...)")
        self._checkpoint, why_not = matching_checkpoint(
            trainer,
            monitor=self.monitor,
            mode=self.mode,
            restore=self.restore_best_weights,
            min_delta=self.rule.min_delta,
            start_from_epoch=self.start_from_epoch,
            on_train_epoch_end=bool(self._check_on_train_epoch_end),
        )
        if self._checkpoint is None and self.verbose:
            self._log_info(
                trainer,
                f"EarlyStopping: the best weights are kept in memory ({why_not}).",
                self.log_rank_zero_only,
            )

    # ------------------------------------------------------------ the check

    @override
    def _run_early_stopping_check(self, trainer: Trainer) -> None:
        """Lightning's check, on the value averaged over ranks, after any warm-up."""
        logs = trainer.callback_metrics
        if getattr(trainer, "fast_dev_run", False):  # disabled under fast_dev_run, as Lightning
            return
        if self.monitor not in logs:
            # Reported at the first check, also during the warm-up of start_from_epoch.
            self._report_missing(trainer)
            return
        if trainer.current_epoch < self.start_from_epoch:
            return
        current = self._synced_value(trainer, logs[self.monitor].squeeze())
        self._where = (trainer.current_epoch, trainer.global_step)
        self._improved = False
        changes = planned_change_epochs(trainer) if self.wait_for_unfreezing else []
        passed = [e for e in changes if e <= trainer.current_epoch]
        if passed and passed[-1] != self.patience_reset_at:
            # What trains changed (a planned unfreeze): patience counts from here.
            self.patience_reset_at = passed[-1]
            self.wait_count = 0
        should_stop, reason = self._evaluate_stopping_criteria(current)
        if (
            should_stop
            and self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED
            and changes
            and trainer.current_epoch < changes[-1]
        ):
            # Not in the middle of a planned unfreeze schedule: the stop waits for its end.
            should_stop = False
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            self.deferred_stops += 1
            reason = (
                f"{reason} Not stopping before the last planned unfreeze (epoch "
                f"{changes[-1]}): wait_for_unfreezing=True."
            )
        if self._improved:
            self._keep_best(trainer, trainer.lightning_module, float(current))
        # Every rank judged the same (averaged) value; Lightning's reduction keeps it certain.
        should_stop = trainer.strategy.reduce_boolean_decision(should_stop, all=False)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
        if reason and self.verbose:
            self._log_info(trainer, reason, self.log_rank_zero_only)

    @override
    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        """Apply `rules.judge` to one value and keep Lightning's attributes in step."""
        state = StopState(
            best=float(self.best_score),
            wait=self.wait_count,
            best_epoch=self.best_epoch,
            best_step=self.best_step,
        )
        epoch, step = self._where
        verdict = judge(self.rule, state, float(current), epoch=epoch, step=step,
                        monitor=self.monitor)  # fmt: skip
        if verdict.state.best != state.best:
            self.best_score = current  # as Lightning: the logged tensor itself
        self.wait_count = verdict.state.wait
        self.best_epoch, self.best_step = verdict.state.best_epoch, verdict.state.best_step
        self._improved = verdict.improved
        if verdict.stop:
            self.stopping_reason = verdict.reason
        return verdict.stop, verdict.message

    def _report_missing(self, trainer: Trainer) -> None:
        message = helpers.missing_metric_message(self.monitor, trainer, recipe="EarlyStopping")
        if self.strict:
            raise MissingMetricError(message)
        if "missing" not in self._warned:
            self._warned.add("missing")
            helpers.rank_zero_warn(message + " (strict=False: the check is skipped.)")

    def _synced_value(self, trainer: Trainer, value: Tensor) -> Tensor:
        """The mean of the value over ranks (one gather; the value itself on one process)."""
        if trainer.world_size == 1:
            return value
        local = value.detach().float().reshape(()).to(trainer.strategy.root_device)
        values = helpers.gather(trainer, local)
        if "unsynced" not in self._warned and not bool(torch.all(values == values[0])):
            self._warned.add("unsynced")
            helpers.rank_zero_warn(
                f"EarlyStopping: {self.monitor!r} differs across ranks "
                f"({[round(float(v), 6) for v in values]}): it was logged without "
                "sync_dist=True. The decision uses its mean over ranks."
            )
        return values.mean()

    # ------------------------------------------------------------ the best weights

    def _keep_best(self, trainer: Trainer, pl_module: LightningModule, value: float) -> None:
        if not self.restore_best_weights:
            return
        if self._checkpoint is None:
            self._copy_weights(trainer, pl_module)
        else:
            # The ModelCheckpoint runs after this callback: confirm before the weights change.
            self._unconfirmed = value

    def _copy_weights(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The weights that scored: a weight average's, when it ran the validation.
        self._best_weights = validated_weights(trainer, pl_module)

    def _confirm_checkpoint(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Check that the ModelCheckpoint saved the last best check; else copy it now.

        Runs before the next optimizer step (or at the end of fit), so the weights are still
        those of that check.
        """
        if self._unconfirmed is None or self._checkpoint is None:
            return
        score = self._checkpoint.best_model_score
        saved = score is not None and float(score) == self._unconfirmed
        if helpers.all_ranks_agree(trainer, saved):
            self._unconfirmed = None
            return
        helpers.rank_zero_warn(
            f"EarlyStopping: the ModelCheckpoint did not save this callback's best check "
            f"({self.monitor} = {self._unconfirmed}, epoch {self.best_epoch}; its best: "
            f"{None if score is None else float(score)}), e.g. because the metric is not "
            "logged with sync_dist=True under DDP. The best weights are kept in memory from "
            "now on."
        )
        self._unconfirmed = None
        self._checkpoint = None
        self._copy_weights(trainer, pl_module)

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._unconfirmed is not None:
            self._confirm_checkpoint(trainer, pl_module)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.restore_best_weights:
            return
        self._confirm_checkpoint(trainer, pl_module)
        if self.best_epoch is None:
            helpers.rank_zero_warn(
                f"EarlyStopping: {self.monitor!r} never improved"
                f"{' on the baseline ' + str(self.baseline) if self.baseline is not None else ''}"
                "; the weights of the last epoch are kept."
            )
            return
        if self._best_weights is not None:
            pl_module.load_state_dict(self._best_weights)
            self.restored_from = "memory"
        elif self._checkpoint is not None:
            if not self._restore_from_checkpoint(trainer, pl_module, self._checkpoint):
                return
        else:
            helpers.rank_zero_warn(
                f"EarlyStopping: the best weights (epoch {self.best_epoch}) are not "
                "available: the run resumed from a checkpoint written without them (e.g. by "
                "Lightning's EarlyStopping). The weights of the last epoch are kept."
            )
            return
        if self.verbose:
            self._log_info(
                trainer,
                f"Restored the weights of epoch {self.best_epoch} from {self.restored_from}.",
                self.log_rank_zero_only,
            )

    def _restore_from_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: ModelCheckpoint
    ) -> bool:
        trainer.strategy.barrier()  # rank 0 has finished writing the file
        path = checkpoint.best_model_path
        saved = _load_checkpoint(path) if path else None
        if not _holds_best_check(saved, path, (self.best_epoch, self.best_step)):
            return False
        pl_module.load_state_dict(saved["state_dict"])  # the weights only
        self.restored_from = path
        return True

    def restores_weights_at_end(self) -> bool:
        """Whether the best weights are put back at the end of fit (the contract's question)."""
        return bool(self.restore_best_weights)

    @override
    def run_summary(self) -> RecipeSummary:
        """Best and stopped epoch, why, and whether the best weights were restored."""
        best = float(self.best_score)
        facts: dict[str, Any] = {
            "monitor": self.monitor,
            "mode": self.mode,
            "best value": best if best == best and abs(best) != float("inf") else None,
            "best epoch": self.best_epoch,
            "stopped epoch": self.stopped_epoch or None,
            "reason": self.stopping_reason.name.lower(),
            "weights restored from": self.restored_from if self.restore_best_weights else None,
        }
        notes = []
        if self.deferred_stops:
            notes.append(
                f"{self.deferred_stops} patience stop(s) waited for the end of the planned "
                "unfreeze schedule (wait_for_unfreezing=True)."
            )
        if self.stopping_reason_message:
            notes.append(self.stopping_reason_message)
        return RecipeSummary("Early stopping", facts=facts, notes=notes)

    # ------------------------------------------------------------ state

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "best_epoch": self.best_epoch,
            "best_step": self.best_step,
            "best_weights": self._best_weights,
            "patience_reset_at": self.patience_reset_at,
            "deferred_stops": self.deferred_stops,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Also accepts the state of Lightning's EarlyStopping (no best_* entries).
        super().load_state_dict(state_dict)
        self.best_epoch = state_dict.get("best_epoch")
        self.best_step = state_dict.get("best_step")
        self.rule = replace(self.rule, patience=int(self.patience))
        self._best_weights = state_dict.get("best_weights")
        self.patience_reset_at = state_dict.get("patience_reset_at")
        self.deferred_stops = int(state_dict.get("deferred_stops", 0))
