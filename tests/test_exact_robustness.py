"""Exact values of the attacks' math, against the formulas written by hand."""

from collections.abc import Callable

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes.robustness import AdversarialTraining, fgsm, pgd, project


def test_l2_projection_leaves_a_delta_inside_the_ball_unchanged() -> None:
    delta = torch.tensor([[0.3, -0.4], [0.0, 0.5], [0.6, 0.8]])  # norms 0.5, 0.5, 1.0
    torch.testing.assert_close(project(delta, 1.0, "l2"), delta, rtol=0, atol=0)


def test_l2_projection_scales_a_delta_outside_the_ball_onto_its_surface() -> None:
    delta = torch.tensor([[3.0, -4.0], [0.3, 0.4]])  # norms 5 and 0.5
    projected = project(delta, 2.0, "l2")
    torch.testing.assert_close(projected[0], delta[0] * 2.0 / 5.0)
    torch.testing.assert_close(projected[1], delta[1])  # per sample, not per batch


def test_l2_projection_is_per_sample_over_every_dimension() -> None:
    delta = torch.full((2, 2, 3, 3), 1.0)  # each sample: norm sqrt(18)
    delta[1] *= 0.01
    projected = project(delta, 1.0, "l2")
    torch.testing.assert_close(projected[0].norm(), torch.tensor(1.0))
    torch.testing.assert_close(projected[1], delta[1])


def test_linf_projection_clamps_each_coordinate() -> None:
    delta = torch.tensor([[0.5, -2.0, 0.1, -0.1, 1.0]])
    expected = torch.tensor([[0.5, -1.0, 0.1, -0.1, 1.0]])
    torch.testing.assert_close(project(delta, 1.0, "linf"), expected, rtol=0, atol=0)


class _Fixed(nn.Module):
    """Logits w . x for class 1 and 0 for class 0: the loss gradient's sign is known."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.w
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_fgsm_steps_eps_along_the_sign_of_the_loss_gradient() -> None:
    x = torch.zeros(2, 3)
    y = torch.tensor([0, 1])  # label 0: raise z; label 1: lower z
    adv = fgsm(_Fixed(), x, y, 0.1)
    expected = torch.tensor([[0.1, -0.1, 0.1], [-0.1, 0.1, -0.1]])
    torch.testing.assert_close(adv, expected)


def test_fgsm_clips_to_the_input_range() -> None:
    x = torch.full((1, 3), 0.95)
    adv = fgsm(_Fixed(), x, torch.tensor([0]), 0.1, clip=(0.0, 1.0))
    torch.testing.assert_close(adv, torch.tensor([[1.0, 0.85, 1.0]]))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_one_pgd_step_from_zero_is_the_step_formula(norm: str) -> None:
    x = torch.zeros(1, 3)
    y = torch.tensor([0])
    adv = pgd(_Fixed(), x, y, 10.0, steps=1, step_size=0.5, norm=norm, random_start=False)  # type: ignore[arg-type]
    w = torch.tensor([1.0, -2.0, 3.0])
    expected = 0.5 * w.sign() if norm == "linf" else 0.5 * w / w.norm()
    torch.testing.assert_close(adv[0], expected)


def test_pgd_l2_ends_on_the_ball_when_the_steps_push_out() -> None:
    x = torch.zeros(1, 3)
    adv = pgd(_Fixed(), x, torch.tensor([0]), 1.0, steps=5, step_size=0.5, norm="l2",
              random_start=False)  # fmt: skip
    w = torch.tensor([1.0, -2.0, 3.0])
    torch.testing.assert_close(adv[0], w / w.norm())


def test_fgsm_random_start_is_a_uniform_draw_then_a_step_of_one_and_a_quarter_eps() -> None:
    x, y, eps = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]), 0.2
    adv = fgsm(_Fixed(), x, y, eps, random_start=True, generator=torch.Generator().manual_seed(7))
    start = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(7)) - 1) * eps
    direction = torch.tensor([1.0, -1.0, 1.0]) * torch.tensor([1.0, -1.0, 1.0, -1.0])[:, None]
    expected = (start + 1.25 * eps * direction).clamp(-eps, eps)
    torch.testing.assert_close(adv, expected)
    alpha = fgsm(_Fixed(), x, y, eps, random_start=True, alpha=0.05,
                 generator=torch.Generator().manual_seed(7))  # fmt: skip
    torch.testing.assert_close(alpha, (start + 0.05 * direction).clamp(-eps, eps))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_random_start_is_the_documented_draw(norm: str) -> None:
    x, y, eps, size = torch.zeros(3, 3), torch.tensor([0, 0, 0]), 0.5, 1e-3
    adv = pgd(_Fixed(), x, y, eps, steps=1, step_size=size, norm=norm,  # type: ignore[arg-type]
              generator=torch.Generator().manual_seed(3))  # fmt: skip
    generator = torch.Generator().manual_seed(3)
    w = torch.tensor([1.0, -2.0, 3.0])
    if norm == "linf":
        start = (2 * torch.rand(x.shape, generator=generator) - 1) * eps
        expected = (start + size * w.sign()).clamp(-eps, eps)
    else:
        noise = torch.randn(x.shape, generator=generator)
        radius = torch.rand(3, generator=generator)
        start = noise * (eps / noise.norm(dim=1, keepdim=True)).clamp(max=1) * radius[:, None]
        expected = project(start + size * w / w.norm(), eps, "l2")
        assert bool((start.norm(dim=1) < eps).all())  # inside the ball, at a random radius
    torch.testing.assert_close(adv, expected)


class _Towards(nn.Module):
    """Class 0's loss grows as x nears 0.3: a PGD step overshoots, the next comes back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = -10 * (x[:, 0] - 0.3) ** 2
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.mark.parametrize("steps", [1, 3, 4])
def test_pgd_default_step_size_is_two_and_a_half_eps_over_steps(steps: int) -> None:
    eps = 0.5
    adv = pgd(_Towards(), torch.zeros(1, 1), torch.tensor([0]), eps, steps=steps,
              random_start=False)  # fmt: skip
    delta, size = 0.0, 2.5 * eps / steps
    for _ in range(steps):  # the hand-written PGD-linf of the formula
        delta = min(max(delta + size * (1.0 if delta < 0.3 else -1.0), -eps), eps)
    assert float(adv) == pytest.approx(delta)


class _Seen(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = _Fixed()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize(("ratio", "replaced"), [(0.3, 2), (0.1, 1), (0.9, 4), (1.0, 5)])
def test_adversarial_training_replaces_the_rounded_share_of_the_batch(
    make_trainer: Callable[..., Trainer], ratio: float, replaced: int
) -> None:
    x = torch.zeros(5, 3)
    model = _Seen()
    loader = DataLoader(TensorDataset(x, torch.zeros(5, dtype=torch.long)), batch_size=5)
    make_trainer(max_steps=1, callbacks=[AdversarialTraining(eps=0.1, ratio=ratio)]).fit(
        model, loader
    )
    trained = model.inputs[-1]  # the attack's own forwards come first
    changed = (trained != 0).any(dim=1)
    assert changed.tolist() == [True] * replaced + [False] * (5 - replaced)
