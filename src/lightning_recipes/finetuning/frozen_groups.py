"""Freezing layer groups: no gradient for their parameters, their BatchNorm layers in eval mode.

A frozen BatchNorm layer neither uses the batch's statistics nor updates its running
ones. Once its group is unfrozen it trains as if never frozen: it takes the mode of its
parent module, so it follows the Trainer (train mode in training, eval in validation).
"""

from collections.abc import Sequence

from torch import nn

from lightning_recipes.finetuning.groups import LayerGroup

__all__ = ["GroupNorms", "find_norms", "freeze_below", "hold"]

_BatchNorm = nn.modules.batchnorm._BatchNorm

GroupNorms = list[list[tuple[nn.Module, nn.Module]]]
"""Per layer group, its BatchNorm layers, each with its parent module."""


def find_norms(model: nn.Module, groups: Sequence[LayerGroup]) -> GroupNorms:
    """The BatchNorm layers of each group, with the parent whose mode they take back.

    Args:
        model: The whole model (a layer without a parent in it gets ``model``).
        groups: The layer groups, bottom first.

    Returns:
        One list per group, in the order of ``groups``.

    Examples:
        >>> from lightning_recipes.finetuning.groups import layer_groups
        >>> net = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), nn.Linear(2, 1))
        >>> found = find_norms(net, layer_groups(net))
        >>> [[type(layer).__name__ for layer, _ in norms] for norms in found]
        [['BatchNorm1d'], []]
    """
    parent: dict[int, nn.Module] = {}
    for module in model.modules():
        for child in module.children():
            parent[id(child)] = module
    found: GroupNorms = []
    for group in groups:
        norms: list[tuple[nn.Module, nn.Module]] = []
        for module in group.modules:
            for layer in module.modules():
                if isinstance(layer, _BatchNorm):
                    norms.append((layer, parent.get(id(layer), model)))
        found.append(norms)
    return found


def freeze_below(
    groups: Sequence[LayerGroup],
    norms: GroupNorms,
    first_trainable: int,
    train_bn: bool,
    held: Sequence[nn.Module],
) -> list[nn.Module]:
    """Freeze the groups below ``first_trainable``, unfreeze the others.

    The BatchNorm layers no longer held get the mode of their parent back; the newly
    held ones are put in eval mode by `hold`, not here.

    Args:
        groups: The layer groups, bottom first.
        norms: From `find_norms`.
        first_trainable: The index of the lowest trainable group.
        train_bn: Let frozen BatchNorm layers update their statistics (then none is held).
        held: The layers held until now.

    Returns:
        The BatchNorm layers to hold in eval mode: those of the frozen groups (none if
        ``train_bn``).
    """
    for index, group in enumerate(groups):
        for param in group.params:
            param.requires_grad_(index >= first_trainable)
    now: list[nn.Module] = []
    was_held = {id(layer) for layer in held}
    for index, group_norms in enumerate(norms):
        for layer, parent in group_norms:
            if index < first_trainable and not train_bn:
                now.append(layer)
            elif id(layer) in was_held:
                # Unfrozen: back to the mode it would have had if never frozen.
                layer.train(parent.training)
    return now


def hold(held: Sequence[nn.Module]) -> None:
    """Put held BatchNorm layers back in eval mode (cheap: no tensor is touched).

    Args:
        held: From `freeze_below`.
    """
    for layer in held:
        layer.training = False
