"""The math of MixUp, CutMix and label smoothing: pure functions, no Lightning.

Every technique here mixes *targets* by mixing *losses*: with a loss ``L`` linear in its
target (cross-entropy, BCE and their class-weighted forms are), the loss of the mixed
target ``lam * y_a + (1 - lam) * y_b`` is ``lam * L(y_a) + (1 - lam) * L(y_b)``. Computing
it that way works with integer labels, with the module's own loss object and with any
class weights installed in it, and it leaves the labels themselves untouched for the
metrics that need hard labels.

A batch that went through several mixes (MixUp then CutMix, say) has targets that are a
weighted sum of permuted label tensors; `compose_mix` keeps that sum as a list of
`MixTerm` and `mixed_loss` evaluates it with one loss call per term.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "MixTerm",
    "compose_mix",
    "cutmix",
    "cutmix_box",
    "mixed_loss",
    "mixup",
    "permutation",
    "sample_lam",
    "uniform_target",
]


@dataclass(frozen=True)
class MixTerm:
    """One term of a mixed target: ``coef * y[index]`` (``index`` None is ``y`` itself)."""

    coef: float
    index: Tensor | None = None


def sample_lam(alpha: float, rng: np.random.Generator) -> float:
    """Draw the mixing weight ``lam ~ Beta(alpha, alpha)`` (Zhang et al. 2018).

    Args:
        alpha: The Beta distribution's two equal parameters, > 0 (1.0 is uniform).
        rng: The generator to draw from.

    Returns:
        ``lam`` in [0, 1], a Python float (drawn on the host, no device sync).

    Examples:
        >>> lam = sample_lam(0.4, np.random.default_rng(0))
        >>> 0.0 <= lam <= 1.0
        True
    """
    return float(rng.beta(alpha, alpha))


def permutation(size: int, seed: int, device: torch.device | str = "cpu") -> Tensor:
    """A random permutation of ``range(size)`` drawn from its own seeded generator.

    Args:
        size: Batch size.
        seed: Seed of the private generator (the global RNG is not touched).
        device: Where the result goes (drawn on the CPU, copied without a sync).

    Returns:
        A ``long`` tensor of shape ``(size,)``.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(size, generator=generator).to(device, non_blocking=True)


def mixup(inputs: Tensor, index: Tensor, lam: float) -> Tensor:
    """MixUp the inputs: ``lam * x + (1 - lam) * x[index]`` (a new tensor).

    Args:
        inputs: Floating-point batch, samples along dimension 0.
        index: Partner of each sample (a permutation of the batch).
        lam: Weight of each sample itself.

    Returns:
        The mixed batch, same shape and dtype.

    Examples:
        >>> x = torch.tensor([[0.0], [1.0]])
        >>> mixup(x, torch.tensor([1, 0]), 0.75).tolist()
        [[0.25], [0.75]]
    """
    return torch.lerp(inputs[index], inputs, lam)


