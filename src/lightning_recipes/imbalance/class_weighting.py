"""ClassWeighting: count the training labels once, install class weights in the module's loss."""

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.loss import loss_module, optional_loss_module
from lightning_recipes._core.loss_path import LossRecipe
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, int_at_least, is_real, non_negative_int
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.imbalance.counting import combine_counts, local_labels, multiclass_counts
from lightning_recipes.imbalance.labels import (
    LabelKey,
    binary_matrix,
    check_label_key,
    kind_of_labels,
    labels_array,
)
from lightning_recipes.imbalance.labels import LabelKind as Kind
from lightning_recipes.imbalance.loss_target import install_weights, weight_target
from lightning_recipes.imbalance.weights import binary_pos_weight, check_scheme, class_weights

__all__ = ["ClassWeighting"]

"""Module attributes searched for the loss, in this order (unless ``loss_attr`` is given)."""


class ClassWeighting(Recipe, LossRecipe):
    """Weight the loss by class so that rare classes count as much as frequent ones.

    When training starts, the callback counts the training labels, computes class
    weights (`class_weights`: ``"balanced"`` as scikit-learn, ``"effective_number"`` of
    Cui et al. 2019, ``"inverse_sqrt"``, or an explicit mapping) and applies them to the
    training loss through the core's loss path, whichever way the module computes it:

    * a plain call in ``training_step`` (``F.cross_entropy(logits, y)``, ``F.nll_loss``
      after ``log_softmax``, ``F.binary_cross_entropy_with_logits``, or a local
      ``nn.CrossEntropyLoss()``): the call whose target is the batch's labels gets
      ``weight=`` (``pos_weight=`` for BCE); validation, test and predict are unchanged;
    * a loss attribute (``loss_fn`` / ``criterion`` / ``loss``, or ``loss_attr``):
      ``CrossEntropyLoss``, ``NLLLoss`` and `FocalLoss` (multi-class) get them installed
      as ``weight``, ``BCEWithLogitsLoss`` and binary/multi-label `FocalLoss` as
      ``pos_weight`` (the positive class's weight over the negative's, per label); the
      loss object keeps them, so a validation loss computed with it is weighted too.

    Both give the same training, to the last bit (tested).

    The labels are ``labels=``, or read from the training dataset's ``targets`` /
    ``labels`` / ``y`` attribute or a ``TensorDataset``'s label tensor; only if none
    exists does the callback iterate the training dataloader once (with the random state
    preserved, so training order is unaffected). Which tensor of a batch (or of a
    ``TensorDataset``) is the label is never guessed: it is ``label_key`` (an index into
    tuple/list batches, a key into dict batches), the second element of an
    ``(inputs, labels)`` pair, or the one ``label`` / ``labels`` / ``y`` / ``target`` /
    ``targets`` key of a dict batch; batches such as ``(x, y, sample_weight)`` without
    ``label_key`` are refused before training starts.

    What is counted: integer class ids per element (targets equal to the loss's
    ``ignore_index`` are skipped); one-hot or probability targets (floating rows over
    dimension 1, as ``CrossEntropyLoss`` takes them) by their argmax, so each sample
    counts once for its most probable class; for BCE-style losses, targets in [0, 1]
    with positives above 0.5, one column per label (last dimension).

    Under DDP the counts are gathered from every rank: identical counts (every rank holds
    the whole dataset) are used as they are, different ones (each rank holds a shard) are
    summed, so every rank installs the same weights. The weights are installed as a
    non-persistent buffer on the module's device (the model's checkpoint does not change
    shape); they are this callback's state (under a ``state_key`` built from ``scheme``,
    ``beta``, ``loss_attr`` and ``label_key``, so two instances keep theirs apart), so a
    resumed run reinstalls them without counting again.

    **Deferred re-weighting** (DRW, Cao et al. 2019): with ``start_epoch=k`` the loss is
    unweighted (uniform weights) for epochs ``0 .. k-1`` and weighted from epoch ``k`` on
    (the paper trains 200 epochs and re-weights from 160). The representation learns from
    the natural distribution first, and re-weighting then moves the decision boundaries;
    on long-tailed data this beats weighting from the start, which can hurt (see the
    imbalanced-data recipe page). The counts and weights are computed when training
    starts; the weights reach the loss (the path and any loss object) at the start of
    epoch ``k``, and a resumed run installs them by its epoch, so it weights exactly the
    steps an uninterrupted run does.

    With `LogitAdjustment` in the same Trainer both correct for the same class prior:
    see `LogitAdjustment` for what is defined (they compose) and what it warns about.

    ClassWeighting puts its weights in place before the LR finder's range test, in any
    callback order (a deferred one leaves the range test unweighted, as its first epochs).

    Args:
        scheme: ``"balanced"``, ``"effective_number"``, ``"inverse_sqrt"`` or a mapping
            ``{class_id: weight}``.
        beta: The effective-number ``beta`` in [0, 1).
        labels: The training labels, when the dataset does not expose them (class ids,
            one-hot/probability rows, or 0/1 targets for BCE-style losses).
        label_key: Where the label is in a batch: its index in a tuple/list batch (e.g.
            ``1`` for ``(x, y, sample_weight)``; also its position among a
            ``TensorDataset``'s tensors) or its key in a dict batch. None reads
            ``(inputs, labels)`` pairs and dicts with exactly one label-like key.
        loss_attr: The name of the module attribute holding the loss.
        num_classes: Number of classes; by default the module's ``num_classes``
            attribute or hparam, else the largest label + 1.
        zero_count: ``"error"`` or ``"zero"`` (classes without samples get weight 0).
        log: Log the weights as ``class_weight/<class>`` to the loggers.
        start_epoch: The 0-based epoch from which the loss is weighted (deferred
            re-weighting); 0 weights every step.

    Attributes:
        counts: Samples per class (for BCE-style losses: ``[negatives, positives]`` per
            label), None before training starts.
        weights: The weights (or ``pos_weight``), None before training starts; in the
            loss from ``start_epoch`` on.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> weighting = ClassWeighting("balanced")
        >>> model = Classifier(MLP(64, [16]), num_classes=10)
        >>> trainer = Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0,
        ...                   callbacks=[weighting], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, DigitsDataModule(imbalance={0: 0.1}))
        >>> bool(model.loss_fn.weight[0] > 5 * model.loss_fn.weight[1])
        True
    """

    identity = ("scheme=_scheme_key", "beta", "loss_attr", "label_key")

    def __init__(
        self,
        scheme: str | Mapping[int, float] = "balanced",
        *,
        beta: float = 0.999,
        labels: npt.ArrayLike | torch.Tensor | None = None,
        label_key: int | str | None = None,
        loss_attr: str | None = None,
        num_classes: int | None = None,
        zero_count: Literal["error", "zero"] = "error",
        log: bool = True,
        start_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.scheme = check_scheme(scheme)
        if not is_real(beta) or not 0.0 <= beta < 1.0:
            raise config_error("beta", beta, "Pass a value in [0, 1), e.g. 0.999.")
        if zero_count not in ("error", "zero"):
            raise choice_error("zero_count", zero_count, ("error", "zero"))
        if num_classes is not None:
            int_at_least("num_classes", num_classes, 2, "Pass an integer, 2 or more classes.")
        if loss_attr is not None and (
            not isinstance(loss_attr, str) or not loss_attr.isidentifier()
        ):
            raise config_error(
                "loss_attr", loss_attr, "Pass the name of the module attribute holding the loss."
            )
        flag("log", log)
        self.start_epoch = non_negative_int(
            "start_epoch",
            start_epoch,
            "Pass the 0-based epoch from which to weight the loss (deferred re-weighting: "
            "e.g. 160 of 200 epochs); 0 weights from the first step.",
        )
        self.beta = float(beta)
        self.labels = None if labels is None else labels_array(labels)
        self.label_key: LabelKey = check_label_key(label_key)
        self.loss_attr = loss_attr
        self.num_classes = num_classes
        self.zero_count = zero_count
        self.log = log
        self.counts: list[Any] | None = None
        self.weights: torch.Tensor | None = None
        self._kind: Kind | None = None
        self._prepared = False
        self._active = False

    @property
    def _scheme_key(self) -> str | dict[int, float]:
        return dict(self.scheme) if isinstance(self.scheme, Mapping) else self.scheme

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._prepared = self._active = False
        if stage == "fit":
            self._find_loss(pl_module)  # refuse an unweightable loss before training
            path = self.attach_loss_path(pl_module, self.label_key)
            found = loss_module(pl_module, self.loss_attr)
            if found is not None and not isinstance(found[0], nn.modules.loss._Loss):
                path.hook(found[0])  # FocalLoss or a custom loss: the module door

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.prepare_training(trainer, pl_module)

    def prepare_training(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Count the labels (once) and install the weights in the loss (once per fit).

        Runs when training starts, or earlier when another recipe must see the weighted
        loss first (the LR finder calls it before its range test: ``PreparesTraining``
        in the contract), so callback order does not matter. Before ``start_epoch`` the
        weights are computed but not installed.
        """
        if self._prepared:
            return
        self._prepared = True
        loss, _, kind = self._find_loss(pl_module)
        if self.weights is None:  # not restored from a checkpoint
            ignore = getattr(loss, "ignore_index", -100) if kind != "binary" else None
            self.weights = self._compute(
                trainer, pl_module, kind, ignore if isinstance(ignore, int) else None
            )
        if trainer.current_epoch >= self.start_epoch:
            self._install(trainer, pl_module)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._prepared and not self._active and trainer.current_epoch >= self.start_epoch:
            self._install(trainer, pl_module)  # deferred re-weighting starts now

    def _install(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Put the weights in the loss object (if any) and the module's loss path."""
        self._active = True
        loss, name, _ = self._find_loss(pl_module)
        assert self.weights is not None
        weights = self.weights.to(pl_module.device)
        installed = None
        if loss is not None:
            install_weights(loss, name, weights)
            installed = (loss, name)
        if self.loss_path is None:  # called before setup (a range test of another recipe)
            self.attach_loss_path(pl_module, self.label_key)
        assert self.loss_path is not None
        if self._kind == "binary":
            self.loss_path.set_class_weights(self.label_key, None, weights, installed)
        else:
            pos_weight = self._pos_weight()
            self.loss_path.set_class_weights(self.label_key, weights, pos_weight, installed)
        self._log(trainer, name if loss is not None else "weight")

    # ------------------------------------------------------------ the loss

    def _find_loss(self, pl_module: LightningModule) -> tuple[nn.Module | None, str, Kind | None]:
        """The loss object to install the weights in (None: the functional door only)."""
        found = optional_loss_module(pl_module, self.loss_attr)
        if found is None:
            return None, "", None
        loss, attr = found
        target = weight_target(loss, attr)
        if target is None:  # a custom module: the loss functions inside it are weighted
            return None, "", None
        self._kind = target[1]
        return loss, *target

    def _pos_weight(self) -> torch.Tensor | None:
        """``pos_weight`` for a BCE call on two-class labels counted as class ids."""
        if (
            self.counts is None
            or len(self.counts) != 2
            or not all(isinstance(c, int) for c in self.counts)
        ):
            return None
        negatives, positives = self.counts
        return binary_pos_weight([positives], negatives + positives, self.scheme, self.beta)

    # ------------------------------------------------------------ counting

    def _compute(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        kind: Kind | None,
        ignore_index: int | None,
    ) -> torch.Tensor:
        labels, whole = local_labels(trainer, self.labels, self.label_key, "ClassWeighting")
        kind = self._kind = kind or kind_of_labels(labels)
        if kind == "binary":
            matrix = binary_matrix(labels)
            local = torch.tensor(
                np.concatenate([[len(matrix)], matrix.sum(axis=0)]), dtype=torch.long
            )
            counts = combine_counts(trainer, local.to(pl_module.device), whole).cpu()
            total, positives = int(counts[0]), counts[1:].numpy()
            self.counts = [[total - int(p), int(p)] for p in positives]
            return binary_pos_weight(positives, total, self.scheme, self.beta)
        counts = multiclass_counts(
            trainer,
            pl_module,
            labels,
            whole,
            num_classes=self.num_classes,
            ignore_index=ignore_index,
        )
        self.counts = counts.tolist()
        return class_weights(counts, self.scheme, beta=self.beta, zero_count=self.zero_count)

    # ------------------------------------------------------------ reporting and state

    def _log(self, trainer: Trainer, name: str) -> None:
        if not self.log or trainer.global_rank != 0 or self.weights is None:
            return
        metrics = {
            f"class_weight/{i}": float(w) for i, w in enumerate(self.weights.reshape(-1).tolist())
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        shown = ", ".join(f"{w:.3g}" for w in self.weights.reshape(-1).tolist())
        helpers.rank_zero_info(f"ClassWeighting: {name} = [{shown}] from counts {self.counts}")

    @override
    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks") or {}
        if self.state_key not in states and "ClassWeighting" in states:
            # Written before state_key held the arguments: the class name was the key.
            self.load_state_dict(states["ClassWeighting"])

    @override
    def run_summary(self) -> RecipeSummary:
        """The counts and the weights installed (for the run report)."""
        facts: dict[str, Any] = {
            "scheme": self.scheme if isinstance(self.scheme, str) else "mapping"
        }
        if self.start_epoch:
            facts["weighted from epoch"] = self.start_epoch
        if self.counts is not None:
            facts["training counts"] = self.counts
        if self.weights is not None:
            facts["weights installed"] = [round(float(w), 4) for w in self.weights.reshape(-1)]
        notes = (
            [] if self.weights is not None else ["No weights installed (training never started)."]
        )
        return RecipeSummary("Class weighting", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        weights = None if self.weights is None else self.weights.tolist()
        return {"counts": self.counts, "weights": weights, "kind": self._kind}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.counts = state_dict["counts"]
        weights = state_dict["weights"]
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        self._kind = state_dict.get("kind")
