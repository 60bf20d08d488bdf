"""Imbalanced data: class weights, focal loss, distributed resampling samplers, metrics.

Pure formulas (`class_weights`, `focal_loss`, the logit adjustment of `prior`:
`log_prior_offset`, `logit_adjusted_cross_entropy`, `posthoc_adjust`) and their adapters:
`ClassWeighting` (installs the weights in the module's loss, optionally deferred; in
`class_weighting`), `LogitAdjustment` (the log prior in the loss or after training),
`ImbalanceReport` (in `imbalance_report`), the samplers (`ResamplingSampler`,
`ClassBalancedSampler`: identical lists on every rank, so Lightning's distributed wrapper
shards them without overlap), `ResampledDataModule` (SMOTE & co. on the training split
only), and metrics that do not hide a neglected class.
Samplers and resampling need the ``imbalanced`` extra.
"""

from lightning_recipes.imbalance.class_weighting import ClassWeighting
from lightning_recipes.imbalance.datamodule import ResampledDataModule, resample_arrays
from lightning_recipes.imbalance.focal import focal_loss
from lightning_recipes.imbalance.imbalance_report import ImbalanceReport
from lightning_recipes.imbalance.logit_adjustment import LogitAdjustment
from lightning_recipes.imbalance.losses import FocalLoss
from lightning_recipes.imbalance.metrics import (
    BalancedAccuracy,
    GeometricMeanRecall,
    PerClassRecall,
)
from lightning_recipes.imbalance.prior import (
    log_prior_offset,
    logit_adjusted_cross_entropy,
    posthoc_adjust,
)
from lightning_recipes.imbalance.samplers import ClassBalancedSampler, ResamplingSampler
from lightning_recipes.imbalance.weights import (
    WEIGHT_SCHEMES,
    binary_pos_weight,
    class_weights,
    sample_weights,
)

__all__ = [
    "WEIGHT_SCHEMES",
    "BalancedAccuracy",
    "ClassBalancedSampler",
    "ClassWeighting",
    "FocalLoss",
    "GeometricMeanRecall",
    "ImbalanceReport",
    "LogitAdjustment",
    "PerClassRecall",
    "ResampledDataModule",
    "ResamplingSampler",
    "binary_pos_weight",
    "class_weights",
    "focal_loss",
    "log_prior_offset",
    "logit_adjusted_cross_entropy",
    "posthoc_adjust",
    "resample_arrays",
    "sample_weights",
]
