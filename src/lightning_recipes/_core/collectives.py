"""Values shared between ranks through the Trainer's strategy: one collective each.

Identity on one process; under DDP every rank gets the same result. Recipes reach these
through `lightning_recipes._core.trainer` (``helpers.reduce_sum`` ...).
"""

import sys
from typing import Literal, TypeVar

import torch
from lightning.pytorch import Trainer
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "all_ranks_agree",
    "broadcast",
    "gather",
    "match_rank_zero_buffers",
    "rank_zero_buffers",
    "reduce_mean",
    "reduce_sum",
    "release_process_group",
]

T = TypeVar("T")


def _reduce(trainer: Trainer, value: torch.Tensor, op: Literal["mean", "sum"]) -> torch.Tensor:
    if trainer.world_size == 1:
        return value
    return trainer.strategy.reduce(value, reduce_op=op)


def reduce_mean(trainer: Trainer, value: torch.Tensor) -> torch.Tensor:
    """Average a tensor over all ranks (identity on one process).

    Args:
        trainer: The running Trainer.
        value: A tensor on the module's device, the same shape on every rank.

    Returns:
        The mean over ranks, identical on every rank.
    """
    return _reduce(trainer, value, "mean")


def reduce_sum(trainer: Trainer, value: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all ranks (identity on one process).

    Args:
        trainer: The running Trainer.
        value: A tensor on the module's device, the same shape on every rank.

    Returns:
        The sum over ranks, identical on every rank.
    """
    return _reduce(trainer, value, "sum")


def gather(trainer: Trainer, value: torch.Tensor) -> torch.Tensor:
    """Every rank's copy of a tensor, stacked in rank order (one collective).

    Args:
        trainer: The running Trainer.
        value: A tensor on the module's device, the same shape on every rank.

    Returns:
        A ``(world_size, *value.shape)`` tensor, identical on every rank.
    """
    if trainer.world_size == 1:
        return value.unsqueeze(0)
    return trainer.strategy.all_gather(value).reshape(trainer.world_size, *value.shape)


def broadcast(trainer: Trainer, obj: T, src: int = 0) -> T:
    """Send ``obj`` from rank ``src`` to every rank, so all ranks act on one decision.

    Args:
        trainer: The running Trainer.
        obj: A tensor or picklable object.
        src: The global rank whose value wins.

    Returns:
        Rank ``src``'s ``obj`` on every rank.
    """
    if trainer.world_size == 1:
        return obj
    return trainer.strategy.broadcast(obj, src=src)


def all_ranks_agree(trainer: Trainer, decision: bool) -> bool:
    """Return True only if ``decision`` is True on every rank.

    Args:
        trainer: The running Trainer.
        decision: This rank's decision.

    Returns:
        The logical AND over ranks, identical on every rank.
    """
    if trainer.world_size == 1:
        return decision
    return bool(trainer.strategy.reduce_boolean_decision(decision, all=True))


def rank_zero_buffers(trainer: Trainer, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Rank 0's buffers of ``module`` by name, on every rank (one collective).

    DDP keeps the parameters equal on every rank, not the buffers: each rank's last
    forward updated its own BatchNorm running statistics (DDP sends rank 0's buffers only
    at the start of the next forward). On one process: the module's own buffers.
    """
    buffers = {name: value.detach().clone() for name, value in module.named_buffers()}
    return broadcast(trainer, buffers) if trainer.world_size > 1 else buffers


def match_rank_zero_buffers(trainer: Trainer, module: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers, as a DDP forward with ``broadcast_buffers`` does.

    A callback that swaps weights in for validation (a weight average) swaps the live
    buffers back afterwards, undoing the broadcast the validation forward made: without
    this, BatchNorm statistics would differ between ranks until the next training forward
    (observers such as snapshots would then disagree). A no-op on one process or when the
    DDP wrapper does not broadcast buffers.
    """
    wrapper = trainer.strategy.model
    if trainer.world_size == 1 or not isinstance(wrapper, DistributedDataParallel):
        return
    if not wrapper.broadcast_buffers:
        return
    for name, value in rank_zero_buffers(trainer, module).items():
        module.get_buffer(name).copy_(value)


def release_process_group() -> None:
    """Destroy the process group a DDP fit left behind, before the interpreter exits.

    Lightning keeps the default process group after fit (a later ``test`` reuses it).
    Left to interpreter shutdown, a gloo group's threads can be torn down while still
    joinable, which aborts a process whose fit succeeded ("terminate called without an
    active exception", status -6: seen once in CI, a pruned DDP trial run as `fit`).
    Destroying it is local to each rank: no collective, nothing to wait for.
    """
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        distributed.destroy_process_group()
