"""Weight initialisation: He/Kaiming, Xavier/Glorot, orthogonal and LSUV.

- `WeightInit`: a callback that initialises the chosen layers when a fit starts (never on
  resume, identical on every rank).
- `init_modules_`, `lsuv_`: the math, pure functions on modules (in
  `lightning_recipes.initialization.schemes`, with the scheme names `SCHEMES`,
  `SCHEME_ALIASES`, `SCHEME_NAMES`).

Until the next release these names are also importable from
``lightning_recipes.regularization``, deprecated.
"""

from lightning_recipes.initialization.schemes import init_modules_, lsuv_
from lightning_recipes.initialization.weight_init import WeightInit

__all__ = ["WeightInit", "init_modules_", "lsuv_"]
