"""Accuracy under attack: clean and adversarial accuracy at a list of epsilons."""

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from lightning_recipes._core.deprecation import renamed
from lightning_recipes.errors import config_error
from lightning_recipes.robustness.attacks import Norm, eval_mode, fgsm, pgd

__all__ = ["AttackName", "attack", "correct_counts", "robust_accuracy"]

AttackName = Literal["fgsm", "pgd"]
LossFn = Callable[[Tensor, Tensor], Tensor]


def attack(
    name: AttackName,
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 10,
    norm: Norm = "linf",
    clip: tuple[float, float] | None = None,
    loss_fn: LossFn = nn.functional.cross_entropy,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Run attack ``name`` (``"fgsm"`` or ``"pgd"``) with the given settings.

    Args:
        name: The attack.
        model: The classifier.
        x: Inputs.
        y: Labels.
        eps: Radius in input units.
        steps: PGD steps.
        norm: PGD norm (FGSM is L-inf).
        clip: Valid input range.
        loss_fn: Loss to increase.
        generator: Random source of PGD's start.

    Returns:
        The adversarial inputs.
    """
    if name == "fgsm":
        return fgsm(model, x, y, eps, loss_fn=loss_fn, clip=clip)
    if name == "pgd":
        return pgd(
            model, x, y, eps, steps=steps, norm=norm, loss_fn=loss_fn, clip=clip,
            generator=generator,
        )  # fmt: skip
    raise config_error("attack", name, "Choose 'fgsm' or 'pgd'.")


_attack_by_name = attack  # for the functions whose ``attack=`` argument shadows it


def correct_counts(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epsilons: Sequence[float],
    attack: AttackName = "pgd",
    *,
    name: AttackName | None = None,
    **settings: object,
) -> Tensor:
    """Correct predictions on ``x`` under the attack at each epsilon (eps 0 is clean).

    The attacks and the scoring run in eval mode, whatever mode the model is in (after
    ``trainer.test`` it is back in train mode): no dropout, BatchNorm with its running
    statistics, which it leaves as they were. Each submodule's mode is restored after.

    Args:
        model: The classifier.
        x: Inputs.
        y: Labels.
        epsilons: Radii, in input units.
        attack: ``"fgsm"`` or ``"pgd"`` (the name `AdversarialTraining` and
            `RobustnessEvaluation` use for it).
        name: Deprecated name of ``attack`` (goes in the next release).
        **settings: Settings of `attack`.

    Returns:
        ``(len(epsilons),)`` counts, on ``x``'s device (add them over batches and ranks).
    """
    attack = renamed("correct_counts", "name", "attack", name, attack, "pgd")
    counts = []
    with eval_mode(model):
        for eps in epsilons:
            adv = x if eps == 0 else _attack_by_name(attack, model, x, y, eps, **settings)  # type: ignore[arg-type]
            with torch.no_grad():
                counts.append((model(adv).argmax(dim=-1) == y).sum())
    return torch.stack(counts)


def robust_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epsilons: Sequence[float],
    attack: AttackName = "pgd",
    *,
    name: AttackName | None = None,
    **settings: object,
) -> dict[float, float]:
    """Accuracy at each epsilon (``0.0`` is the clean accuracy), in eval mode.

    See `correct_counts`: the model is scored in eval mode, its buffers (BatchNorm
    statistics) are left as they were and its modes are restored after.

    Args:
        model: The classifier.
        x: Inputs.
        y: Labels.
        epsilons: Radii, in input units.
        attack: ``"fgsm"`` or ``"pgd"``.
        name: Deprecated name of ``attack`` (goes in the next release).
        **settings: Settings of `attack` (``steps``, ``norm``, ``clip``, ``generator``...).

    Returns:
        ``{eps: accuracy}``.

    Examples:
        >>> model = nn.Linear(2, 2)
        >>> x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
        >>> y = (x[:, 0] > 0).long()
        >>> result = robust_accuracy(model, x, y, [0.0, 0.5], "fgsm")
        >>> result[0.5] <= result[0.0]
        True
    """
    attack = renamed("robust_accuracy", "name", "attack", name, attack, "pgd")
    counts = correct_counts(model, x, y, epsilons, attack, **settings)  # type: ignore[arg-type]
    return {float(e): float(c) / len(y) for e, c in zip(epsilons, counts.tolist(), strict=True)}
