"""ClassWeighting: count the training labels once, install class weights in the module's loss."""

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes._rng import dataloader_generators, preserved_rng
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error
from lightning_recipes.imbalance.labels import dataset_labels, iterate_labels
from lightning_recipes.imbalance.losses import FocalLoss
from lightning_recipes.imbalance.weights import WEIGHT_SCHEMES, class_weights

__all__ = ["LOSS_ATTRIBUTES", "ClassWeighting", "binary_pos_weight"]

LOSS_ATTRIBUTES = ("loss_fn", "criterion", "loss")
"""Module attributes searched for the loss, in this order (unless ``loss_attr`` is given)."""

Kind = Literal["multiclass", "binary"]


def binary_pos_weight(
    positives: npt.ArrayLike, total: int, scheme: str | Mapping[int, float], beta: float
) -> torch.Tensor:
    """``pos_weight`` for BCE-style losses: the positive class's weight over the negative's.

    Args:
        positives: Number of positives per label (one label for binary tasks).
        total: Number of samples.
        scheme: A scheme of `class_weights`.
        beta: Its ``beta``.

    Returns:
        One ratio per label; ``"balanced"`` gives ``negatives / positives``.

    Examples:
        >>> binary_pos_weight([10, 50], 100, "balanced", 0.999).tolist()
        [9.0, 1.0]
    """
    ratios = []
    for count in np.atleast_1d(np.asarray(positives, dtype=np.int64)):
        weights = class_weights([total - int(count), int(count)], scheme, beta=beta)
        ratios.append(float(weights[1] / weights[0]))
    return torch.tensor(ratios, dtype=torch.float32)


