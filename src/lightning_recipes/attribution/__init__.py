"""Attribution with captum, correct in every Trainer stage (needs the ``attribution`` extra).

`explain` runs one captum method on a batch of inputs (eval mode, inference mode and
device handled, completeness gap measured); the `Attribution` callback explains a fixed
sample during and after training and writes tables, heatmaps and tensors.
"""

from lightning_recipes.attribution.attribution import Attribution
from lightning_recipes.attribution.explain import METHODS, Explanation, explain
from lightning_recipes.attribution.explanation import feature_importance

__all__ = ["METHODS", "Attribution", "Explanation", "explain", "feature_importance"]
