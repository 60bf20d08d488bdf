"""The batch size: the largest that fits (`BatchSizeFinder`) and the one that trains fastest.

- `BatchSizeFinder`: Lightning's, with a memory budget (``max_memory``) and a CPU mode that
  judges trials by peak memory instead of pretending to find an out-of-memory limit (in
  `lightning_recipes.batch_size.batch_size_finder`).
- `GradientNoiseScale`: the simple noise scale B_simple = tr(Σ)/|G|² of McCandlish et al.
  2018 measured during training, and what it implies for the batch size and learning rate
  (in `lightning_recipes.batch_size.gradient_noise_scale`).
- The math, pure: `noise_estimates`, `simple_noise_scale`, `NoiseScaleEMA`,
  `lr_scaling_rule`, `scale_lr` (noise.py); the steps/examples trade-off `fit_tradeoff`,
  `tradeoff_steps` (tradeoff.py); `batch_size_advice` and `noise_scale_figure` (advice.py).
"""

from lightning_recipes.batch_size.advice import batch_size_advice, noise_scale_figure
from lightning_recipes.batch_size.batch_size_finder import BatchSizeFinder
from lightning_recipes.batch_size.gradient_noise_scale import GradientNoiseScale
from lightning_recipes.batch_size.noise import (
    NoiseScaleEMA,
    lr_scaling_rule,
    noise_estimates,
    scale_lr,
    simple_noise_scale,
)
from lightning_recipes.batch_size.tradeoff import TradeoffFit, fit_tradeoff, tradeoff_steps

__all__ = [
    "BatchSizeFinder",
    "GradientNoiseScale",
    "NoiseScaleEMA",
    "TradeoffFit",
    "batch_size_advice",
    "fit_tradeoff",
    "lr_scaling_rule",
    "noise_estimates",
    "noise_scale_figure",
    "scale_lr",
    "simple_noise_scale",
    "tradeoff_steps",
]
