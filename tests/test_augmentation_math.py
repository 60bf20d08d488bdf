"""The pure math of MixUp, CutMix and label smoothing (no Trainer)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from lightning_recipes.augmentation import (
    MixTerm,
    augment_images,
    build_image_transform,
    compose_mix,
    cutmix,
    cutmix_box,
    mixed_loss,
    mixup,
    sample_lam,
)


def test_mixup_is_the_convex_combination() -> None:
    x = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([5, 4, 3, 2, 1, 0])
    # lerp rounds differently from the written-out sum: compare with an absolute tolerance
    assert torch.allclose(mixup(x, index, 0.3), 0.3 * x + 0.7 * x[index], atol=1e-6)
    assert torch.equal(mixup(x, index, 1.0), x)


def test_mixed_loss_equals_the_loss_of_the_mixed_soft_target() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    index = torch.randperm(8)
    onehot = F.one_hot(y, 5).float()
    target = 0.6 * onehot + 0.4 * onehot[index]
    got = mixed_loss(nn.CrossEntropyLoss(), logits, y, compose_mix([MixTerm(1.0)], index, 0.6))
    assert torch.allclose(got, F.cross_entropy(logits, target), atol=1e-6)


def test_smoothing_equals_torch_label_smoothing_without_weights() -> None:
    torch.manual_seed(1)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    got = mixed_loss(nn.CrossEntropyLoss(), logits, y, [MixTerm(1.0)], 0.1)
    assert torch.allclose(got, F.cross_entropy(logits, y, label_smoothing=0.1), atol=1e-6)


def test_weighted_loss_terms_each_use_the_weights() -> None:
    torch.manual_seed(2)
    weight = torch.rand(4) + 0.5
    loss = nn.CrossEntropyLoss(weight=weight)
    logits, y, index = torch.randn(6, 4), torch.randint(0, 4, (6,)), torch.randperm(6)
    got = mixed_loss(loss, logits, y, [MixTerm(0.25), MixTerm(0.75, index)])
    want = 0.25 * F.cross_entropy(logits, y, weight=weight) + 0.75 * F.cross_entropy(
        logits, y[index], weight=weight
    )
    assert torch.allclose(got, want)


def test_bce_smoothing_uses_one_half() -> None:
    logits, y = torch.randn(5, 3), torch.randint(0, 2, (5, 3)).float()
    got = mixed_loss(nn.BCEWithLogitsLoss(), logits, y, [MixTerm(1.0)], 0.2)
    want = F.binary_cross_entropy_with_logits(logits, 0.8 * y + 0.1)
    assert torch.allclose(got, want, atol=1e-6)


def test_two_mixes_compose_into_four_terms() -> None:
    torch.manual_seed(3)
    y = F.one_hot(torch.randint(0, 3, (6,)), 3).float()
    p1, p2 = torch.randperm(6), torch.randperm(6)
    once = 0.7 * y + 0.3 * y[p1]
    twice = 0.4 * once + 0.6 * once[p2]
    terms = compose_mix(compose_mix([MixTerm(1.0)], p1, 0.7), p2, 0.4)
    assert len(terms) == 4
    built = sum(t.coef * (y if t.index is None else y[t.index]) for t in terms)
    assert torch.allclose(built, twice)  # type: ignore[arg-type]


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_cutmix_box_and_lam_are_consistent(lam: float) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, bottom, right = cutmix_box(8, 6, lam, rng)
        assert 0 <= top <= bottom <= 8
        assert 0 <= left <= right <= 6
        x = torch.arange(2 * 48, dtype=torch.float32).reshape(2, 1, 8, 6)
        mixed, got = cutmix(x, torch.tensor([1, 0]), (top, left, bottom, right))
        own = (mixed == x).float().mean().item()
        assert got == pytest.approx(own)


def test_sample_lam_follows_the_beta_distribution() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([sample_lam(0.4, rng) for _ in range(4000)])
    assert abs(draws.mean() - 0.5) < 0.03
    assert abs(draws.var() - 0.25 / 1.8) < 0.02  # Beta(a, a): 1 / (4 (2a + 1))


def test_image_transform_is_seeded_and_leaves_global_rng_alone() -> None:
    transform = build_image_transform(rotation=20, translate=0.1, scale=(0.8, 1.2), shear=5)
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(5)
    a = augment_images(transform, x, seed=1)
    after = torch.rand(1)
    torch.manual_seed(5)
    b = augment_images(transform, x, seed=1)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(1), after)
    assert not torch.equal(augment_images(transform, x, seed=2), a)
    assert not torch.equal(a, x)


def test_constant_fill_value_fills_the_outside() -> None:
    transform = build_image_transform(translate=0.5)
    x = torch.zeros(16, 1, 8, 8)
    out = augment_images(transform, x, seed=0, fill_value=0.7)
    # Inside stays 0, outside is 0.7, the bilinear edge blends the two.
    assert bool(torch.all((out > -1e-5) & (out < 0.7 + 1e-5)))
    assert bool((out > 0.7 - 1e-5).any())
    assert bool((out.abs() < 1e-5).any())
    nearest = augment_images(build_image_transform(translate=0.5, fill_mode="nearest"), x, 0)
    assert torch.equal(nearest, x)


def test_flip_without_warp_is_exact() -> None:
    x = torch.rand(32, 1, 4, 4)
    out = augment_images(build_image_transform(horizontal_flip=True), x, seed=0)
    flipped = torch.all(out == x.flip(-1), dim=(1, 2, 3))
    same = torch.all(out == x, dim=(1, 2, 3))
    assert bool(torch.all(flipped | same))
    assert 4 < int(flipped.sum()) < 28
