"""WeightAverage: Lightning's WeightAveraging (SWA or EMA) with its known defects fixed."""

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary, weights_restored_at_end
from lightning_recipes._core.module_modes import restored_modes
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, is_real, non_negative_int
from lightning_recipes.averaging.ema import ema_decay_for, ema_horizon
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error

__all__ = ["AverageKind", "WeightAverage"]

AverageKind = Literal["swa", "ema"]

_NORMS = (nn.modules.batchnorm._BatchNorm,)


class _EMAUpdate:
    """torch's ``get_ema_multi_avg_fn`` as a picklable object.

    A closure cannot be pickled, and a callback must pickle (``ddp_spawn``, deepcopy).
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: list[Tensor], current: list[Tensor], _: Tensor | int) -> None:
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - self.decay)
        else:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(a * self.decay + c * (1 - self.decay))


class WeightAverage(Recipe, WeightAveraging):
    """SWA or EMA of the weights, on Lightning's `WeightAveraging`, with its defects fixed.

    - ``kind="swa"`` (Izmailov et al. 2018): the equal-weight mean of the weights at the end
      of every epoch from ``start_epoch`` on. ``kind="ema"``: the exponential moving average
      with ``decay`` after every optimizer step from ``start_epoch`` on. EMA averages the
      buffers (BatchNorm statistics) along; SWA, as torch's ``AveragedModel`` does, keeps
      the live model's buffers of its last update until they are recomputed at the end.
    - The EMA's horizon is ``1 / (1 - decay)`` steps, and its first update is the starting
      weights. By default (``decay=None``) the decay is chosen when training starts from the
      number of steps the average will see (`ema_decay_for`: a horizon of a tenth of them,
      2 to 1000 steps; ``decay_used`` holds it), so a short run is not averaged back to
      its first weights: a fixed 0.999 over a 60-step run leaves 94% of the average on
      them. An explicit ``decay`` is used as given, with a warning naming the numbers when
      its horizon is longer than the steps the run will average.
    - Until the average has started, validation runs on the live weights (Lightning
      validates on a never-updated copy of the initial weights, #21724), checkpoints hold
      the live weights (Lightning writes that copy into ``state_dict``, so a "best"
      checkpoint of those epochs is the initial model), and a run that ends before the
      start keeps the live weights, with a warning.
    - At the end of training the BatchNorm statistics of the averaged weights are
      recomputed on the training data (``update_bn=True``; averaged running statistics do
      not belong to the averaged weights), mean-reduced over DDP ranks.
    - With `EarlyStopping(restore_best_weights=...)`: the best weights it keeps are the
      averaged ones when the average ran that validation, and at the end of fit it sets
      the final weights (the best validated, exactly as scored), whatever the callback
      order. A checkpoint saved after fit holds the module's final weights.
    - Resume: the epoch of the last update is in the callback state, so a resumed SWA run
      does not update twice for one epoch. ``trainer.validate``/``test`` after fit use the
      module's weights, never a swap, and with ``ckpt_path`` the checkpoint's averaged
      weights (Lightning loads that epoch's live weights over them).

    Refused at ``setup``: sharded strategies (the average is a full copy on every rank) and
    a second weight average in the same Trainer (two swaps would nest).

    Args:
        kind: ``"swa"`` or ``"ema"``.
        decay: EMA decay in (0, 1), or None (the default) to choose it from the run's
            length (ignored by SWA).
        start_epoch: First (0-based) epoch whose weights enter the average.
        update_bn: Recompute BatchNorm statistics of the average at the end of training.

    Examples:
        >>> WeightAverage("ema", decay=0.99).kind
        'ema'
        >>> WeightAverage().decay is None  # chosen from the run's length at fit start
        True
    """

    identity = ("kind", "decay", "start_epoch")
    refused_strategies = helpers.SHARDED
    refusal_reason = "it keeps a full copy of the model on every rank; use DDP."

    def __init__(
        self,
        kind: AverageKind = "ema",
        decay: float | None = None,
        start_epoch: int = 0,
        update_bn: bool = True,
    ) -> None:
        if kind not in ("swa", "ema"):
            raise choice_error("kind", kind, ["swa", "ema"])
        if decay is not None and (
            not is_real(decay) or not math.isfinite(decay) or not 0 < decay < 1
        ):
            raise config_error(
                "decay", decay, "Pass a number in (0, 1), e.g. 0.999, or None (from the run)."
            )
        non_negative_int("start_epoch", start_epoch, "Pass a non-negative epoch.")
        flag("update_bn", update_bn)
        kwargs: dict[str, Any] = {}
        # The decay is set when training starts (decay=None: from the run's length).
        self._ema = _EMAUpdate(ema_decay_for(math.inf) if decay is None else float(decay))
        if kind == "ema":
            kwargs["multi_avg_fn"] = self._ema
        super().__init__(device=None, use_buffers=kind == "ema", **kwargs)
        self.kind: AverageKind = kind
        self.decay = None if decay is None else float(decay)
        self.decay_used: float | None = None
        self.start_epoch = start_epoch
        self.update_bn = update_bn
        self._epoch = 0
        self._swapped = False
        self.bn_updated = False
        self.kept_live_weights = False
        self.final_weights_by: list[str] = []
        self._finished = False
        self._validated: dict[str, Tensor] | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self.check_strategy(trainer)
            others = [
                type(c).__name__
                for c in helpers.trainer_callbacks(trainer)
                if isinstance(c, WeightAveraging) and c is not self
            ]
            if others:
                raise RecipeConfigError(
                    f"WeightAverage(kind={self.kind!r}) shares the Trainer with another "
                    f"weight average ({', '.join(others)}): each swaps its weights in for "
                    "validation and copies them out at the end, so they would overwrite each "
                    "other. Keep one."
                )
            self._finished = False
            self._validated = None
            self.final_weights_by = []
            self.kept_live_weights = False
            self.bn_updated = False
        super().setup(trainer, pl_module, stage)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Before the first update, once the training data is loaded (no second load).
        if self.kind != "ema":
            return
        steps = _averaged_steps(trainer, self.start_epoch)
        if self.decay is None:
            self._ema.decay = ema_decay_for(steps)
        elif ema_horizon(self.decay) > steps:
            left = self.decay**steps
            helpers.rank_zero_warn(
                f"WeightAverage(decay={self.decay:g}) averages over about "
                f"{ema_horizon(self.decay):.0f} optimizer steps (1 / (1 - decay)), but this "
                f"run updates the average only {steps:.0f} times (from epoch "
                f"{self.start_epoch}): {left:.0%} of the final average is still the weights "
                f"it started from. Pass decay=None to choose it from the run's length (here "
                f"{ema_decay_for(steps):.4g}), or a decay of at most {1 - 1 / steps:.4g}."
            )
        self.decay_used = self._ema.decay

    @override
    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if self.kind == "ema":
            return step_idx is not None and self._epoch >= self.start_epoch
        return epoch_idx is not None and epoch_idx >= self.start_epoch

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch = trainer.current_epoch

    def started(self) -> bool:
        """Whether the average holds at least one update (one host sync; not per step)."""
        model = self._average_model
        return model is not None and bool(model.n_averaged > 0)

    @override
    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Only inside fit: after it, the module holds the final weights (maybe restored).
        self._swapped = trainer.state.fn == TrainerFn.FITTING and self.started()
        if self._swapped:
            self._swap_models(pl_module)

    @override
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = None
            if self._swapped and weights_restored_at_end(trainer, besides=self):
                # Someone keeps "the best weights": these are the ones that scored.
                self._validated = {
                    k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()
                }
        if self._swapped:
            self._swap_models(pl_module)
            self._swapped = False
            helpers.match_rank_zero_buffers(trainer, pl_module)

    def validated_weights(self) -> dict[str, Tensor] | None:
        """The averaged weights the last validation ran on, if it ran on them (contract).

        Kept (as a CPU copy, once per validation) only when another callback restores
        weights at the end of fit; None otherwise, and when the live weights were validated.
        """
        return self._validated

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finished = True
        restorers = weights_restored_at_end(trainer, besides=self)
        if restorers:
            # Their final weights win whatever the callback order (docs/combining.md).
            self.final_weights_by = restorers
            return
        if not self.started():
            self.kept_live_weights = True
            helpers.rank_zero_warn(
                f"WeightAverage(start_epoch={self.start_epoch}) never updated its average "
                "(training ended first): the live weights are kept."
            )
            return
        self._copy_average_to_current(pl_module)
        # Each rank averaged its own buffers (BatchNorm statistics drift between DDP ranks
        # between forwards): every rank ends with rank 0's, or recomputed ones below.
        helpers.match_rank_zero_buffers(trainer, pl_module)
        if self.update_bn and any(isinstance(m, _NORMS) for m in pl_module.modules()):
            self._recompute_bn(trainer, pl_module)

    @override
    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._finished or self._average_model is None:
            return  # after fit the module holds the final weights: save those
        if self.started():
            super().on_save_checkpoint(trainer, pl_module, checkpoint)
            return
        # Not started: the average is a stale copy of the initial weights, so the
        # checkpoint's weights stay the live ones, in Lightning's layout for resuming.
        checkpoint["current_model_state"] = checkpoint["state_dict"]
        checkpoint["averaging_state"] = {
            name: value
            for name, value in self._average_model.state_dict().items()
            if not name.startswith("module.")
        }

    def _recompute_bn(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader = trainer.train_dataloader
        if loader is None:
            return
        batches = helpers.progress(
            trainer,
            loader,
            "WeightAverage: BatchNorm statistics of the average",
            total=len(loader) if hasattr(loader, "__len__") else None,
        )
        with restored_modes(pl_module):  # update_bn trains every submodule: a frozen BN too
            update_bn(batches, pl_module, device=pl_module.device)
        if trainer.world_size > 1:
            for module in pl_module.modules():
                if isinstance(module, _NORMS) and module.running_mean is not None:
                    assert module.running_var is not None
                    module.running_mean.copy_(helpers.reduce_mean(trainer, module.running_mean))
                    module.running_var.copy_(helpers.reduce_mean(trainer, module.running_var))
        self.bn_updated = True

    @override
    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            # validate/test/predict(ckpt_path=...): the module already holds the
            # checkpoint's state_dict, the weights that were validated. Lightning would
            # load the live weights of that epoch over them (current_model_state).
            return
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    @override
    def run_summary(self) -> RecipeSummary:
        """The kind of average, whether it started and what set the final weights."""
        facts: dict[str, Any] = {"kind": self.kind, "start epoch": self.start_epoch}
        if self.kind == "ema":
            facts["decay"] = self.decay_used if self.decay_used is not None else self.decay
            if self.decay is None:
                facts["decay"] = f"{facts['decay']} (from the run's length)"
        facts["BatchNorm statistics recomputed"] = self.bn_updated
        facts["final weights"] = (
            f"set by {', '.join(self.final_weights_by)}" if self.final_weights_by
            else "live (the average never started)" if self.kept_live_weights
            else "the average"
        )  # fmt: skip
        notes = ["The average never started: live weights kept."] if self.kept_live_weights else []
        if self.final_weights_by:
            notes.append(
                f"{', '.join(self.final_weights_by)} restored the best validated weights at the "
                "end (the averaged ones when the average ran that validation); the final "
                "average was not copied in."
            )
        return RecipeSummary("Weight averaging", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "latest_update_epoch": self._latest_update_epoch}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._latest_update_epoch = int(state_dict.get("latest_update_epoch", -1))


def _averaged_steps(trainer: Trainer, start_epoch: int) -> float:
    """The optimizer steps of this fit from ``start_epoch`` on (``inf`` when unbounded)."""
    total = float(trainer.estimated_stepping_batches)
    if not math.isfinite(total) or start_epoch == 0:
        return total
    batches = float(trainer.num_training_batches)
    if not math.isfinite(batches):
        return total
    per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
    return max(total - start_epoch * per_epoch, 0.0)
