"""The pure math of the batch-size recipes: noise-scale estimators, EMA, LR rules, trade-off fit."""

import math

import pytest
import torch

from lightning_recipes import functional
from lightning_recipes.batch_size import (
    NoiseScaleEMA,
    batch_size_advice,
    fit_tradeoff,
    lr_scaling_rule,
    noise_estimates,
    scale_lr,
    simple_noise_scale,
)
from lightning_recipes.batch_size.memory import budget_bytes, check_max_memory
from lightning_recipes.errors import RecipeConfigError


def linear_regression_truth(delta: torch.Tensor, sigma2: float) -> float:
    """B_simple of 0.5 (x.w - y)^2 with x ~ N(0, I), y = x.w* + N(0, sigma2), w - w* = delta.

    Per-example gradient g = x (x.delta - eps): G = delta and
    Sigma = (|delta|^2 + sigma2) I + delta delta^T,
    so tr(Sigma) = d (|delta|^2 + sigma2) + |delta|^2.
    """
    d, sq = delta.numel(), float(delta.pow(2).sum())
    return (d * (sq + sigma2) + sq) / sq


def batch_gradients(delta: torch.Tensor, sigma2: float, draws: int, batch: int) -> torch.Tensor:
    """Per-example gradients, shape (draws, batch, d)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(draws, batch, delta.numel(), generator=gen, dtype=torch.float64)
    eps = torch.randn(draws, batch, 1, generator=gen, dtype=torch.float64) * sigma2**0.5
    return x * (x @ delta.double().unsqueeze(-1) - eps)


def test_the_unbiased_estimators_recover_the_closed_form_noise_scale() -> None:
    delta = torch.full((8,), 0.5)  # |delta|^2 = 2
    truth = linear_regression_truth(delta, sigma2=20.0)  # 8 * 22 / 2 + 1 = 89
    assert truth == pytest.approx(89.0)
    grads = batch_gradients(delta, 20.0, draws=4000, batch=64)
    small = grads[:, :32].mean(1).pow(2).sum(-1)  # |G_small|^2 per draw, 32 examples
    big = grads.mean(1).pow(2).sum(-1)  # |G_big|^2 on the same weights, 64 examples
    g2, trace = noise_estimates(small, big, 32, 64)
    assert float(g2.mean()) == pytest.approx(2.0, rel=0.1)
    assert float(trace.mean()) == pytest.approx(8 * 22 + 2, rel=0.05)
    ema = NoiseScaleEMA(beta=0.99)
    for a, b in zip(g2, trace, strict=True):
        ema.update(a, b)
    assert float(ema.value()) == pytest.approx(truth, rel=0.1)
    # The ratio of means, not the mean of ratios: a single |G|^2 near 0 would wreck the latter.
    assert float(simple_noise_scale(g2, trace).nanmean()) != pytest.approx(truth, rel=0.1)


def test_the_ema_skips_non_finite_measurements_and_debiases() -> None:
    ema = NoiseScaleEMA(beta=0.5)
    assert math.isnan(float(ema.value()))
    ema.update(torch.tensor(2.0), torch.tensor(10.0))
    ema.update(torch.tensor(float("inf")), torch.tensor(1.0))  # an fp16 overflow: skipped
    g2, trace = ema.estimates()
    assert (float(g2), float(trace)) == (2.0, 10.0)  # debiased: the one finite value
    assert float(ema.value()) == 5.0
    with pytest.raises(RecipeConfigError, match="beta"):
        NoiseScaleEMA(beta=1.0)


def test_negative_signal_gives_nan_not_a_negative_batch() -> None:
    assert math.isnan(float(simple_noise_scale(torch.tensor(-1.0), torch.tensor(5.0))))
    assert "no noise scale estimate" in batch_size_advice(64, float("nan"), "linear")


def test_estimators_refuse_batch_sizes_in_the_wrong_order() -> None:
    with pytest.raises(RecipeConfigError, match="b_small < b_big"):
        noise_estimates(torch.tensor(1.0), torch.tensor(1.0), 64, 32)


def test_lr_scaling_rules() -> None:
    assert lr_scaling_rule(torch.optim.SGD) == "linear"
    assert lr_scaling_rule(torch.optim.Adam([torch.zeros(1, requires_grad=True)])) == "sqrt"

    class MyAdam(torch.optim.AdamW):
        pass

    assert lr_scaling_rule(MyAdam) == "sqrt"
    assert scale_lr(0.1, 32, 128, "linear") == pytest.approx(0.4)
    assert scale_lr(0.1, 32, 128, "sqrt") == pytest.approx(0.2)
    with pytest.raises(RecipeConfigError, match="rule"):
        scale_lr(0.1, 32, 128, "cubic")  # type: ignore[arg-type]


def test_advice_names_the_side_of_the_noise_scale_and_the_rule() -> None:
    below = batch_size_advice(64, 900.0, "sqrt", lr=1e-3)
    assert below.startswith("batch 64 is far below the noise scale (≈900)")
    assert "fewer steps" in below
    assert "square root" in below
    above = batch_size_advice(4096, 300.0, "linear", lr=0.1)
    assert "far above" in above
    assert "batch 256" in above
    assert "linearly" in above
    assert "near the noise scale" in batch_size_advice(256, 300.0, "linear")


def test_the_tradeoff_fit_recovers_a_known_curve_and_its_critical_batch() -> None:
    s_min, b_crit = 120.0, 300.0
    sizes = [16, 32, 64, 128, 256, 512, 1024, 2048]
    steps = [s_min * (1 + b_crit / b) * (1.05 if i % 2 else 0.95) for i, b in enumerate(sizes)]
    fit = functional.fit_tradeoff(sizes, steps)
    assert fit.b_crit == pytest.approx(b_crit, rel=0.15)
    assert fit.s_min == pytest.approx(s_min, rel=0.1)
    assert fit.e_min == pytest.approx(fit.s_min * fit.b_crit)
    # On the fitted curve (S/S_min - 1)(E/E_min - 1) = 1 at every batch size.
    for b in sizes:
        s = fit.steps(b)
        assert (s / fit.s_min - 1) * (b * s / fit.e_min - 1) == pytest.approx(1.0)
    # Steps that do not fall with the batch: no speed-up to buy, s_min carries it all.
    flat = fit_tradeoff([16, 64, 256], [100.0, 100.0, 100.0])
    assert flat.e_min == pytest.approx(0.0, abs=1e-9)
    assert flat.b_crit == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("sizes", "steps", "match"),
    [
        ([16, 32], [100.0], "one step count per batch size"),
        ([16, 16], [100.0, 90.0], "two distinct batch sizes"),
        ([16, 32], [100.0, float("inf")], "positive, finite"),
        ([0, 32], [100.0, 50.0], "positive, finite"),
    ],
)
def test_the_tradeoff_fit_refuses_bad_input(sizes: list, steps: list, match: str) -> None:
    with pytest.raises(RecipeConfigError, match=match):
        fit_tradeoff(sizes, steps)


def test_memory_budgets() -> None:
    assert budget_bytes(0.5, 1000) == 500
    assert budget_bytes(2**30, 10) == 2**30
    for bad in (0.0, 1.5, True, 100, "1GB", -1):
        with pytest.raises(RecipeConfigError, match="max_memory"):
            check_max_memory(bad)
