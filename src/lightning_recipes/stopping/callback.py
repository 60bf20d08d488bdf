"""EarlyStopping: Lightning's callback, plus best weights, baseline, warm-up and DDP sync."""

import logging
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes.errors import MissingMetricError, choice_error, config_error
from lightning_recipes.stopping.rules import (
    DeltaMode,
    StopRule,
    StopState,
    infer_mode,
    initial_state,
    judge,
)

__all__ = ["EarlyStopping"]

Restore = Literal["copy", "checkpoint"]

# Lightning's own EarlyStopping logs here; messages land where users already look.
_log = logging.getLogger("lightning.pytorch.callbacks.early_stopping")


class EarlyStopping(Callback):
    """Stop training when a monitored metric stops improving, and keep the best weights.

    A drop-in replacement for ``lightning.pytorch.callbacks.EarlyStopping``: the same
    arguments with the same meaning and defaults, the same attributes (``wait_count``,
    ``stopped_epoch``, ``best_score``, ``stopping_reason``, ``stopping_reason_message``),
    the same state key (a checkpoint written with Lightning's class resumes with this one).
    On top:

    * ``restore_best_weights``: when fit ends (stopped early or at ``max_epochs``), the
      module holds the weights of the best check. They are kept as a CPU copy, or, when a
      ``ModelCheckpoint`` saves the same metric in the same mode, reloaded from its best
      checkpoint (no second copy in memory).
    * ``baseline``: the value to beat; checks that do not beat it count against patience.
    * ``start_from_epoch``: checks before this epoch are ignored (warm-up).
    * ``min_delta_mode="relative"``: ``min_delta`` is a fraction of the best value.
    * ``mode="auto"``: ``min`` for losses and errors, ``max`` for accuracy, F1, AUC...
    * Under DDP the monitored value is averaged over ranks before any decision (with a
      warning if it differed, i.e. it was logged without ``sync_dist=True``), so
      ``best_score``, ``wait_count`` and the decision are identical on every rank.
      Lightning's class decides on each rank's own value and keeps per-rank state.
    * One deliberate difference: the check that reaches ``stopping_threshold`` becomes the
      best one when it improves (Lightning stops without updating ``best_score``).

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
        restore_best_weights: ``False``, ``True`` (reload from a matching ModelCheckpoint
            when there is one, else keep a CPU copy), ``"copy"`` or ``"checkpoint"``.
        baseline: The value the metric must beat.
        start_from_epoch: Ignore the checks of earlier epochs.
        min_delta_mode: ``"absolute"`` or ``"relative"``.

    Attributes:
        best_epoch: Epoch of the best check (None before any improvement).
        best_step: Global step of the best check.
        restored_from: Where the best weights came from at the end (``"memory"``, a
            checkpoint path) or None if nothing was restored.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import Classifier, mlp
        >>> stopper = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
        >>> trainer = Trainer(max_epochs=3, limit_train_batches=2, callbacks=[stopper],
        ...                   logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(Classifier(mlp(64, [16]), num_classes=10), DigitsDataModule())
        >>> stopper.restored_from, stopper.best_epoch is not None
        ('memory', True)
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
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
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise config_error("monitor", monitor, "Pass the name of a logged metric.")
        if mode not in ("min", "max", "auto"):
            raise choice_error("mode", mode, ("min", "max", "auto"))
        resolved = infer_mode(monitor) if mode == "auto" else mode
        self.rule = StopRule(
            mode=resolved,  # type: ignore[arg-type]
            patience=patience,
            min_delta=min_delta,
            delta_mode=min_delta_mode,
            check_finite=check_finite,
            stopping_threshold=stopping_threshold,
            divergence_threshold=divergence_threshold,
            baseline=baseline,
        )
        if restore_best_weights not in (False, True, "copy", "checkpoint"):
            choices = ("False", "True", "copy", "checkpoint")
            raise choice_error("restore_best_weights", restore_best_weights, choices)
        if (
            isinstance(start_from_epoch, bool)
            or not isinstance(start_from_epoch, int)
            or (start_from_epoch < 0)
        ):
            raise config_error("start_from_epoch", start_from_epoch, "Pass an epoch number >= 0.")
        self.monitor = monitor
        self.mode: str = resolved
        self.min_delta = min_delta
        self.patience = patience
        self.verbose = verbose
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self.log_rank_zero_only = log_rank_zero_only
        self.restore_best_weights = restore_best_weights
        self.baseline = baseline
        self.start_from_epoch = start_from_epoch
        self.min_delta_mode = min_delta_mode
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self._state: StopState = initial_state(self.rule)
        self.stopped_epoch = 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None
        self.restored_from: str | None = None
        self._best_weights: dict[str, Tensor] | None = None
        self._checkpoint: ModelCheckpoint | None = None
        self._warned: set[str] = set()

    # ------------------------------------------------------------ Lightning's attributes

    @property
    def wait_count(self) -> int:
        """Checks since the last improvement."""
        return self._state.wait

    @wait_count.setter
    def wait_count(self, value: int) -> None:
        self._state = StopState(self._state.best, int(value), *self._best_where())

    @property
    def best_score(self) -> Tensor:
        """The best value so far, as a tensor (the baseline or +-inf before any)."""
        return torch.tensor(self._state.best)

    @best_score.setter
    def best_score(self, value: Tensor | float) -> None:
        self._state = StopState(float(value), self._state.wait, *self._best_where())

    @property
    def best_epoch(self) -> int | None:
        """Epoch of the best check (None before any improvement)."""
        return self._state.best_epoch

    @property
    def best_step(self) -> int | None:
        """Global step of the best check (None before any improvement)."""
        return self._state.best_step

    def _best_where(self) -> tuple[int | None, int | None]:
        return self._state.best_epoch, self._state.best_step

    @property
    @override
    def state_key(self) -> str:
        # The same key as Lightning's EarlyStopping, so its checkpoints resume with this class.
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    # ------------------------------------------------------------ hooks

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = (
                trainer.val_check_interval == 1.0 and trainer.check_val_every_n_epoch == 1
            )
        if not self.restore_best_weights or stage != "fit":
            return
        helpers.refuse_sharded(
            trainer,
            recipe="EarlyStopping(restore_best_weights=...)",
            reason="the weights are sharded across ranks. Use restore_best_weights=False with "
            "a ModelCheckpoint(monitor=...) and load its best_model_path after fit.",
        )
        self._checkpoint = self._matching_checkpoint(trainer)
        if self.restore_best_weights == "checkpoint" and self._checkpoint is None:
            raise config_error(
                "restore_best_weights",
                "checkpoint",
                f"No ModelCheckpoint saves {self.monitor!r} in mode {self.mode!r} every check "
                "with save_top_k != 0 (and min_delta=0, start_from_epoch=0 here). Add one, or "
                "pass restore_best_weights=True to keep a copy in memory.",
            )

    def _matching_checkpoint(self, trainer: Trainer) -> ModelCheckpoint | None:
        """A ModelCheckpoint whose best checkpoint is always our best check, if any."""
        if self.restore_best_weights == "copy" or self.min_delta or self.start_from_epoch:
            return None
        for callback in trainer.checkpoint_callbacks:
            if (
                isinstance(callback, ModelCheckpoint)
                and callback.monitor == self.monitor
                and callback.mode == self.mode
                and callback.save_top_k != 0
                and helpers.checkpoint_saves_every_epoch(callback)
            ):
                return callback
        return None

    def _should_skip_check(self, trainer: Trainer) -> bool:
        return trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._check(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._check_on_train_epoch_end and not self._should_skip_check(trainer):
            self._check(trainer, pl_module)

    def _monitored_value(self, trainer: Trainer) -> float | None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            message = helpers.missing_metric_message(self.monitor, trainer, recipe="EarlyStopping")
            if self.strict:
                raise MissingMetricError(message)
            if "missing" not in self._warned:
                self._warned.add("missing")
                helpers.rank_zero_warn(message + " (strict=False: the check is skipped.)")
            return None
        local = value.detach().float().reshape(()).to(trainer.strategy.root_device)
        values = helpers.gather(trainer, local)
        if "unsynced" not in self._warned and not bool(torch.all(values == values[0])):
            self._warned.add("unsynced")
            helpers.rank_zero_warn(
                f"EarlyStopping: {self.monitor!r} differs across ranks "
                f"({[round(float(v), 6) for v in values]}): it was logged without "
                "sync_dist=True. The decision uses its mean over ranks."
            )
        return float(values.mean())

    def _check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if getattr(trainer, "fast_dev_run", False) or trainer.current_epoch < self.start_from_epoch:
            return
        current = self._monitored_value(trainer)
        if current is None:
            return
        verdict = judge(
            self.rule,
            self._state,
            current,
            epoch=trainer.current_epoch,
            step=trainer.global_step,
            monitor=self.monitor,
        )
        self._state = verdict.state
        if verdict.improved and self.restore_best_weights and self._checkpoint is None:
            self._best_weights = {
                key: value.detach().to("cpu", copy=True)
                for key, value in pl_module.state_dict().items()
            }
        # Every rank judged the same (averaged) value; the broadcast makes it certain.
        stop = bool(helpers.broadcast(trainer, verdict.stop))
        if stop:
            trainer.should_stop = True
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason = verdict.reason
            self.stopping_reason_message = verdict.message
        if self.verbose and verdict.message:
            self._log(trainer, verdict.message)

    def _log(self, trainer: Trainer, message: str) -> None:
        if trainer.world_size > 1:
            if self.log_rank_zero_only and trainer.global_rank != 0:
                return
            message = f"[rank: {trainer.global_rank}] {message}"
        _log.info(message)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.restore_best_weights:
            return
        if self._state.best_epoch is None:
            helpers.rank_zero_warn(
                f"EarlyStopping: {self.monitor!r} never improved"
                f"{' on the baseline ' + str(self.baseline) if self.baseline is not None else ''}"
                "; the weights of the last epoch are kept."
            )
            return
        if self._checkpoint is not None:
            self._restore_from_checkpoint(trainer, pl_module, self._checkpoint)
        elif self._best_weights is not None:
            pl_module.load_state_dict(self._best_weights)
            self.restored_from = "memory"
        else:
            helpers.rank_zero_warn(
                f"EarlyStopping: the best weights (epoch {self._state.best_epoch}) are not "
                "available: the run resumed from a checkpoint written without them (e.g. by "
                "Lightning's EarlyStopping). The weights of the last epoch are kept."
            )
            return
        if self.verbose:
            self._log(trainer, f"Restored the weights of epoch {self._state.best_epoch} "
                      f"({self.monitor} = {self._state.best:.4g}).")  # fmt: skip

    def _restore_from_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: ModelCheckpoint
    ) -> None:
        trainer.strategy.barrier()  # rank 0 has finished writing the file
        path = checkpoint.best_model_path
        saved = torch.load(path, map_location="cpu", weights_only=False) if path else None
        where = (saved.get("epoch"), saved.get("global_step")) if saved else None
        if saved is None or where != self._best_where():
            helpers.rank_zero_warn(
                f"EarlyStopping: the ModelCheckpoint's best ({path or 'none'}, epoch/step "
                f"{where}) is not this callback's best check (epoch/step {self._best_where()}); "
                "the weights of the last epoch are kept. Pass restore_best_weights='copy'."
            )
            return
        pl_module.load_state_dict(saved["state_dict"])
        self.restored_from = path

    # ------------------------------------------------------------ state

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
            "best_epoch": self._state.best_epoch,
            "best_step": self._state.best_step,
            "best_weights": self._best_weights,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Also accepts the state of Lightning's EarlyStopping (no best_* entries).
        self._state = StopState(
            best=float(state_dict["best_score"]),
            wait=int(state_dict["wait_count"]),
            best_epoch=state_dict.get("best_epoch"),
            best_step=state_dict.get("best_step"),
        )
        self.stopped_epoch = int(state_dict["stopped_epoch"])
        self.patience = int(state_dict["patience"])
        self.rule = StopRule(**{**self.rule.__dict__, "patience": self.patience})
        self.stopping_reason = EarlyStoppingReason(state_dict.get("stopping_reason", 0))
        self.stopping_reason_message = state_dict.get("stopping_reason_message")
        self._best_weights = state_dict.get("best_weights")
