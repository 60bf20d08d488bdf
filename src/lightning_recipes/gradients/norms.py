"""Fused gradient statistics: norms per tensor, per group and in total, on the device.

Pure functions, no Lightning. Every statistic is computed with ``torch._foreach_norm``
(one fused kernel per dtype/device on GPU, no Python loop issuing a kernel per tensor)
and returned as a tensor on the gradients' device, so callers decide when, if ever, to
pay the host sync of reading it.

Sharded gradients (FSDP, DTensor): pass the ``process_group`` the parameters are sharded
over. Each rank then holds a piece of every gradient; the p-th powers of the local norms
are summed over the group (maximum for p = inf) before the root is taken, which gives the
norm of the full, unsharded gradient on every rank.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "GradStats",
    "StepNorms",
    "combine_norms",
    "dense_grads",
    "grad_stats",
    "step_norms",
    "tensor_norms",
    "zero_fraction",
]


def _local(tensor: Tensor) -> Tensor:
    """The locally held part of a gradient: a DTensor's shard, a sparse tensor's values."""
    to_local = getattr(tensor, "to_local", None)  # DTensor, without importing it
    if callable(to_local):
        tensor = to_local()
    if tensor.is_sparse:
        tensor = tensor.coalesce().values()
    return tensor


def dense_grads(params: Iterable[Tensor]) -> tuple[list[Tensor], list[int]]:
    """Collect the gradients that exist, as dense local tensors.

    Args:
        params: Parameters; those whose ``.grad`` is None are skipped.

    Returns:
        ``(grads, positions)``: the local dense gradients, and the position in ``params``
        of the parameter each one belongs to.

    Examples:
        >>> import torch
        >>> a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
        >>> b.grad = torch.full((3,), 2.0)
        >>> grads, positions = dense_grads([a, b])
        >>> positions, grads[0].tolist()
        ([1], [2.0, 2.0, 2.0])
    """
    grads: list[Tensor] = []
    positions: list[int] = []
    for position, param in enumerate(params):
        if param.grad is not None:
            grads.append(_local(param.grad))
            positions.append(position)
    return grads, positions


def tensor_norms(tensors: Sequence[Tensor], norm_type: float = 2.0) -> Tensor:
    """The p-norm of each tensor, as one 1-D float32 tensor (fused, no host sync).

    Args:
        tensors: Tensors on one device.
        norm_type: p; ``math.inf`` gives max |x|, 0 counts non-zero entries.

    Returns:
        ``(len(tensors),)`` norms (empty for no tensors).

    Examples:
        >>> import torch
        >>> tensor_norms([torch.tensor([3.0, 4.0]), torch.tensor([-2.0])]).tolist()
        [5.0, 2.0]
    """
    if not tensors:
        return torch.zeros(0)
    norms = torch._foreach_norm(list(tensors), norm_type)
    return torch.stack([n.float() for n in norms]) if len(norms) > 1 else norms[0].float()[None]


def _all_reduce(value: Tensor, norm_type: float, process_group: Any) -> Tensor:
    if process_group is None:
        return value
    op = dist.ReduceOp.MAX if math.isinf(norm_type) else dist.ReduceOp.SUM
    dist.all_reduce(value, op=op, group=process_group)
    return value


def combine_norms(
    norms: Tensor,
    norm_type: float = 2.0,
    group_index: Tensor | None = None,
    num_groups: int = 1,
    process_group: Any = None,
) -> Tensor:
    """Combine per-tensor p-norms into the p-norm of their union, per group.

    The p-norm of a union of tensors is the p-th root of the sum of their norms to the
    p-th power (the maximum for p = inf), so groups and totals need no second pass over
    the gradients.

    Args:
        norms: ``(n,)`` per-tensor p-norms.
        norm_type: p (> 0, or inf).
        group_index: ``(n,)`` group of each tensor, in ``[0, num_groups)``; None puts
            every tensor in group 0.
        num_groups: Number of groups.
        process_group: Sum (max) the powers over this group first: shards to whole.

    Returns:
        ``(num_groups,)`` norms; a group with no tensors has norm 0.

    Examples:
        >>> import torch
        >>> combine_norms(torch.tensor([3.0, 4.0, 1.0]), 2.0, torch.tensor([0, 0, 1]), 2)
        tensor([5., 1.])
    """
    index = group_index if group_index is not None else torch.zeros_like(norms, dtype=torch.long)
    out = torch.zeros(num_groups, dtype=norms.dtype, device=norms.device)
    if math.isinf(norm_type):
        out = out.scatter_reduce(0, index, norms, reduce="amax", include_self=True)
        return _all_reduce(out, norm_type, process_group)
    out = out.index_add(0, index, norms.pow(norm_type))
    return _all_reduce(out, norm_type, process_group).pow(1.0 / norm_type)


def zero_fraction(tensors: Sequence[Tensor], process_group: Any = None) -> Tensor:
    """The share of entries that are exactly zero, over all tensors (NaN counts as non-zero).

    Args:
        tensors: Tensors on one device.
        process_group: Count over the shards held by this group's ranks.

    Returns:
        A 0-dim tensor in [0, 1] (0 for no tensors).

    Examples:
        >>> import torch
        >>> zero_fraction([torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])]).item()
        0.75
    """
    if not tensors:
        return torch.zeros(())
    nonzero = tensor_norms(tensors, 0.0).double().sum()
    total = torch.tensor(float(sum(t.numel() for t in tensors)), dtype=torch.float64)
    counts = torch.stack([nonzero, total.to(nonzero.device)])
    counts = _all_reduce(counts, 1.0, process_group)
    return (1.0 - counts[0] / counts[1].clamp_min(1.0)).float()


@dataclass(frozen=True)
class StepNorms:
    """The statistics needed at every step (to clip and to guard), from one fused pass.

    Attributes:
        per_tensor: ``(n,)`` p-norm of each gradient present (local shard).
        total: 0-dim p-norm of all gradients (whole, over the process group's shards).
        finite: 0-dim bool: no NaN or Inf anywhere (from ``total``: a norm that
            overflows float32 counts as non-finite, as in ``clip_grad_norm_``).
    """

    per_tensor: Tensor
    total: Tensor
    finite: Tensor


def step_norms(
    grads: Sequence[Tensor], norm_type: float = 2.0, process_group: Any = None
) -> StepNorms:
    """The per-tensor and total p-norms of the gradients, in one fused pass (no host sync).

    Not ``torch.nn.utils.get_total_norm``: that returns the total only, so the per-tensor
    norms (group norms, the first non-finite parameter) would cost a second pass over the
    gradients, and it takes the root before any sum over shards (wrong under FSDP).

    Args:
        grads: Dense gradients (see `dense_grads`) on one device.
        norm_type: p of the norms (> 0, or inf).
        process_group: Process group of sharded gradients (FSDP), else None.

    Returns:
        The norms, on the gradients' device.

    Examples:
        >>> import torch
        >>> norms = step_norms([torch.tensor([3.0, 0.0]), torch.tensor([4.0])])
        >>> norms.per_tensor.tolist(), norms.total.item(), norms.finite.item()
        ([3.0, 4.0], 5.0, True)
    """
    per_tensor = tensor_norms(grads, norm_type)
    if grads:
        per_tensor = per_tensor.to(grads[0].device)
    total = combine_norms(per_tensor, norm_type, None, 1, process_group)[0]
    return StepNorms(per_tensor=per_tensor, total=total, finite=torch.isfinite(total))


@dataclass(frozen=True)
class GradStats:
    """Gradient statistics of one step, every field a tensor on the gradients' device.

    Attributes:
        per_tensor: ``(n,)`` p-norm of each gradient present (local shard).
        groups: ``(num_groups,)`` p-norm of each group.
        total: 0-dim p-norm of all gradients.
        max_abs: 0-dim largest |entry| (NaN if any entry is NaN).
        zero_fraction: 0-dim share of exactly-zero entries.
        finite: 0-dim bool: no NaN or Inf anywhere (from ``total``: a norm that
            overflows float32 counts as non-finite, as in ``clip_grad_norm_``).
    """

    per_tensor: Tensor
    groups: Tensor
    total: Tensor
    max_abs: Tensor
    zero_fraction: Tensor
    finite: Tensor


def grad_stats(
    grads: Sequence[Tensor],
    norm_type: float = 2.0,
    group_index: Tensor | None = None,
    num_groups: int = 1,
    process_group: Any = None,
    norms: StepNorms | None = None,
) -> GradStats:
    """Compute every gradient statistic in three fused passes (p-norm, max, zero count).

    Args:
        grads: Dense gradients (see `dense_grads`) on one device.
        norm_type: p of the norms (> 0, or inf).
        group_index: ``(len(grads),)`` group of each gradient; None: one group.
        num_groups: Number of groups.
        process_group: Process group of sharded gradients (FSDP), else None.
        norms: What `step_norms` already returned for these gradients and ``norm_type``
            at this step: saves the p-norm pass.

    Returns:
        The statistics, on the gradients' device.

    Examples:
        >>> import torch
        >>> stats = grad_stats([torch.tensor([3.0, 0.0]), torch.tensor([4.0])])
        >>> stats.total.item(), stats.max_abs.item(), stats.zero_fraction.item()
        (5.0, 4.0, 0.3333333432674408)
    """
    if norms is None:
        norms = step_norms(grads, norm_type, process_group)
    per_tensor = norms.per_tensor
    groups = combine_norms(per_tensor, norm_type, group_index, num_groups, process_group)
    max_norms = tensor_norms(grads, math.inf).to(per_tensor.device)
    max_abs = combine_norms(max_norms, math.inf, None, 1, process_group)[0]
    return GradStats(
        per_tensor=per_tensor,
        groups=groups,
        total=norms.total,
        max_abs=max_abs,
        zero_fraction=zero_fraction(grads, process_group).to(per_tensor.device),
        finite=norms.finite,
    )
