"""A module's train/eval modes, changed for a while and given back submodule by submodule.

``module.train(mode)`` sets every submodule to one mode; a model whose submodules hold
different modes (a BatchNorm kept in eval by `Freezer`, a user's frozen encoder) would lose
them. Every recipe that changes modes for a while (gradient checks, attribution, attacks,
LSUV's measuring passes, the BatchNorm statistics of an averaged model) goes through
`restored_modes`, so each submodule gets its own mode back, also on errors.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["evaluation_mode", "restored_modes"]


@contextmanager
def restored_modes(module: nn.Module) -> Iterator[nn.Module]:
    """Within the block the modes may change; after it, each submodule has its own back.

    Args:
        module: The model.

    Yields:
        The same module.

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        >>> _ = net[1].eval()  # a frozen BatchNorm
        >>> with restored_modes(net):
        ...     _ = net.train()
        >>> net.training, net[1].training
        (True, False)
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode with gradients enabled; restore every submodule's mode.

    Inside Lightning's ``validate``/``test``/``predict`` the Trainer runs under
    ``torch.inference_mode``, where autograd cannot work; this context leaves it. Each
    submodule's own ``training`` flag is restored afterwards, also on exceptions.

    Args:
        module: The model.

    Yields:
        The same module, in eval mode.

    Examples:
        >>> net = nn.Linear(2, 1)
        >>> with torch.inference_mode(), evaluation_mode(net):
        ...     net(torch.ones(1, 2, requires_grad=True)).sum().backward()
        >>> net.training, net.weight.grad is not None
        (True, True)
    """
    with restored_modes(module), torch.inference_mode(False), torch.enable_grad():
        module.eval()
        yield module
