"""L1, L2 and elastic-net penalties on parameters, and their gradients, fused.

Pure functions, no Lightning. The penalty of a set of parameters ``W`` is

    P(W) = l1 * sum |w| + l2 * sum w**2

(Keras' ``l1_l2(l1, l2)``: note the L2 term has no 1/2), so its gradient is
``l1 * sign(w) + 2 * l2 * w``. Both are computed with ``torch._foreach_*`` ops: one
kernel launch per op for the whole list, not one per parameter, and no host sync.
"""

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["add_penalty_grad_", "penalty_value"]


def penalty_value(params: Sequence[Tensor], l1: float, l2: float) -> Tensor:
    """``l1 * sum|w| + l2 * sum w**2`` over ``params``, as a 0-d tensor on their device.

    Args:
        params: Tensors on one device (empty: the value is 0 on the CPU).
        l1: L1 strength (>= 0).
        l2: L2 strength (>= 0).

    Returns:
        The penalty, fp32 or wider.

    Examples:
        >>> penalty_value([torch.tensor([1.0, -2.0]), torch.tensor([3.0])], l1=0.5, l2=0.1)
        tensor(4.4000)
    """
    if not params:
        return torch.zeros(())
    total = torch.zeros((), device=params[0].device, dtype=torch.float32)
    if l1:
        norms = torch._foreach_norm(list(params), 1)
        total = total + l1 * torch.stack(norms).float().sum()
    if l2:
        norms = torch._foreach_norm(list(params), 2)
        total = total + l2 * torch.stack(norms).float().pow(2).sum()
    return total


def add_penalty_grad_(
    params: Sequence[Tensor],
    grads: Sequence[Tensor],
    l1: float,
    l2: float,
    factor: float = 1.0,
    loss_scale: Tensor | None = None,
) -> None:
    """Add ``factor * loss_scale * dP/dw`` to each gradient, in place, without a host sync.

    Args:
        params: The penalised parameters.
        grads: Their gradients (same order, shapes and devices).
        l1: L1 strength.
        l2: L2 strength.
        factor: A host-side multiplier (``1 / accumulate_grad_batches`` under gradient
            accumulation, as the loss itself is divided).
        loss_scale: A 0-d tensor multiplier (an AMP GradScaler's scale), or None.

    Examples:
        >>> w = [torch.tensor([1.0, -2.0, 0.0])]
        >>> g = [torch.zeros(3)]
        >>> add_penalty_grad_(w, g, l1=0.5, l2=0.1)
        >>> g[0]
        tensor([ 0.7000, -0.9000,  0.0000])
    """
    if not params:
        return
    params, grads = list(params), list(grads)
    if loss_scale is None:
        if l2:
            torch._foreach_add_(grads, params, alpha=2.0 * l2 * factor)
        if l1:
            torch._foreach_add_(grads, torch._foreach_sign(params), alpha=l1 * factor)
        return
    terms: list[Tensor] | None = None
    if l2:
        terms = list(torch._foreach_mul(params, 2.0 * l2 * factor))
    if l1:
        signs = torch._foreach_sign(params)
        if terms is None:
            terms = list(torch._foreach_mul(signs, l1 * factor))
        else:
            torch._foreach_add_(terms, signs, alpha=l1 * factor)
    if terms is not None:
        torch._foreach_mul_(terms, loss_scale.to(terms[0].device, terms[0].dtype))
        torch._foreach_add_(grads, terms)
