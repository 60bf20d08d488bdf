"""Knowledge distillation (Hinton et al. 2015): a student trained on a frozen teacher's logits.

- `distillation_loss`: ``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE``,
  the pure function (and `soft_target_loss`, its teacher term).
- `Distillation`: the callback; the module's own ``F.cross_entropy`` becomes that loss,
  the teacher sees the inputs the student sees. See ``docs/recipes/distillation.md``.
"""

from lightning_recipes.distillation.distillation import Distillation
from lightning_recipes.distillation.losses import distillation_loss, soft_target_loss
from lightning_recipes.distillation.teacher import build_teacher

__all__ = ["Distillation", "build_teacher", "distillation_loss", "soft_target_loss"]
