"""Where a recipe finds the module's loss object: one convention for every recipe.

ClassWeighting installs class weights in it, MixUp/CutMix/LabelSmoothing mix targets
through it, and AdversarialTraining attacks it, so all of them must find the same object.
"""

from collections.abc import Callable
from typing import Literal

from torch import Tensor, nn

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["LOSS_ATTRIBUTES", "attack_loss", "find_loss", "loss_module"]

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


def optional_loss_module(module: nn.Module, loss_attr: str | None) -> tuple[nn.Module, str] | None:
    """`loss_module` for a recipe that also works on a functional loss (the loss path's door).

    None when ``loss_attr`` is None and the module holds no loss object (``training_step``
    calls ``F.cross_entropy`` itself); a ``loss_attr`` that names no ``nn.Module`` is refused.

    Raises:
        RecipeConfigError: If ``loss_attr`` names no ``nn.Module`` attribute.
    """
    found = loss_module(module, loss_attr)
    if found is None and loss_attr is not None:
        raise config_error(
            "loss_attr",
            loss_attr,
            f"{type(module).__name__} has no nn.Module attribute of that name. Pass the "
            "attribute holding the loss, or leave loss_attr=None when training_step calls "
            "F.cross_entropy (or builds the loss) itself.",
        )
    return found


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


def attack_loss(
    module: nn.Module, purpose: Literal["training", "evaluation"]
) -> tuple[Callable[[Tensor, Tensor], Tensor], str]:
    """The loss an adversarial attack on ``module`` increases, and what it is, in words.

    One policy for every recipe that attacks. In training (`AdversarialTraining`), the
    module's own loss module (`loss_module`: class weights that ClassWeighting installed
    apply), else cross-entropy: the loss of a module that calls ``F.cross_entropy`` in its
    ``training_step``. In evaluation (`RobustnessEvaluation`), always cross-entropy, as
    torchattacks and the robustness literature attack: robust accuracies then compare
    across models and training recipes.

    Args:
        module: The module attacked.
        purpose: ``"training"`` or ``"evaluation"``.

    Returns:
        The loss (logits, labels) -> scalar, and a description for the run report.
    """
    if purpose == "training":
        found = loss_module(module)
        if found is not None:
            return found[0], f"the module's {found[1]} ({type(found[0]).__name__})"
        names = " / ".join(LOSS_ATTRIBUTES)
        return nn.functional.cross_entropy, f"cross-entropy (the module has no {names})"
    return nn.functional.cross_entropy, "cross-entropy (the standard attack of an evaluation)"
