"""The math of MixUp, CutMix and label smoothing: pure functions, no Lightning.

Every technique here mixes *targets* by mixing *losses*: with a loss ``L`` linear in its
target (cross-entropy, BCE and their class-weighted forms are), the loss of the mixed
target ``lam * y_a + (1 - lam) * y_b`` is ``lam * L(y_a) + (1 - lam) * L(y_b)``. Computing
it that way works with integer labels, with the module's own loss object and with any
class weights installed in it, and it leaves the labels themselves untouched for the
metrics that need hard labels.

A batch that went through several mixes (MixUp then CutMix, say) has targets that are a
weighted sum of permuted label tensors; `compose_mix` keeps that sum as a list of
`MixTerm` and `mixed_loss` evaluates it with one loss call per term. The loss math lives in
the core's loss path (``_core.loss_path.edited_loss``), the one implementation that runs in
training whether the module calls ``F.cross_entropy`` or ``self.loss_fn``.
"""

import math

import numpy as np
import torch
from torch import Tensor, nn

from lightning_recipes._core.loss_path import (
    Kind,
    MixTerm,
    compose_mix,
    edited_loss,
    uniform_target,
)

__all__ = [
    "MixTerm",
    "compose_mix",
    "cutmix",
    "cutmix_box",
    "mixed_loss",
    "mixup",
    "permutation",
    "permutations",
    "sample_lam",
    "uniform_target",
]


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


def permutation(
    size: int,
    seed: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """A random permutation of ``range(size)`` drawn from its own seeded generator.

    Args:
        size: Batch size.
        seed: Seed of the private generator (the global RNG is not touched).
        device: Where the result goes (drawn on the CPU, copied without a sync).
        generator: A CPU generator to re-seed with ``seed`` and draw from (the same
            permutation as a new one; saves building it); None builds one.

    Returns:
        A ``long`` tensor of shape ``(size,)``.

    Examples:
        >>> reused = torch.Generator()
        >>> torch.equal(permutation(5, 7), permutation(5, 7, generator=reused))
        True
    """
    generator = (generator or torch.Generator()).manual_seed(seed)
    drawn = torch.randperm(size, generator=generator)
    return drawn if torch.device(device).type == "cpu" else drawn.to(device, non_blocking=True)


def permutations(count: int, size: int, seed: int) -> Tensor:
    """``count`` random permutations of ``range(size)``, one per row, from one seeded draw.

    Each row is the argsort of ``size`` uniform keys (a uniform random permutation: ties
    have probability ~0), all rows drawn at once: one generator seeding and one sort for
    ``count`` batches instead of one each (~30 us a batch inside a training step, measured).

    Args:
        count: How many permutations.
        size: Their length (the batch size).
        seed: Seed of the private generator (the global RNG is not touched).

    Returns:
        A ``long`` tensor of shape ``(count, size)`` on the CPU.

    Examples:
        >>> rows = permutations(3, 5, seed=0)
        >>> sorted(rows[2].tolist()), torch.equal(rows, permutations(3, 5, seed=0))
        ([0, 1, 2, 3, 4], True)
    """
    keys = torch.rand(count, size, generator=torch.Generator().manual_seed(seed))
    return keys.argsort(dim=1)


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
    return torch.lerp(inputs.index_select(0, index), inputs, lam)


def cutmix_box(
    height: int, width: int, lam: float, rng: np.random.Generator | tuple[float, float]
) -> tuple[int, int, int, int]:
    """The CutMix rectangle (Yun et al. 2019): area ``(1 - lam)`` of the image, clipped.

    The centre is uniform over the image; the box keeps the image's aspect ratio, with
    sides ``sqrt(1 - lam)`` of the image's, and is clipped at the borders (so its area may
    be smaller: `cutmix` returns the exact share pasted).

    Args:
        height: Image height.
        width: Image width.
        lam: The drawn mixing weight.
        rng: The generator to draw the centre from, or two uniform draws in [0, 1) that
            place it (row, column), drawn beforehand.

    Returns:
        ``(top, left, bottom, right)``, half-open.

    Examples:
        >>> cutmix_box(8, 8, 1.0, np.random.default_rng(0))[2:] >= (0, 0)
        True
        >>> cutmix_box(8, 8, 0.75, (0.5, 0.0))
        (2, 0, 6, 2)
    """
    cut = math.sqrt(max(0.0, 1.0 - lam))
    box_h, box_w = round(height * cut), round(width * cut)
    if isinstance(rng, tuple):
        cy, cx = min(int(rng[0] * height), height - 1), min(int(rng[1] * width), width - 1)
    else:
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


def mixed_loss(
    loss: nn.Module,
    inputs: Tensor,
    target: Tensor,
    terms: list[MixTerm],
    smoothing: float = 0.0,
) -> Tensor:
    """``(1 - smoothing) * sum_j c_j * L(inputs, target[idx_j]) + smoothing * L(inputs, u)``.

    ``L`` is ``loss.forward`` (the module's own loss, with its weights and reduction); ``u``
    is the uniform target (``1/K`` per class, 0.5 per label for the BCE losses). The same
    math (`edited_loss`) runs in training, through either door of the loss path.

    Args:
        loss: The loss module.
        inputs: The loss's first argument (logits).
        target: Its second (labels, any form the loss takes).
        terms: The target's terms (`compose_mix`).
        smoothing: Label smoothing in [0, 1).

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
    binary = isinstance(loss, nn.BCEWithLogitsLoss | nn.BCELoss)
    kind: Kind = "binary_logits" if binary else "multiclass"
    return edited_loss(
        lambda t: loss.forward(inputs, t),
        target,
        terms,
        smoothing,
        lambda: loss.forward(inputs, uniform_target(kind, inputs)),
    )
