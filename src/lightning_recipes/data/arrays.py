"""A LightningDataModule for arrays already in memory."""

from typing import Any

import numpy.typing as npt
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.sampling import EpochShuffleSampler
from lightning_recipes.data.splits import make_imbalanced, stratified_split
from lightning_recipes.errors import config_error

__all__ = ["ArrayDataModule", "Arrays", "LabeledDataModule"]

Arrays = tuple[npt.ArrayLike | torch.Tensor, npt.ArrayLike | torch.Tensor]


def _check_split(name: str, split: Arrays | None) -> LabeledTensorDataset | None:
    if split is None:
        return None
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise config_error(name, type(split).__name__, "Pass a (features, labels) pair.")
    return LabeledTensorDataset(*split)


class LabeledDataModule(LightningDataModule):
    """Base of the bundled datamodules: `LabeledTensorDataset` splits and their loaders.

    Subclasses fill ``train_dataset``, ``val_dataset``, ``test_dataset`` and
    ``predict_dataset``; this class serves them. The training loader shuffles with an
    `EpochShuffleSampler` (order fixed by ``seed`` and the epoch, so resumed runs replay
    it exactly); a split that is ``None`` has no loader (validation is then
    skipped, and asking for a missing test split raises an error naming the argument).

    Args:
        batch_size: Batch size of every loader.
        num_workers: Worker processes per loader.
        seed: Seed of splits, imbalance and the training shuffle.
    """

    def __init__(self, *, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise config_error("batch_size", batch_size, "Pass a positive integer.")
        if num_workers < 0:
            raise config_error("num_workers", num_workers, "Pass 0 or more worker processes.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.train_dataset: LabeledTensorDataset | None = None
        self.val_dataset: LabeledTensorDataset | None = None
        self.test_dataset: LabeledTensorDataset | None = None
        self.predict_dataset: LabeledTensorDataset | None = None

    def _loader(
        self, dataset: LabeledTensorDataset | None, split: str, shuffle: bool = False
    ) -> DataLoader[Any]:
        if dataset is None:
            raise config_error(
                split,
                None,
                f"This datamodule has no {split} data: pass {split}=(features, labels).",
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(dataset, seed=self.seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    @override
    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.train_dataset, "train", shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader[Any]:
        if self.val_dataset is None:
            return []  # type: ignore[return-value]  # Lightning skips validation on an empty list
        return self._loader(self.val_dataset, "val")

    @override
    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.test_dataset, "test")

    @override
    def predict_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.predict_dataset, "predict")


class ArrayDataModule(LabeledDataModule):
    """Serve numpy arrays or tensors as train/val/test/predict dataloaders.

    Datasets are `LabeledTensorDataset` objects, so ``trainer.datamodule.train_dataset
    .targets`` gives the training labels. Without an explicit ``val``, a stratified
    ``val_fraction`` of ``train`` is held out (the same rows on every rank and every run
    with the same ``seed``).

    Args:
        train: ``(features, labels)`` for training.
        val: ``(features, labels)`` for validation, or None to hold out ``val_fraction``.
        test: ``(features, labels)`` for testing, optional.
        predict: ``(features, labels)`` for ``trainer.predict``; defaults to ``test``.
        val_fraction: Share of ``train`` held out when ``val`` is None; 0 disables validation.
        imbalance: ``{class_id: fraction}`` to shrink classes of the training split only.
        batch_size: Batch size of every loader.
        num_workers: Worker processes per loader.
        seed: Seed of the hold-out split, the imbalance and the training shuffle.

    Examples:
        >>> import numpy as np
        >>> x, y = np.random.rand(40, 3), np.arange(40) % 2
        >>> dm = ArrayDataModule(train=(x, y), val_fraction=0.25, batch_size=8)
        >>> dm.setup("fit")
        >>> len(dm.train_dataset), len(dm.val_dataset)
        (30, 10)
    """

    def __init__(
        self,
        train: Arrays,
        val: Arrays | None = None,
        test: Arrays | None = None,
        predict: Arrays | None = None,
        *,
        val_fraction: float = 0.2,
        imbalance: dict[int, float] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if not 0.0 <= val_fraction < 1.0:
            raise config_error("val_fraction", val_fraction, "Pass a fraction in [0, 1).")
        full_train = _check_split("train", train)
        assert full_train is not None
        val_dataset = _check_split("val", val)
        if val_dataset is None and val_fraction > 0:
            train_idx, val_idx = stratified_split(
                full_train.targets.numpy(), (1 - val_fraction, val_fraction), seed=seed
            )
            full_train, val_dataset = full_train.subset(train_idx), full_train.subset(val_idx)
        if imbalance:
            full_train = full_train.subset(
                make_imbalanced(full_train.targets.numpy(), imbalance, seed=seed)
            )
        self.train_dataset = full_train
        self.val_dataset = val_dataset
        self.test_dataset = _check_split("test", test)
        self.predict_dataset = _check_split("predict", predict) or self.test_dataset
