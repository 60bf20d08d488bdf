"""The pure forms of the recipes in one namespace: tensors (or numbers) in and out, no Trainer.

As in ``composer.functional`` and ``torchmetrics.functional``, each name is re-exported
from the pure module of its recipe package, where it is defined and documented: one
implementation (``functional.valley is lr.suggest.valley``). Importing this module needs
the base install only; `explain` needs the ``attribution`` extra (captum) when it is
called, not when it is imported.

- Regularization: `penalty_value`, `add_penalty_grad_`.
- Initialisation: `init_modules_`, `lsuv_`.
- Activation statistics: `activation_stats`, `summarize`.
- Weight averaging: `ema_decay_for`, `ema_horizon`.
- Ensembles: `average_probabilities`, `cosine_cycle_lr`, `cycle_end_epochs`.
- Adversarial robustness: `fgsm`, `pgd`, `project`, `correct_counts`, `robust_accuracy`.
- Augmentation: `mixup`, `cutmix`, `cutmix_box`, `sample_lam`, `mixed_loss`.
- Knowledge distillation: `distillation_loss`.
- Imbalanced data: `class_weights`, `sample_weights`, `binary_pos_weight`, `focal_loss`;
  logit adjustment: `log_prior_offset`, `logit_adjusted_cross_entropy`, `posthoc_adjust`.
- Learning rates: the suggestion rules (`valley`, `steep`, `minimum`, `slide`, `landing`,
  `lightning_steepest`, `all_suggestions`, with `ema_smooth` and `prepare_curve`) and the
  schedules' factors (`warmup_cosine_factor`, `warmup_linear_factor`).
- Gradients: `grad_stats`, `step_norms`, `tensor_norms`, `combine_norms`, `dense_grads`,
  `zero_fraction`, `clip_by_norm_`, `clip_by_value_`, `adaptive_clip_`, `unitwise_norm`,
  `zero_if_`.
- Transfer learning: `select_backbone`, `layer_groups`, `layer_decay_lrs`, `spread_lrs`,
  `unfrozen_at`.
- Early stopping: `improves`, `judge`.
- Attribution: `explain`, `feature_importance`.
- Batch size: `noise_estimates`, `simple_noise_scale`, `lr_scaling_rule`, `scale_lr`,
  `fit_tradeoff`, `tradeoff_steps`.

Examples:
    >>> import torch
    >>> from lightning_recipes import functional as LF
    >>> LF.class_weights([90, 10])  # "balanced": n_samples / (n_classes * n_c)
    tensor([0.5556, 5.0000])
    >>> LF.penalty_value([torch.tensor([1.0, -2.0])], l1=0.0, l2=0.5)
    tensor(2.5000)
    >>> LF.ema_decay_for(1_000)  # the EMA decay WeightAverage picks for 1000 steps
    0.99
    >>> LF.cosine_cycle_lr(step=5, cycle_length=10, lr_max=0.1)
    0.05
"""

from lightning_recipes.activations.stats import activation_stats, summarize
from lightning_recipes.attribution.explain import explain
from lightning_recipes.attribution.explanation import feature_importance
from lightning_recipes.augmentation.mixing import cutmix, cutmix_box, mixed_loss, mixup, sample_lam
from lightning_recipes.averaging.ema import ema_decay_for, ema_horizon
from lightning_recipes.batch_size.noise import (
    lr_scaling_rule,
    noise_estimates,
    scale_lr,
    simple_noise_scale,
)
from lightning_recipes.batch_size.tradeoff import fit_tradeoff, tradeoff_steps
from lightning_recipes.distillation.losses import distillation_loss
from lightning_recipes.ensembles.average import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.finetuning.groups import (
    layer_decay_lrs,
    layer_groups,
    select_backbone,
    spread_lrs,
)
from lightning_recipes.finetuning.unfreeze_schedule import unfrozen_at
from lightning_recipes.gradients.clipping import (
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    unitwise_norm,
    zero_if_,
)
from lightning_recipes.gradients.norms import (
    combine_norms,
    dense_grads,
    grad_stats,
    step_norms,
    tensor_norms,
    zero_fraction,
)
from lightning_recipes.imbalance.focal import focal_loss
from lightning_recipes.imbalance.prior import (
    log_prior_offset,
    logit_adjusted_cross_entropy,
    posthoc_adjust,
)
from lightning_recipes.imbalance.weights import binary_pos_weight, class_weights, sample_weights
from lightning_recipes.initialization.schemes import init_modules_, lsuv_
from lightning_recipes.lr.result import all_suggestions
from lightning_recipes.lr.schedules import warmup_cosine_factor, warmup_linear_factor
from lightning_recipes.lr.suggest import (
    ema_smooth,
    landing,
    lightning_steepest,
    minimum,
    prepare_curve,
    slide,
    steep,
    valley,
)
from lightning_recipes.regularization.penalty import add_penalty_grad_, penalty_value
from lightning_recipes.robustness.attacks import fgsm, pgd, project
from lightning_recipes.robustness.evaluate import correct_counts, robust_accuracy
from lightning_recipes.stopping.rules import improves, judge

__all__ = [
    # batch size
    "fit_tradeoff",
    "lr_scaling_rule",
    "noise_estimates",
    "scale_lr",
    "simple_noise_scale",
    "tradeoff_steps",
    # regularization
    "add_penalty_grad_",
    "penalty_value",
    # initialization
    "init_modules_",
    "lsuv_",
    # activations
    "activation_stats",
    "summarize",
    # averaging
    "ema_decay_for",
    "ema_horizon",
    # ensembles
    "average_probabilities",
    "cosine_cycle_lr",
    "cycle_end_epochs",
    # robustness
    "correct_counts",
    "fgsm",
    "pgd",
    "project",
    "robust_accuracy",
    # augmentation
    "cutmix",
    "cutmix_box",
    "mixed_loss",
    "mixup",
    "sample_lam",
    # distillation
    "distillation_loss",
    # imbalance
    "binary_pos_weight",
    "class_weights",
    "focal_loss",
    "log_prior_offset",
    "logit_adjusted_cross_entropy",
    "posthoc_adjust",
    "sample_weights",
    # lr
    "all_suggestions",
    "ema_smooth",
    "landing",
    "lightning_steepest",
    "minimum",
    "prepare_curve",
    "slide",
    "steep",
    "valley",
    "warmup_cosine_factor",
    "warmup_linear_factor",
    # gradients
    "adaptive_clip_",
    "clip_by_norm_",
    "clip_by_value_",
    "combine_norms",
    "dense_grads",
    "grad_stats",
    "step_norms",
    "tensor_norms",
    "unitwise_norm",
    "zero_fraction",
    "zero_if_",
    # finetuning
    "layer_decay_lrs",
    "layer_groups",
    "select_backbone",
    "spread_lrs",
    "unfrozen_at",
    # stopping
    "improves",
    "judge",
    # attribution
    "explain",
    "feature_importance",
]
