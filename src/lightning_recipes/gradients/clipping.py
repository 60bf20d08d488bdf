"""Gradient clipping in place, without host syncs: by total norm, by value, adaptive (AGC).

Pure functions on lists of gradients. None reads a value back to the host: the clip
coefficient stays a device tensor, so clipping costs no synchronisation on a GPU.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["adaptive_clip_", "clip_by_norm_", "clip_by_value_", "unitwise_norm", "zero_if_"]


def clip_by_norm_(grads: Sequence[Tensor], total_norm: Tensor, max_norm: float) -> Tensor:
    """Scale gradients in place so that their total norm is at most ``max_norm``.

    Args:
        grads: The gradients to scale.
        total_norm: Their current total norm (0-dim tensor, e.g. from `grad_stats`).
        max_norm: The norm not to exceed.

    Returns:
        0-dim bool tensor: whether the gradients were scaled down.

    Examples:
        >>> import torch
        >>> g = [torch.tensor([3.0, 4.0])]
        >>> clip_by_norm_(g, torch.tensor(5.0), 1.0).item(), round(g[0].norm().item(), 4)
        (True, 1.0)
    """
    coefficient = (max_norm / (total_norm + 1e-6)).clamp(max=1.0)
    if grads:
        torch._foreach_mul_(list(grads), coefficient.to(grads[0].device))
    return total_norm > max_norm


def clip_by_value_(grads: Sequence[Tensor], max_value: float) -> None:
    """Clamp every gradient entry in place to ``[-max_value, max_value]``.

    Args:
        grads: The gradients to clamp.
        max_value: The bound.

    Examples:
        >>> import torch
        >>> g = [torch.tensor([-3.0, 0.5, 2.0])]
        >>> clip_by_value_(g, 1.0); g[0].tolist()
        [-1.0, 0.5, 1.0]
    """
    if grads:
        torch._foreach_clamp_min_(list(grads), -max_value)
        torch._foreach_clamp_max_(list(grads), max_value)


def unitwise_norm(tensor: Tensor) -> Tensor:
    """L2 norm per output unit: over every dim but the first for matrices and kernels.

    Vectors and scalars (biases, norm gains) count as one unit. Used by AGC.

    Args:
        tensor: A parameter or its gradient.

    Returns:
        A tensor broadcastable against ``tensor``.
    """
    dims = tuple(range(1, tensor.ndim)) if tensor.ndim > 1 else None
    norm: Tensor = torch.linalg.vector_norm(tensor, 2, dim=dims, keepdim=tensor.ndim > 1)
    return norm


def adaptive_clip_(
    params: Sequence[Tensor], grads: Sequence[Tensor], clip_factor: float, eps: float = 1e-3
) -> Tensor:
    """Adaptive gradient clipping (Brock et al. 2021, NFNets), unit-wise, in place.

    Each unit's gradient is scaled down to at most ``clip_factor`` times the norm of its
    weights (the weights' norm floored at ``eps``, so zero-initialised units can still
    learn): large relative updates are clipped, small ones untouched. One loop over
    parameters, but no host sync.

    Args:
        params: The parameters, aligned with ``grads``.
        grads: Their gradients, clipped in place.
        clip_factor: Maximum ratio of gradient norm to weight norm per unit (e.g. 0.01).
        eps: Floor of the weight norm.

    Returns:
        0-dim bool tensor: whether any unit was clipped.

    Examples:
        >>> import torch
        >>> w, g = torch.ones(1, 4), torch.full((1, 4), 10.0)
        >>> adaptive_clip_([w], [g], clip_factor=0.1).item(), round(g.norm().item(), 4)
        (True, 0.2)
    """
    clipped = torch.zeros((), dtype=torch.bool, device=grads[0].device if grads else None)
    for param, grad in zip(params, grads, strict=True):
        max_norm = unitwise_norm(param.detach()).clamp_min(eps) * clip_factor
        grad_norm = unitwise_norm(grad)
        too_big = grad_norm > max_norm
        grad.mul_(torch.where(too_big, max_norm / grad_norm.clamp_min(1e-6), 1.0))
        clipped |= too_big.any()
    return clipped


def zero_if_(grads: Sequence[Tensor], condition: Tensor) -> None:
    """Zero every gradient in place where the 0-dim bool ``condition`` holds (no host sync).

    Overwrites NaN and Inf too (multiplying by zero would keep them), so a step whose
    gradients are non-finite leaves no NaN behind.

    Args:
        grads: The gradients.
        condition: 0-dim bool tensor on the gradients' device.

    Examples:
        >>> import torch
        >>> g = [torch.tensor([float("nan"), 1.0])]
        >>> zero_if_(g, torch.tensor(True)); g[0].tolist()
        [0.0, 0.0]
    """
    for grad in grads:
        grad.masked_fill_(condition, 0.0)
