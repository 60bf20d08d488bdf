"""The range-test sweep itself: train a throwaway copy of the module while the LR grows.

Lightning's ``lr_find`` runs the real fit loop for the sweep, then reloads a checkpoint
and resets loop counters, which reaches deep into Trainer internals and breaks when it
runs after the first epoch (Lightning #4846). Here the sweep never touches the real run:
it trains a deep copy of the module and its optimizer (state included) with the Trainer's
own data, device transfer, precision context, gradient accumulation and clipping, under
a preserved random state. The module, optimizer, schedulers, loop progress, logged
metrics and RNG streams of the run are therefore exactly as they were, by construction.
The cost is one extra copy of the weights and optimizer state in memory while it runs.

Under DDP the copy is not wrapped in DistributedDataParallel, so this module averages
the gradients over ranks itself (one all-reduce of the flattened gradients per step) and
records the loss averaged over ranks: every rank sees the same curve and stops at the
same step.
"""

import copy
import math
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.loss_path import weighted_training_loss
from lightning_recipes._core.optim import group_ratios
from lightning_recipes._core.rng import dataloader_generators, preserved_rng
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.lr.suggest import MIN_POINTS

__all__ = ["Sweep", "sweep_lrs", "run_sweep"]

Floats = npt.NDArray[np.float64]


