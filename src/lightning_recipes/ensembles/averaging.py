"""WeightAverage: Lightning's WeightAveraging (SWA or EMA) with its known defects fixed."""

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor, nn
from torch.optim.swa_utils import update_bn
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes._contract import RecipeSummary
from lightning_recipes._validate import is_int, is_real
from lightning_recipes.errors import choice_error, config_error

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


class WeightAverage(WeightAveraging):
    """SWA or EMA of the weights, on Lightning's `WeightAveraging`, with three defects fixed.

    - ``kind="swa"`` (Izmailov et al. 2018): the equal-weight mean of the weights at the end
      of every epoch from ``start_epoch`` on. ``kind="ema"``: the exponential moving average
      with ``decay`` after every optimizer step from ``start_epoch`` on.
    - Fixed: until the average has started, validation runs on the live weights (Lightning
      validates on a never-updated copy of the initial weights, #21724), and at the end of
      training the live weights are kept (with a warning) instead of being replaced by that
      copy.
    - Fixed: at the end of training the BatchNorm statistics of the averaged weights are
      recomputed on the training data (``update_bn=True``; averaged running statistics do
      not belong to the averaged weights), mean-reduced over DDP ranks.
    - Fixed: the epoch of the last update is in the callback state, so a resumed SWA run
      does not update twice for one epoch.

    Sharded strategies are refused at ``setup`` (Lightning's averaging copies the whole
    model on every rank).

    Args:
        kind: ``"swa"`` or ``"ema"``.
        decay: EMA decay in (0, 1) (ignored by SWA).
        start_epoch: First (0-based) epoch whose weights enter the average.
        update_bn: Recompute BatchNorm statistics of the average at the end of training.

    Examples:
        >>> WeightAverage("ema", decay=0.99).kind
        'ema'
    """

    def __init__(
        self,
        kind: AverageKind = "ema",
        decay: float = 0.999,
        start_epoch: int = 0,
        update_bn: bool = True,
    ) -> None:
        if kind not in ("swa", "ema"):
            raise choice_error("kind", kind, ["swa", "ema"])
        if not is_real(decay) or not math.isfinite(decay) or not 0 < decay < 1:
            raise config_error("decay", decay, "Pass a number in (0, 1), e.g. 0.999.")
        if not is_int(start_epoch) or start_epoch < 0:
            raise config_error("start_epoch", start_epoch, "Pass a non-negative epoch.")
        if not isinstance(update_bn, bool):
            raise config_error("update_bn", update_bn, "Pass True or False.")
        kwargs: dict[str, Any] = {}
        if kind == "ema":
            kwargs["multi_avg_fn"] = _EMAUpdate(float(decay))
        super().__init__(device=None, use_buffers=kind == "ema", **kwargs)
        self.kind: AverageKind = kind
        self.decay = float(decay)
        self.start_epoch = start_epoch
        self.update_bn = update_bn
        self._epoch = 0
        self._swapped = False
        self.bn_updated = False
        self.kept_live_weights = False

    @property
    @override
    def state_key(self) -> str:
        """One checkpoint slot per configuration."""
        return self._generate_state_key(
            kind=self.kind, decay=self.decay, start_epoch=self.start_epoch
        )

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            helpers.refuse_sharded(
                trainer,
                recipe="WeightAverage",
                reason="it keeps a full copy of the model on every rank; use DDP.",
            )
        super().setup(trainer, pl_module, stage)

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
        self._swapped = self.started()
        if self._swapped:
            self._swap_models(pl_module)

    @override
    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._swapped:
            self._swap_models(pl_module)
            self._swapped = False

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.started():
            self.kept_live_weights = True
            helpers.rank_zero_warn(
                f"WeightAverage(start_epoch={self.start_epoch}) never updated its average "
                "(training ended first): the live weights are kept."
            )
            return
        self._copy_average_to_current(pl_module)
        if self.update_bn and any(isinstance(m, _NORMS) for m in pl_module.modules()):
            self._recompute_bn(trainer, pl_module)

    def _recompute_bn(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader = trainer.train_dataloader
        if loader is None:
            return
        mode = pl_module.training
        try:
            update_bn(loader, pl_module, device=pl_module.device)
        finally:
            pl_module.train(mode)
        if trainer.world_size > 1:
            for module in pl_module.modules():
                if isinstance(module, _NORMS) and module.running_mean is not None:
                    assert module.running_var is not None
                    module.running_mean.copy_(helpers.reduce_mean(trainer, module.running_mean))
                    module.running_var.copy_(helpers.reduce_mean(trainer, module.running_var))
        self.bn_updated = True

    def run_summary(self) -> RecipeSummary:
        """The kind of average, whether it started and whether BN statistics were redone."""
        facts: dict[str, Any] = {"kind": self.kind, "start epoch": self.start_epoch}
        if self.kind == "ema":
            facts["decay"] = self.decay
        facts["BatchNorm statistics recomputed"] = self.bn_updated
        notes = ["The average never started: live weights kept."] if self.kept_live_weights else []
        return RecipeSummary("Weight averaging", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "latest_update_epoch": self._latest_update_epoch}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._latest_update_epoch = int(state_dict.get("latest_update_epoch", -1))
