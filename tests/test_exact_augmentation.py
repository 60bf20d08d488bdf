"""Augmentation draws across epochs and batches, in a tiny Trainer."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes.augmentation import MixUp
from lightning_recipes.augmentation.images import augment_images, build_image_transform
from lightning_recipes.augmentation.mixing import cutmix_box


@pytest.mark.parametrize(("lam", "side_h", "side_w"), [(0.75, 4, 8), (0.25, 7, 14), (1.0, 0, 0)])
def test_the_cutmix_box_has_sides_sqrt_of_one_minus_lam(
    lam: float, side_h: int, side_w: int
) -> None:
    heights, widths = set(), set()
    for seed in range(200):
        top, left, bottom, right = cutmix_box(8, 16, lam, np.random.default_rng(seed))
        assert 0 <= top <= bottom <= 8
        assert 0 <= left <= right <= 16
        heights.add(bottom - top)
        widths.add(right - left)
    # clipped at the borders, never larger; the unclipped box is round(side * sqrt(1 - lam))
    assert max(heights) == side_h
    assert max(widths) == side_w


class _Flat(LightningModule):
    """Records the (mixed) inputs each training step saw."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)
        self.loss_fn = nn.CrossEntropyLoss()
        self.seen: list[Tensor] = []

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        self.seen.append(batch[0].detach().clone())
        return self.loss_fn(self.net(batch[0]), batch[1])  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _mixed_inputs(make_trainer: Callable[..., Trainer], seed: int) -> list[Tensor]:
    x = torch.arange(64, dtype=torch.float32).reshape(16, 4)
    loader = DataLoader(TensorDataset(x, torch.arange(16) % 3), batch_size=8)  # no shuffling
    model = _Flat()
    make_trainer(max_epochs=3, callbacks=[MixUp(alpha=1.0, seed=seed)]).fit(model, loader)
    return model.seen


def test_every_epoch_and_batch_draws_anew_and_a_seed_repeats_the_run(
    make_trainer: Callable[..., Trainer],
) -> None:
    seen = _mixed_inputs(make_trainer, seed=3)
    assert len(seen) == 6  # 3 epochs of the same 2 clean batches
    for i in range(6):
        for j in range(i + 1, 6):
            assert not torch.equal(seen[i], seen[j]), (i, j)
    again = _mixed_inputs(make_trainer, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(seen, again, strict=True))
    other = _mixed_inputs(make_trainer, seed=4)
    assert not torch.equal(seen[0], other[0])


@pytest.mark.parametrize(("flip", "dim"), [("horizontal_flip", -1), ("vertical_flip", -2)])
@pytest.mark.parametrize("p", [1.0, 0.5])
def test_each_flip_happens_with_probability_half_of_p(flip: str, dim: int, p: float) -> None:
    x = torch.rand(256, 1, 4, 4)
    out = augment_images(build_image_transform(p=p, **{flip: True}), x, seed=0)
    flipped = torch.all(out == x.flip(dim), dim=(1, 2, 3))
    assert bool(torch.all(flipped | torch.all(out == x, dim=(1, 2, 3))))
    expected = 256 * 0.5 * p  # binomial: standard deviation at most 8
    assert abs(int(flipped.sum()) - expected) < 24


def test_p_is_the_share_of_batches_augmented(make_trainer: Callable[..., Trainer]) -> None:
    x = torch.arange(80, dtype=torch.float32).reshape(40, 2).repeat(1, 2)
    loader = DataLoader(TensorDataset(x, torch.arange(40) % 3), batch_size=2)
    model = _Flat()
    make_trainer(callbacks=[MixUp(alpha=1.0, p=0.2, seed=0)]).fit(model, loader)
    clean = [batch[0] for batch in loader]
    mixed = sum(not torch.equal(a, b) for a, b in zip(model.seen, clean, strict=True))
    assert 1 <= mixed <= 10, mixed  # 20 batches, p = 0.2: about 4 (binomial sd 1.8)
