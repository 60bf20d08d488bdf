"""The parameters `GradientMonitor` watches: their names, groups, and the optimizer of each.

Host-side bookkeeping, no Lightning: at every step the monitor asks which parameters the
stepping optimizer owns and which of them hold a gradient, and gets the group and position
index tensors of those gradients; both answers are cached (per optimizer layout, per set of
positions and device), so a step issues no kernel for them once they are built.
"""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from lightning_recipes.gradients.groups import GroupBy, parameter_groups

__all__ = ["ParameterLayout", "optimizer_index"]


def optimizer_index(optimizers: Sequence[Optimizer], optimizer: Optimizer) -> int:
    """The index of ``optimizer`` among the Trainer's ``optimizers`` (0 when not found).

    Args:
        optimizers: ``trainer.optimizers``.
        optimizer: The optimizer that steps, possibly wrapped in a ``LightningOptimizer``.

    Examples:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.zeros(1))
        >>> a, b = torch.optim.SGD([w], lr=0.1), torch.optim.SGD([w], lr=0.2)
        >>> optimizer_index([a, b], b)
        1
    """
    inner = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer's torch one
    for index, candidate in enumerate(optimizers):
        if candidate is inner or candidate is optimizer:
            return index
    return 0


class ParameterLayout:
    """A module's parameters in order, the group of each, and the ones each optimizer steps.

    Args:
        named_parameters: ``module.named_parameters()`` as a list; empty before fit start.
        groups: How to group them (see `parameter_groups`).

    Attributes:
        names: The parameters' names.
        params: The parameters, in the same order (a position is an index into both).
        group_names: The groups, in order of first appearance.
        group_of: The group index of each parameter.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> layout = ParameterLayout(list(net.named_parameters()), "layer")
        >>> head = torch.optim.SGD(net[1].parameters(), lr=0.1)
        >>> layout.group_names, layout.optimizer_positions(head)
        (['0', '1'], [2, 3])
        >>> net[1].weight.grad = torch.ones(1, 2)
        >>> layout.with_gradient(head)
        [2]
    """

    def __init__(
        self,
        named_parameters: Sequence[tuple[str, nn.Parameter]] = (),
        groups: GroupBy | Mapping[str, Sequence[str]] = "none",
    ) -> None:
        named = list(named_parameters)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.group_names, self.group_of = parameter_groups(named, groups)
        # Positions in `params` of each optimizer's parameters (host side, no kernels).
        self._position = {id(p): i for i, p in enumerate(self.params)}
        self._optimizer_cache: dict[int, tuple[tuple[int, ...], list[int]]] = {}
        self._index_cache: dict[tuple[int, ...], tuple[Tensor, Tensor]] = {}

    def optimizer_positions(self, optimizer: Optimizer) -> list[int]:
        """Positions (in `params`) of the parameters this optimizer steps, cached."""
        groups = optimizer.param_groups
        layout = tuple(len(group["params"]) for group in groups)
        cached = self._optimizer_cache.get(id(optimizer))
        if cached is None or cached[0] != layout:
            positions = sorted(
                {
                    self._position[id(p)]
                    for group in groups
                    for p in group["params"]
                    if id(p) in self._position
                }
            )
            cached = (layout, positions)
            self._optimizer_cache[id(optimizer)] = cached
        return cached[1]

    def with_gradient(self, optimizer: Optimizer) -> list[int]:
        """Positions of this optimizer's parameters that require a gradient and have one.

        Under manual optimization with several optimizers (a GAN), the other network's
        gradients are stale at this optimizer's step. Frozen parameters
        (``requires_grad=False``) may hold a stale gradient too: left out.
        """
        return [
            i
            for i in self.optimizer_positions(optimizer)
            if self.params[i].requires_grad and self.params[i].grad is not None
        ]

    def indices(self, positions: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
        """Group index and parameter index of each present gradient, cached per layout."""
        key = tuple(positions)
        cached = self._index_cache.get(key)
        if cached is None or cached[0].device != device:
            group = torch.tensor([self.group_of[i] for i in positions], device=device)
            cached = (group, torch.tensor(positions, device=device))
            self._index_cache[key] = cached
        return cached

    def missing_groups(
        self, optimizer: Optimizer, present: set[int]
    ) -> tuple[list[str], list[str]]:
        """The groups without a gradient at this optimizer's step.

        Args:
            optimizer: The optimizer that steps.
            present: Indices of the groups with a gradient at this step.

        Returns:
            ``(frozen, absent)``: every group whose parameters all have
            ``requires_grad=False``, and this optimizer's trainable groups without any
            gradient this step (unused ones), in group order.
        """
        trainable = [False] * len(self.group_names)
        for param, group in zip(self.params, self.group_of, strict=True):
            trainable[group] = trainable[group] or param.requires_grad
        frozen = [name for g, name in enumerate(self.group_names) if not trainable[g]]
        owned = {self.group_of[i] for i in self.optimizer_positions(optimizer)}
        absent = [self.group_names[g] for g in sorted(owned - present) if trainable[g]]
        return frozen, absent
