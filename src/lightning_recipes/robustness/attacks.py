"""Adversarial attacks as pure functions: FGSM and PGD (L-inf and L2) on any classifier.

Each attack takes a model, inputs and labels and returns perturbed inputs, and touches
nothing else: gradients are taken with respect to the perturbation only (the parameters'
``.grad`` stay as they were), the model's train/eval mode is restored, and the work runs
outside inference mode, so an attack works inside ``trainer.validate/test`` too. Epsilons
are in input units; ``clip`` keeps the result in the valid input range.

Hand-written rather than taken from torchattacks or Foolbox: those are not maintained
against our torch pin, and the training loop needs the pieces (random start, projection)
as functions it can call per batch. They follow Madry et al. (2018) and Wong et al. (2020).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor, nn

from lightning_recipes._core.module_modes import evaluation_mode, restored_modes
from lightning_recipes._core.validate import is_real, positive_int
from lightning_recipes.errors import config_error

__all__ = ["Norm", "eval_mode", "fgsm", "pgd", "project"]

Norm = Literal["linf", "l2"]
LossFn = Callable[[Tensor, Tensor], Tensor]


def _check(eps: float, clip: tuple[float, float] | None) -> None:
    if not is_real(eps) or not eps >= 0:
        raise config_error("eps", eps, "Pass a perturbation size >= 0, in input units.")
    if clip is not None and not (len(clip) == 2 and clip[0] < clip[1]):
        raise config_error("clip", clip, "Pass the valid input range (low, high), low < high.")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode; restore every submodule's own mode after, also on errors.

    A model left in train mode (e.g. after ``trainer.test``) would otherwise drop units at
    random and update its BatchNorm statistics on every scoring forward pass.
    """
    with restored_modes(model):
        model.eval()
        yield


@contextmanager
def _attacking(model: nn.Module) -> Iterator[None]:
    """Eval mode and gradients on, outside inference mode; the mode is restored after."""
    with evaluation_mode(model):
        yield


def _grad(model: nn.Module, x: Tensor, delta: Tensor, y: Tensor, loss_fn: LossFn) -> Tensor:
    """The gradient of the loss with respect to ``delta`` only (no parameter .grad)."""
    delta = delta.detach().requires_grad_(True)
    loss = loss_fn(model(x + delta), y)
    (grad,) = torch.autograd.grad(loss, delta)
    return grad


def project(delta: Tensor, eps: float, norm: Norm) -> Tensor:
    """The closest perturbation to ``delta`` in the ``norm`` ball of radius ``eps``.

    Args:
        delta: Perturbations, batch first.
        eps: The radius.
        norm: ``"linf"`` or ``"l2"`` (per sample).

    Returns:
        The projected perturbations.

    Examples:
        >>> project(torch.tensor([[3.0, -4.0]]), 1.0, "l2")
        tensor([[ 0.6000, -0.8000]])
        >>> project(torch.tensor([[3.0, -0.5]]), 1.0, "linf")
        tensor([[ 1.0000, -0.5000]])
    """
    if norm == "linf":
        return delta.clamp(-eps, eps)
    flat = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor: Tensor = (flat.reciprocal() * eps).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def _step(grad: Tensor, size: float, norm: Norm) -> Tensor:
    if norm == "linf":
        return size * grad.sign()
    flat = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))
    scaled: Tensor = grad * size / flat
    return scaled


def _in_range(x: Tensor, delta: Tensor, clip: tuple[float, float] | None) -> Tensor:
    return delta if clip is None else (x + delta).clamp(*clip) - x


def fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    loss_fn: LossFn = nn.functional.cross_entropy,
    clip: tuple[float, float] | None = None,
    random_start: bool = False,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fast gradient sign method; with ``random_start`` the "fast" FGSM of Wong et al. 2020.

    Args:
        model: The classifier (its mode and parameter gradients are left as they were).
        x: Inputs.
        y: Labels.
        eps: L-inf radius, in input units.
        loss_fn: The loss to increase.
        clip: The valid input range, e.g. ``(0.0, 1.0)``.
        random_start: Start from a uniform point in the ball (then step ``alpha``).
        alpha: Step size with ``random_start`` (default ``1.25 * eps``, as Wong et al.).
        generator: Random source of the start (the global one is left alone if given).

    Returns:
        The adversarial inputs, detached.

    Examples:
        >>> model = nn.Linear(2, 2)
        >>> x, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
        >>> (fgsm(model, x, y, 0.1) - x).abs().max() <= 0.1
        tensor(True)
    """
    _check(eps, clip)
    if eps == 0:
        return x.detach().clone()
    with _attacking(model):
        x, y = x.detach().clone(), y.detach().clone()  # inference tensors cannot be saved
        delta = torch.zeros_like(x)
        if random_start:
            noise = torch.rand(x.shape, generator=generator, device="cpu").to(x)
            delta = _in_range(x, (2 * noise - 1) * eps, clip)
        step = (alpha if alpha is not None else 1.25 * eps) if random_start else eps
        delta = delta + _step(_grad(model, x, delta, y, loss_fn), step, "linf")
        delta = _in_range(x, project(delta, eps, "linf"), clip)
    return (x + delta).detach()


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    norm: Norm = "linf",
    loss_fn: LossFn = nn.functional.cross_entropy,
    clip: tuple[float, float] | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent (Madry et al. 2018), L-inf or L2.

    Args:
        model: The classifier (its mode and parameter gradients are left as they were).
        x: Inputs.
        y: Labels.
        eps: Radius of the ball, in input units.
        steps: Gradient steps.
        step_size: Size of each step (default ``2.5 * eps / steps``).
        norm: ``"linf"`` or ``"l2"``.
        loss_fn: The loss to increase.
        clip: The valid input range.
        random_start: Start from a random point of the ball.
        generator: Random source of the start.

    Returns:
        The adversarial inputs, detached: within ``eps`` of ``x`` and inside ``clip``.

    Examples:
        >>> model = nn.Linear(2, 2)
        >>> x, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
        >>> adv = pgd(model, x, y, 0.5, norm="l2", generator=torch.Generator().manual_seed(0))
        >>> bool((adv - x).norm(dim=1).max() <= 0.5 + 1e-6)
        True
    """
    _check(eps, clip)
    positive_int("steps", steps, "Pass a number of steps >= 1.")
    if norm not in ("linf", "l2"):
        raise config_error("norm", norm, "Choose 'linf' or 'l2'.")
    if step_size is not None and not step_size > 0:
        raise config_error("step_size", step_size, "Pass a positive step size, or None.")
    if eps == 0:
        return x.detach().clone()
    size = step_size if step_size is not None else 2.5 * eps / steps
    with _attacking(model):
        x, y = x.detach().clone(), y.detach().clone()  # inference tensors cannot be saved
        delta = torch.zeros_like(x)
        if random_start:
            if norm == "linf":
                uniform = torch.rand(x.shape, generator=generator, device="cpu").to(x)
                delta = (2 * uniform - 1) * eps
            else:  # a random direction, at a random radius inside the ball
                noise = torch.randn(x.shape, generator=generator, device="cpu").to(x)
                radius = torch.rand(x.shape[0], generator=generator, device="cpu").to(x)
                delta = project(noise, eps, "l2") * radius.view(-1, *([1] * (x.dim() - 1)))
            delta = _in_range(x, delta, clip)
        for _ in range(steps):
            delta = delta + _step(_grad(model, x, delta, y, loss_fn), size, norm)
            delta = _in_range(x, project(delta, eps, norm), clip)
    return (x + delta).detach()
