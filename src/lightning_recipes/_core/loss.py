"""Where a recipe finds the module's loss object: one convention for every recipe.

ClassWeighting installs class weights in it, MixUp/CutMix/LabelSmoothing mix targets
through it, and AdversarialTraining attacks it, so all of them must find the same object.
"""

from torch import nn

from lightning_recipes.errors import RecipeConfigError

__all__ = ["LOSS_ATTRIBUTES", "find_loss", "loss_module"]

LOSS_ATTRIBUTES = ("loss_fn", "criterion", "loss")
"""Module attributes searched for the loss, in this order."""


def loss_module(module: nn.Module, loss_attr: str | None = None) -> tuple[nn.Module, str] | None:
    """The module's loss object and its attribute name, or None if there is none.

    Args:
        module: The LightningModule (or any module) holding the loss.
        loss_attr: The attribute to read; None searches `LOSS_ATTRIBUTES` in order.
    """
    for name in [loss_attr] if loss_attr else LOSS_ATTRIBUTES:
        loss = getattr(module, name, None)
        if isinstance(loss, nn.Module):
            return loss, name
    return None


def find_loss(
    module: nn.Module, loss_attr: str | None, recipe: str, use: str = ""
) -> tuple[nn.Module, str]:
    """Like `loss_module`, but a missing loss is an error that says how to fix it.

    Args:
        module: The module holding the loss.
        loss_attr: The attribute to read; None searches `LOSS_ATTRIBUTES`.
        recipe: The recipe's name, for the message.
        use: What the recipe does with the loss, for the message (" and mixes ...").

    Raises:
        RecipeConfigError: If no attribute holds an ``nn.Module``.
    """
    found = loss_module(module, loss_attr)
    if found is not None:
        return found
    names = [loss_attr] if loss_attr else list(LOSS_ATTRIBUTES)
    children = ", ".join(name for name, _ in module.named_children()) or "none"
    raise RecipeConfigError(
        f"{recipe} found no loss module in {type(module).__name__}: it looks for "
        f"{' / '.join(names)} (an nn.Module such as CrossEntropyLoss){use}. Child modules: "
        f"{children}. Store the loss as self.loss_fn = nn.CrossEntropyLoss() and call it in "
        "training_step, or pass loss_attr='<attribute>'."
    )
