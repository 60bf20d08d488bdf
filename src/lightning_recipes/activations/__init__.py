"""Activation statistics: dead and saturated units, histograms over time.

- `ActivationMonitor`: a callback recording per-layer mean, std, dead and saturated
  fractions every N steps, with hooks on those steps only, and fastai's "colourful
  dimension" figure at fit end.
- `activation_stats`, `summarize`: the math, pure functions (in
  `lightning_recipes.activations.stats`; the figure is `lightning_recipes.activations.figure`).

Until the next release these names are also importable from
``lightning_recipes.regularization``, deprecated.
"""

from lightning_recipes.activations.activation_monitor import ActivationMonitor
from lightning_recipes.activations.stats import activation_stats, summarize

__all__ = ["ActivationMonitor", "activation_stats", "summarize"]
