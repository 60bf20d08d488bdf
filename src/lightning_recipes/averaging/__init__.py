"""Weight averaging: SWA and EMA of the weights, on Lightning's `WeightAveraging`.

- `WeightAverage`: SWA or EMA with Lightning's defects fixed (validation on the live
  weights until the average starts, BatchNorm statistics recomputed, resume, the EMA's
  decay chosen from the run's length). Its ``kind`` argument is typed by
  `lightning_recipes.averaging.weight_average.AverageKind`.
- `ema_decay_for`, `ema_horizon`: the math, pure (in `lightning_recipes.averaging.ema`).

Until the next release `WeightAverage` and `AverageKind` are also importable from
``lightning_recipes.ensembles``, deprecated.
"""

from lightning_recipes.averaging.ema import ema_decay_for, ema_horizon
from lightning_recipes.averaging.weight_average import WeightAverage

__all__ = ["WeightAverage", "ema_decay_for", "ema_horizon"]