class ClassWeighting(Callback):
    """Weight the loss by class so that rare classes count as much as frequent ones.

    When training starts, the callback counts the training labels, computes class
    weights (`class_weights`: ``"balanced"`` as scikit-learn, ``"effective_number"`` of
    Cui et al. 2019, ``"inverse_sqrt"``, or an explicit mapping) and installs them in the
    module's loss, found as the ``loss_fn`` / ``criterion`` / ``loss`` attribute (or
    ``loss_attr``):

    * ``CrossEntropyLoss``, ``NLLLoss`` and `FocalLoss` (multi-class): ``weight``;
    * ``BCEWithLogitsLoss`` and binary/multi-label `FocalLoss`: ``pos_weight`` (the
      positive class's weight over the negative's, per label).

    The labels are read from the training dataset's ``targets`` / ``labels`` / ``y``
    attribute, a ``TensorDataset``'s last tensor, or ``labels=``; only if none exists
    does the callback iterate the training dataloader once (with the random state
    preserved, so training order is unaffected). Under DDP the counts are gathered from
    every rank: identical counts (every rank holds the whole dataset) are used as they
    are, different ones (each rank holds a shard) are summed, so every rank installs the
    same weights. The weights are installed as a non-persistent buffer on the module's
    device (the model's checkpoint does not change shape); they are this callback's
    state, so a resumed run reinstalls them without counting again.

    Put ClassWeighting before LRFinder in ``callbacks`` so the range test sees the
    weighted loss.

    Args:
        scheme: ``"balanced"``, ``"effective_number"``, ``"inverse_sqrt"`` or a mapping
            ``{class_id: weight}``.
        beta: The effective-number ``beta`` in [0, 1).
        labels: The training labels, when the dataset does not expose them.
        loss_attr: The name of the module attribute holding the loss.
        num_classes: Number of classes; by default the module's ``num_classes``
            attribute or hparam, else the largest label + 1.
        zero_count: ``"error"`` or ``"zero"`` (classes without samples get weight 0).
        log: Log the weights as ``class_weight/<class>`` to the loggers.

    Attributes:
        counts: Samples per class (for BCE-style losses: ``[negatives, positives]`` per
            label), None before training starts.
        weights: The installed weights (or ``pos_weight``), None before.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import Classifier, mlp
        >>> weighting = ClassWeighting("balanced")
        >>> model = Classifier(mlp(64, [16]), num_classes=10)
        >>> trainer = Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0,
        ...                   callbacks=[weighting], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, DigitsDataModule(imbalance={0: 0.1}))
        >>> bool(model.loss_fn.weight[0] > 5 * model.loss_fn.weight[1])
        True
    """

    def __init__(
        self,
        scheme: str | Mapping[int, float] = "balanced",
        *,
        beta: float = 0.999,
        labels: npt.ArrayLike | torch.Tensor | None = None,
        loss_attr: str | None = None,
        num_classes: int | None = None,
        zero_count: Literal["error", "zero"] = "error",
        log: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(scheme, str) and scheme not in WEIGHT_SCHEMES:
            raise choice_error("scheme", scheme, WEIGHT_SCHEMES)
        if not 0.0 <= beta < 1.0:
            raise config_error("beta", beta, "Pass a value in [0, 1), e.g. 0.999.")
        if zero_count not in ("error", "zero"):
            raise choice_error("zero_count", zero_count, ("error", "zero"))
        if num_classes is not None and num_classes < 2:
            raise config_error("num_classes", num_classes, "Pass 2 or more classes.")
        self.scheme = scheme
        self.beta = beta
        self.labels = None if labels is None else _labels_array(labels)
        self.loss_attr = loss_attr
        self.num_classes = num_classes
        self.zero_count = zero_count
        self.log = log
        self.counts: list[Any] | None = None
        self.weights: torch.Tensor | None = None

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loss, name, kind = self._find_loss(pl_module)
        if self.weights is None:  # not restored from a checkpoint
            self.weights = self._compute(trainer, pl_module, kind)
        _install(loss, name, self.weights.to(pl_module.device))
        self._log(trainer, name)

    # ------------------------------------------------------------ the loss

    def _find_loss(self, pl_module: LightningModule) -> tuple[nn.Module, str, Kind]:
        names = [self.loss_attr] if self.loss_attr else list(LOSS_ATTRIBUTES)
        for attr in names:
            loss = getattr(pl_module, attr, None)
            if isinstance(loss, nn.Module):
                return (loss, *_target_of(loss, attr))
        modules = ", ".join(name for name, _ in pl_module.named_children()) or "none"
        raise RecipeConfigError(
            f"ClassWeighting found no loss module in {type(pl_module).__name__}: it looks for "
            f"{' / '.join(names)} (an nn.Module such as CrossEntropyLoss). Child modules: "
            f"{modules}. Store the loss as self.loss_fn = nn.CrossEntropyLoss() and call it in "
            "training_step, or pass loss_attr='<attribute>'."
        )

    # ------------------------------------------------------------ counting

    def _local_labels(self, trainer: Trainer) -> tuple[npt.NDArray[np.int64], bool]:
        """This rank's labels and whether they came from the whole dataset (no iteration)."""
        loader = trainer.train_dataloader
        if self.labels is not None:
            dataset = getattr(loader, "dataset", None)
            size = len(dataset) if hasattr(dataset, "__len__") else None  # type: ignore[arg-type]
            if size is not None and size != len(self.labels):
                raise config_error(
                    "labels",
                    f"<{len(self.labels)} labels>",
                    f"Pass one label per training sample: the training dataset has {size}.",
                )
            return self.labels, True
        found = dataset_labels(getattr(loader, "dataset", None))
        if found is not None:
            return found, True
        if loader is None:
            raise RecipeConfigError("ClassWeighting: the Trainer has no training dataloader.")
        helpers.rank_zero_info(
            "ClassWeighting: the training dataset exposes no targets/labels/y; counting the "
            "labels with one pass over the training dataloader."
        )
        with preserved_rng(dataloader_generators(loader)):
            parts = [labels.detach().cpu() for labels in _progress(trainer, iterate_labels(loader))]
        return torch.cat(parts).numpy().astype(np.int64), False

    def _compute(self, trainer: Trainer, pl_module: LightningModule, kind: Kind) -> torch.Tensor:
        labels, whole = self._local_labels(trainer)
        device = pl_module.device
        if kind == "binary":
            matrix = labels.reshape(len(labels), -1)
            local = torch.tensor(
                np.concatenate([[len(labels)], matrix.sum(axis=0)]), dtype=torch.long
            )
        else:
            classes = self._classes(trainer, pl_module, labels)
            if labels.size and (labels.min() < 0 or labels.max() >= classes):
                raise config_error(
                    "num_classes",
                    classes,
                    f"Labels range from {labels.min()} to {labels.max()}: pass num_classes=.",
                )
            local = torch.as_tensor(np.bincount(labels, minlength=classes), dtype=torch.long)
        counts = _combine(trainer, local.to(device), whole).cpu()
        if kind == "binary":
            total, positives = int(counts[0]), counts[1:].numpy()
            self.counts = [[total - int(p), int(p)] for p in positives]
            return binary_pos_weight(positives, total, self.scheme, self.beta)
        self.counts = counts.tolist()
        return class_weights(counts, self.scheme, beta=self.beta, zero_count=self.zero_count)

    def _classes(
        self, trainer: Trainer, pl_module: LightningModule, labels: npt.NDArray[np.int64]
    ) -> int:
        if self.num_classes is not None:
            return self.num_classes
        for source in (pl_module, pl_module.hparams):
            value = getattr(source, "num_classes", None)
            if isinstance(value, int) and value >= 2:
                return value
        largest = torch.tensor(int(labels.max()) if labels.size else 0, device=pl_module.device)
        return int(helpers.gather(trainer, largest).max()) + 1

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
    def state_dict(self) -> dict[str, Any]:
        weights = None if self.weights is None else self.weights.tolist()
        return {"counts": self.counts, "weights": weights}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.counts = state_dict["counts"]
        weights = state_dict["weights"]
        self.weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)