def cutmix_box(
    height: int, width: int, lam: float, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """The CutMix rectangle (Yun et al. 2019): area ``(1 - lam)`` of the image, clipped.

    The centre is uniform over the image; the box keeps the image's aspect ratio, with
    sides ``sqrt(1 - lam)`` of the image's, and is clipped at the borders (so its area may
    be smaller: `cutmix` returns the exact share pasted).

    Args:
        height: Image height.
        width: Image width.
        lam: The drawn mixing weight.
        rng: The generator to draw the centre from.

    Returns:
        ``(top, left, bottom, right)``, half-open.

    Examples:
        >>> cutmix_box(8, 8, 1.0, np.random.default_rng(0))[2:] >= (0, 0)
        True
    """
    cut = math.sqrt(max(0.0, 1.0 - lam))
    box_h, box_w = round(height * cut), round(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - box_h // 2, 0), min(cy - box_h // 2 + box_h, height)
    left, right = max(cx - box_w // 2, 0), min(cx - box_w // 2 + box_w, width)
    return top, left, max(bottom, top), max(right, left)


def cutmix(inputs: Tensor, index: Tensor, box: tuple[int, int, int, int]) -> tuple[Tensor, float]:
    """Paste ``box`` of each partner ``inputs[index]`` into each sample (a new tensor).

    Args:
        inputs: Batch of images, ``(N, ..., H, W)``.
        index: Partner of each sample (a permutation of the batch).
        box: ``(top, left, bottom, right)`` from `cutmix_box`.

    Returns:
        The mixed batch and the share of each image that is still its own (the ``lam``
        of the target mix: ``1 - box area / image area``).

    Examples:
        >>> x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
        >>> mixed, lam = cutmix(x, torch.tensor([1, 0]), (0, 0, 1, 2))
        >>> mixed[0, 0].tolist(), lam
        ([[1.0, 1.0], [0.0, 0.0]], 0.5)
    """
    top, left, bottom, right = box
    height, width = inputs.shape[-2], inputs.shape[-1]
    mixed = inputs.clone()
    mixed[..., top:bottom, left:right] = inputs[index][..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / float(height * width)
    return mixed, lam


def compose_mix(terms: list[MixTerm], index: Tensor, lam: float) -> list[MixTerm]:
    """The target terms after mixing a batch whose targets are ``terms`` with ``index``.

    Mixing sample ``i`` with sample ``index[i]`` at weight ``lam`` turns the target
    ``t_i = sum_j c_j * y[idx_j][i]`` into ``lam * t_i + (1 - lam) * t[index][i]``.

    Args:
        terms: The current terms (``[MixTerm(1.0)]`` for an unmixed batch).
        index: The partner permutation.
        lam: The weight of each sample itself.

    Returns:
        Twice as many terms (terms with weight 0 are dropped).

    Examples:
        >>> out = compose_mix([MixTerm(1.0)], torch.tensor([1, 0]), 0.75)
        >>> [(t.coef, None if t.index is None else t.index.tolist()) for t in out]
        [(0.75, None), (0.25, [1, 0])]
    """
    kept = [MixTerm(t.coef * lam, t.index) for t in terms]
    moved = [
        MixTerm(t.coef * (1.0 - lam), index if t.index is None else t.index[index]) for t in terms
    ]
    return [t for t in kept + moved if t.coef != 0.0]


def uniform_target(loss: nn.Module, inputs: Tensor) -> Tensor:
    """The uniform target of label smoothing for ``loss`` and its ``inputs`` (logits).

    ``1 / K`` over the class dimension (dimension 1) for cross-entropy-like losses; 0.5
    everywhere for ``BCEWithLogitsLoss`` (each label's two outcomes equally likely).

    Args:
        loss: The loss module.
        inputs: The loss's first argument.

    Returns:
        A float tensor shaped like ``inputs``.
    """
    if isinstance(loss, nn.BCEWithLogitsLoss | nn.BCELoss):
        return torch.full_like(inputs, 0.5)
    return torch.full_like(inputs, 1.0 / inputs.shape[1])


def mixed_loss(
    loss: nn.Module,
    inputs: Tensor,
    target: Tensor,
    terms: list[MixTerm],
    smoothing: float = 0.0,
    *,
    first: Tensor | None = None,
) -> Tensor:
    """``(1 - smoothing) * sum_j c_j * L(inputs, target[idx_j]) + smoothing * L(inputs, u)``.

    ``L`` is ``loss.forward`` (the module's own loss, with its weights and reduction);
    ``u`` is `uniform_target`.

    Args:
        loss: The loss module.
        inputs: The loss's first argument (logits).
        target: Its second (labels, any form the loss takes).
        terms: The target's terms (`compose_mix`).
        smoothing: Label smoothing in [0, 1).
        first: ``L(inputs, target)`` when already computed (saves a call).

    Returns:
        The loss.

    Examples:
        >>> ce = nn.CrossEntropyLoss()
        >>> logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
        >>> index = torch.tensor([1, 0, 3, 2])
        >>> got = mixed_loss(ce, logits, y, [MixTerm(0.7), MixTerm(0.3, index)])
        >>> bool(torch.isclose(got, 0.7 * ce(logits, y) + 0.3 * ce(logits, y[index])))
        True
    """
    total: Tensor | None = None
    for term in terms:
        if term.index is None:
            value = first if first is not None else loss.forward(inputs, target)
        else:
            value = loss.forward(inputs, target[term.index])
        part = value * term.coef
        total = part if total is None else total + part
    if total is None:
        total = first if first is not None else loss.forward(inputs, target)
    if smoothing:
        total = (
            total * (1.0 - smoothing)
            + loss.forward(inputs, uniform_target(loss, inputs)) * smoothing
        )
    return total
