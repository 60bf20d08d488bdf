"""Where `ClassWeighting` puts the weights in a loss object: which buffer, installed how."""

import torch
from torch import nn

from lightning_recipes._core.loss_path import check_loss_module
from lightning_recipes.imbalance.labels import LabelKind
from lightning_recipes.imbalance.losses import FocalLoss

__all__ = ["install_weights", "weight_target"]


def weight_target(loss: nn.Module, attr: str) -> tuple[str, LabelKind] | None:
    """Which buffer of the loss receives the weights, and for which kind of labels.

    None for a custom loss module: the loss functions it calls on the labels are weighted
    by the loss path. torch's other losses (MSE, ...) are refused.

    Args:
        loss: The module's loss object.
        attr: Its attribute name, for the error.

    Returns:
        ``(buffer name, kind of labels)``: ``("weight", "multiclass")`` for
        ``CrossEntropyLoss``, ``NLLLoss`` and a multi-class `FocalLoss`,
        ``("pos_weight", "binary")`` for ``BCEWithLogitsLoss``, ``("weight", "binary")``
        for a binary/multi-label `FocalLoss`; None for a custom loss module.

    Raises:
        RecipeConfigError: For one of torch's losses that cannot be weighted.

    Examples:
        >>> from torch import nn
        >>> weight_target(nn.BCEWithLogitsLoss(), "loss_fn")
        ('pos_weight', 'binary')
    """
    if isinstance(loss, FocalLoss):
        return "weight", "multiclass" if loss.task == "multiclass" else "binary"
    kind = check_loss_module(loss, attr, "ClassWeighting", weighting=True)
    if kind is None:
        return None
    return ("pos_weight", "binary") if kind == "binary_logits" else ("weight", "multiclass")


def install_weights(loss: nn.Module, name: str, weights: torch.Tensor) -> None:
    """Replace ``loss.<name>`` by a non-persistent buffer holding ``weights``.

    Args:
        loss: The loss object.
        name: The buffer: ``"weight"`` or ``"pos_weight"`` (see `weight_target`).
        weights: The weights, on the module's device.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> loss = nn.CrossEntropyLoss()
        >>> install_weights(loss, "weight", torch.tensor([1.0, 3.0]))
        >>> loss.weight.tolist(), "weight" in loss.state_dict()
        ([1.0, 3.0], False)
    """
    if hasattr(loss, name):
        delattr(loss, name)
    # Non-persistent: the model's state_dict keeps its shape whether or not the callback
    # ran; the weights are restored from the callback's own state on resume.
    loss.register_buffer(name, weights, persistent=False)