def _labels_array(labels: npt.ArrayLike | torch.Tensor) -> npt.NDArray[np.int64]:
    array = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim not in (1, 2) or array.size == 0:
        raise config_error("labels", f"<array of shape {array.shape}>", "Pass 1-D class ids.")
    if array.dtype.kind not in "iub":
        raise config_error("labels", f"<{array.dtype} array>", "Pass integer class ids.")
    return array.astype(np.int64, copy=False)


def _target_of(loss: nn.Module, attr: str) -> tuple[str, Kind]:
    """Which buffer of the loss receives the weights, and for which kind of labels."""
    if isinstance(loss, FocalLoss):
        return "weight", "multiclass" if loss.task == "multiclass" else "binary"
    if isinstance(loss, nn.CrossEntropyLoss | nn.NLLLoss):
        return "weight", "multiclass"
    if isinstance(loss, nn.BCEWithLogitsLoss):
        return "pos_weight", "binary"
    raise RecipeConfigError(
        f"ClassWeighting cannot weight {attr} = {type(loss).__name__}: supported losses are "
        "CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss and lightning_recipes FocalLoss."
    )


def _install(loss: nn.Module, name: str, weights: torch.Tensor) -> None:
    """Replace ``loss.<name>`` by a non-persistent buffer holding ``weights``."""
    if hasattr(loss, name):
        delattr(loss, name)
    # Non-persistent: the model's state_dict keeps its shape whether or not the callback
    # ran; the weights are restored from the callback's own state on resume.
    loss.register_buffer(name, weights, persistent=False)


def _combine(trainer: Trainer, local: torch.Tensor, whole: bool) -> torch.Tensor:
    """The same counts on every rank: equal counts kept, differing (sharded) ones summed."""
    if trainer.world_size == 1:
        return local
    gathered = helpers.gather(trainer, local)
    if whole and bool(torch.all(gathered == gathered[0])):
        return gathered[0]
    return gathered.sum(dim=0)


def _progress(trainer: Trainer, items: Any) -> Any:
    """Wrap an iterable in a tqdm bar on rank zero when progress bars are on."""
    if trainer.global_rank != 0 or trainer.progress_bar_callback is None:
        return items
    from tqdm import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

    return tqdm(items, desc="ClassWeighting: counting labels", leave=False)
