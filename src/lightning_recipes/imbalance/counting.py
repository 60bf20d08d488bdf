"""Counting the training labels once, the same on every rank: shared by the imbalance recipes.

`ClassWeighting` (class weights) and `LogitAdjustment` (the class prior) count the same
way: the labels given, else the training dataset's label attribute, else one pass over
the training dataloader with the random state preserved; under DDP the counts are
gathered from every rank, identical counts kept (every rank holds the whole dataset) and
different ones summed (each rank holds a shard).
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import LightningModule, Trainer

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.rng import dataloader_generators, preserved_rng
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.imbalance.labels import (
    LabelKey,
    dataset_labels,
    iterate_labels,
    multiclass_ids,
)

__all__ = ["combine_counts", "local_labels", "multiclass_counts", "number_of_classes"]


def local_labels(
    trainer: Trainer, labels: npt.NDArray[Any] | None, label_key: LabelKey, owner: str
) -> tuple[npt.NDArray[Any], bool]:
    """This rank's training labels, and whether they are the whole dataset's.

    Args:
        trainer: The Trainer, its training dataloader ready.
        labels: The labels the user passed (``labels=``), or None.
        label_key: Where the label is in a batch or a ``TensorDataset``.
        owner: The recipe, for messages.

    Returns:
        The labels and True when they came without iterating (a whole dataset's), False
        when counted from this rank's batches (a shard under DDP).

    Raises:
        RecipeConfigError: If ``labels`` has another length than the training dataset,
            or there is no training dataloader or batch.
    """
    loader = trainer.train_dataloader
    if labels is not None:
        dataset = getattr(loader, "dataset", None)
        size = len(dataset) if hasattr(dataset, "__len__") else None  # type: ignore[arg-type]
        if size is not None and size != len(labels):
            raise config_error(
                "labels",
                f"<{len(labels)} labels>",
                f"Pass one label per training sample: the training dataset has {size}.",
            )
        return labels, True
    found = dataset_labels(getattr(loader, "dataset", None), label_key)
    if found is not None:
        return found, True
    if loader is None:
        raise RecipeConfigError(f"{owner}: the Trainer has no training dataloader.")
    helpers.rank_zero_info(
        f"{owner}: the training dataset exposes no targets/labels/y; counting the labels "
        "with one pass over the training dataloader."
    )
    with preserved_rng(dataloader_generators(loader)):
        parts = [
            batch_labels.detach().cpu()
            for batch_labels in helpers.progress(
                trainer, iterate_labels(loader, label_key), f"{owner}: counting labels"
            )
        ]
    if not parts:
        raise RecipeConfigError(f"{owner}: the training dataloader yielded no batch.")
    joined = torch.cat(parts)
    if joined.is_floating_point() and joined.dtype not in (torch.float32, torch.float64):
        joined = joined.float()  # NumPy has no bfloat16
    return joined.numpy(), False


def number_of_classes(
    trainer: Trainer,
    pl_module: LightningModule,
    ids: npt.NDArray[np.int64],
    width: int | None,
    num_classes: int | None,
) -> int:
    """``num_classes``, else the module's ``num_classes``, else the widest label + 1 (all ranks)."""
    if num_classes is not None:
        return num_classes
    for source in (pl_module, pl_module.hparams):
        value = getattr(source, "num_classes", None)
        if isinstance(value, int) and value >= 2:
            return value
    if width is not None:  # probability rows: their width, the same on every rank
        return width
    largest = torch.tensor(int(ids.max()) if ids.size else 0, device=pl_module.device)
    return int(helpers.gather(trainer, largest).max()) + 1


def combine_counts(trainer: Trainer, local: torch.Tensor, whole: bool) -> torch.Tensor:
    """The same counts on every rank: equal counts kept, differing (sharded) ones summed."""
    if trainer.world_size == 1:
        return local
    gathered = helpers.gather(trainer, local)
    if whole and bool(torch.all(gathered == gathered[0])):
        return gathered[0]
    return gathered.sum(dim=0)


def multiclass_counts(
    trainer: Trainer,
    pl_module: LightningModule,
    labels: npt.NDArray[Any],
    whole: bool,
    *,
    num_classes: int | None,
    ignore_index: int | None,
) -> torch.Tensor:
    """Training samples per class, identical on every rank (a CPU tensor of int64).

    Args:
        trainer: The Trainer.
        pl_module: The module (its device, its ``num_classes``).
        labels: This rank's labels (`local_labels`): class ids, or one-hot/probability
            rows counted by their argmax.
        whole: Whether they are the whole dataset's (see `combine_counts`).
        num_classes: The number of classes, or None to find it (`number_of_classes`).
        ignore_index: Label value to skip (the loss's ``ignore_index``), or None.

    Raises:
        RecipeConfigError: If a label is ``num_classes`` or more.
    """
    ids, width = multiclass_ids(labels, ignore_index=ignore_index)
    classes = number_of_classes(trainer, pl_module, ids, width, num_classes)
    if ids.size and ids.max() >= classes:
        raise config_error(
            "num_classes",
            classes,
            f"Labels range from {ids.min()} to {ids.max()}: pass num_classes=.",
        )
    local = torch.as_tensor(np.bincount(ids, minlength=classes), dtype=torch.long)
    return combine_counts(trainer, local.to(pl_module.device), whole).cpu()