def sweep_lrs(min_lr: float, max_lr: float, num_steps: int, mode: str = "exponential") -> Floats:
    """The learning rates of a sweep, one per step, from ``min_lr`` to ``max_lr`` inclusive.

    Args:
        min_lr: First learning rate, positive.
        max_lr: Last learning rate, above ``min_lr``.
        num_steps: Number of steps, at least `MIN_POINTS`.
        mode: ``"exponential"`` (evenly spaced in log10(lr), the default and the right
            choice for a range spanning decades) or ``"linear"``.

    Returns:
        The learning rates.

    Raises:
        RecipeConfigError: On a bad range, step count or mode.

    Examples:
        >>> sweep_lrs(1e-4, 1e-1, 10).round(6)[[0, 3, 9]].tolist()
        [0.0001, 0.001, 0.1]
    """
    if not (_real(min_lr) and 0 < min_lr < math.inf):
        raise config_error("min_lr", min_lr, "Pass a positive, finite learning rate, e.g. 1e-6.")
    if not (_real(max_lr) and min_lr < max_lr < math.inf):
        raise config_error(
            "max_lr", max_lr, f"Pass a learning rate above min_lr={min_lr}, e.g. {min_lr * 1e6:g}."
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < MIN_POINTS:
        raise config_error(
            "num_steps",
            num_steps,
            f"Pass an integer of at least {MIN_POINTS}: the suggestions need {MIN_POINTS} "
            "points (100 is a good default).",
        )
    if mode == "exponential":
        return np.geomspace(min_lr, max_lr, num_steps)
    if mode == "linear":
        return np.linspace(min_lr, max_lr, num_steps)
    raise config_error("mode", mode, "Pass 'exponential' or 'linear'.")


def _real(value: object) -> bool:
    return isinstance(value, float | int) and not isinstance(value, bool)


@dataclass
class Sweep:
    """The raw outcome of `run_sweep`.

    Attributes:
        lrs: The learning rates applied, one per completed step.
        losses: The loss of each step, averaged over micro-batches and ranks.
        stopped_early: ``"diverged"``, ``"non-finite loss"`` or ``None``.
    """

    lrs: list[float]
    losses: list[float]
    stopped_early: str | None


def _batches(loader: Any) -> Iterator[Any]:
    """Batches of the training loader, starting over when it is exhausted."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RecipeConfigError("The training dataloader is empty: the LR finder has no data.")


def _step_loss(output: Any) -> Tensor | None:
    """The loss of a ``training_step`` output (a tensor, a dict with "loss", or None)."""
    if isinstance(output, Tensor):
        return output
    loss = output.get("loss") if isinstance(output, dict) else None
    if isinstance(loss, Tensor):
        return loss
    if output is None:
        return None
    raise RecipeConfigError(
        "training_step returned neither a loss tensor, a dict with a 'loss' tensor, nor None "
        f"(got {type(output).__name__}); the LR finder needs the loss."
    )


def _discard_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``self.log`` on the sweep's copy: its values must not reach the run."""


def _make_probe(trainer: Trainer, pl_module: LightningModule) -> tuple[LightningModule, Any]:
    """Deep copies of the module and its optimizer, sharing nothing with the originals."""
    # One deepcopy call for both, so the optimizer copy refers to the module copy's
    # parameters (the shared memo maps each parameter once) and carries the same state.
    probe, optimizer = copy.deepcopy((pl_module, trainer.optimizers[0]))
    # LightningModule.__getstate__ drops the trainer reference; put it back so that user
    # code reading self.trainer in training_step still works.
    probe.trainer = trainer
    # The copy's self.log must not feed the real run's logged metrics (the copy is thrown
    # away after the sweep): silence it on this private instance only.
    vars(probe)["log"] = _discard_log
    vars(probe)["log_dict"] = _discard_log
    return probe, optimizer


def _sync_gradients(trainer: Trainer, params: list[Tensor]) -> None:
    """Average gradients over ranks, as DistributedDataParallel would (missing ones as 0)."""
    if trainer.world_size == 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = helpers.reduce_mean(trainer, torch.cat([g.reshape(-1) for g in grads]))
    offset = 0
    for param in params:
        size = param.numel()
        param.grad = flat[offset : offset + size].view_as(param).clone()
        offset += size


def _clip(trainer: Trainer, params: list[Tensor]) -> None:
    """Apply the Trainer's gradient clipping settings, as the real steps do."""
    value = trainer.gradient_clip_val
    if not value:
        return
    if trainer.gradient_clip_algorithm == "value":
        torch.nn.utils.clip_grad_value_(params, float(value))
    else:
        torch.nn.utils.clip_grad_norm_(params, float(value))


def run_sweep(
    trainer: Trainer,
    pl_module: LightningModule,
    lrs: Floats,
    *,
    diverge_threshold: float | None = 4.0,
    beta: float = 0.98,
    unfreeze: Collection[str] = (),
) -> Sweep:
    """Train a copy of ``pl_module`` for one optimizer step per learning rate.

    Each step processes ``trainer.accumulate_grad_batches`` batches of the training
    dataloader (cycled if it is shorter than the sweep), backpropagates each loss divided
    by that number exactly as training does, averages the gradients over ranks, applies
    the Trainer's gradient clipping and takes one optimizer step. Every param group gets
    the swept rate times its ratio to the optimizer's reference rate, so discriminative
    rates keep their ratios. The recorded loss is not divided by the accumulation (it is
    the mean over the micro-batches and ranks), so the curve does not depend on it.

    The sweep stops at the first non-finite loss or once the smoothed loss exceeds
    ``diverge_threshold`` times the lowest smoothed loss so far.

    Args:
        trainer: The Trainer, set up for fitting (``trainer.train_dataloader`` ready).
        pl_module: The module; it is not modified.
        lrs: The learning rates to apply, from `sweep_lrs`.
        diverge_threshold: The divergence factor (``None``: never stop early).
        beta: The EMA factor of the divergence test.
        unfreeze: Names of frozen parameters to train in the copy (the parameters a planned
            unfreeze will make trainable, so the rate found fits what will train).

    Returns:
        The recorded curve.

    Raises:
        RecipeConfigError: If the module uses manual optimization, has no optimizer, or
            the Trainer has no training dataloader.
    """
    if not pl_module.automatic_optimization:
        raise RecipeConfigError(
            "The LR finder needs automatic optimization: a module with "
            "automatic_optimization=False steps its own optimizers inside training_step, so "
            "the finder cannot set their learning rate per step."
        )
    if len(trainer.optimizers) != 1:
        raise RecipeConfigError(
            f"The LR finder needs exactly one optimizer, found {len(trainer.optimizers)}: "
            "return one from configure_optimizers."
        )
    loader = trainer.train_dataloader
    if loader is None:
        raise RecipeConfigError("The Trainer has no training dataloader for the LR finder.")

    recorded_lrs: list[float] = []
    losses: list[float] = []
    stopped: str | None = None
    accumulate = trainer.accumulate_grad_batches
    with preserved_rng(dataloader_generators(loader)):
        probe, optimizer = _make_probe(trainer, pl_module)
        for name, param in probe.named_parameters():
            if name in unfreeze:
                param.requires_grad_(True)
        ratios = group_ratios(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        trainable = [p for p in params if p.requires_grad]
        scaler = _grad_scaler(trainer)
        batches = _batches(loader)
        average, best = 0.0, math.inf
        steps = helpers.progress(trainer, enumerate(lrs), "LRFinder: range test", len(lrs))
        for step, lr in steps:
            for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
                group["lr"] = float(lr) * ratio
            total = torch.zeros((), device=pl_module.device)
            counted = 0
            for micro in range(accumulate):
                batch = trainer.strategy.batch_to_device(next(batches))
                with (
                    trainer.precision_plugin.train_step_context(),
                    weighted_training_loss(pl_module, probe, batch),
                ):
                    loss = _step_loss(probe.training_step(batch, step * accumulate + micro))
                if loss is None:
                    continue
                scaled = loss / accumulate
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                total = total + loss.detach().float()
                counted += 1
            _sync_gradients(trainer, trainable)
            if scaler is not None:
                scaler.unscale_(optimizer)
            _clip(trainer, trainable)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            mean = total / counted if counted else torch.full_like(total, math.nan)
            value = float(helpers.reduce_mean(trainer, mean).item())
            recorded_lrs.append(float(lr))
            losses.append(value)
            if not math.isfinite(value):
                stopped = "non-finite loss"
                break
            average = beta * average + (1 - beta) * value
            smoothed = average / (1 - beta ** (step + 1))
            best = min(best, smoothed)
            if diverge_threshold is not None and _diverged(smoothed, best, diverge_threshold):
                stopped = "diverged"
                break
        del probe, optimizer
    return Sweep(recorded_lrs, losses, stopped)


def _diverged(smoothed: float, best: float, threshold: float) -> bool:
    """Whether the smoothed loss rose above ``threshold`` times the best (sign-safe)."""
    return smoothed - best > (threshold - 1.0) * abs(best)


def _grad_scaler(trainer: Trainer) -> Any:
    """A fresh GradScaler when the run uses fp16 loss scaling, else None."""
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None:
        return None
    return torch.amp.GradScaler(device=trainer.strategy.root_device.type)
