"""The common part of the bundled datamodules: one split pipeline for digits and MNIST-1D."""

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lightning_recipes.data.arrays import LabeledDataModule
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.preprocessing import Scaler, make_scaler
from lightning_recipes.data.splits import (
    FoldKind,
    check_class_fractions,
    check_fold_args,
    fold_split,
    make_imbalanced,
)
from lightning_recipes.errors import choice_error, config_error

__all__ = ["BundledDataModule", "Splits"]

Splits = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
"""``(train, val, test)`` row indices; ``val`` may be empty (no validation)."""


class BundledDataModule(LabeledDataModule):
    """A datamodule over a bundled dataset: one split, K folds, imbalance, a scaler.

    Subclasses say where the data comes from and how it is split (`_load_split`); this
    class does the rest, identically for every bundled dataset: with ``num_folds`` the
    train and validation rows are pooled and cut into folds (`fold_split`, shuffled with
    ``seed``), fold ``fold`` becoming validation; then ``imbalance`` shrinks classes of the
    training rows only (`_select_train`), and the scaler is fitted on the training split
    only. The test split is never touched.

    Args:
        batch_size: Batch size of every loader.
        layout: The shape of one sample, one of ``layouts``.
        layouts: The layouts the subclass offers.
        imbalance: ``{class_id: fraction}`` kept of those classes in the training split.
        num_workers: Worker processes per loader.
        seed: Seed of the split, the folds, the imbalance and the training shuffle.
        num_folds: Number of cross-validation folds ``K >= 2``; None for none.
        fold: Which fold is the validation set, ``0 <= fold < num_folds``.
        fold_kind: ``"stratified"`` or ``"plain"`` (bundled data has no groups).
        scaler: ``"standard"`` to standardise with training statistics only, or None.
    """

    num_classes: int
    """The number of classes served (labels are ``0 .. num_classes - 1``)."""

    def __init__(
        self,
        *,
        batch_size: int,
        layout: str,
        layouts: Sequence[str],
        imbalance: dict[int, float] | None,
        num_workers: int,
        seed: int | None,
        num_folds: int | None,
        fold: int,
        fold_kind: FoldKind,
        scaler: Scaler | None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        check_fold_args(num_folds, fold, fold_kind)
        if fold_kind == "grouped":
            raise config_error(
                "fold_kind",
                fold_kind,
                f'{type(self).__name__} has no groups: use "stratified" or "plain" (or an '
                "ArrayDataModule with groups=...).",
            )
        make_scaler(scaler)  # validate the name now
        if layout not in layouts:
            raise choice_error("layout", layout, tuple(layouts))
        self.layout = layout
        self.imbalance = check_class_fractions("imbalance", imbalance or {}, self.num_classes)
        self.num_folds = num_folds
        self.fold = fold
        self.fold_kind = fold_kind
        self.scaler = scaler

    @abstractmethod
    def _load_split(
        self,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], Splits]:
        """The features (in the served layout), labels and ``(train, val, test)`` rows."""

    def _select_train(
        self, labels: npt.NDArray[np.int64], train_idx: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """The training rows actually trained on: ``imbalance`` applied to ``train_idx``.

        Args:
            labels: The labels of all rows.
            train_idx: The training rows (after the folds).

        Returns:
            The kept training rows, sorted.
        """
        if not self.imbalance:
            return train_idx
        kept = make_imbalanced(
            labels[train_idx], self.imbalance, seed=self.seed, argument="imbalance"
        )
        return train_idx[kept]

    def setup(self, stage: str | None = None) -> None:
        """Load and split the data (idempotent; the same split on every rank).

        Args:
            stage: The Trainer stage; all splits are built whatever it is.
        """
        if self.train_dataset is not None:
            return
        features, labels, (train_idx, val_idx, test_idx) = self._load_split()
        full = LabeledTensorDataset(features, labels)
        if self.num_folds is not None:
            pool = np.sort(np.concatenate([train_idx, val_idx]))
            in_train, in_val = fold_split(
                labels[pool], self.num_folds, self.fold, kind=self.fold_kind, seed=self.seed
            )
            train_idx, val_idx = pool[in_train], pool[in_val]
        self.train_dataset = full.subset(self._select_train(labels, train_idx))
        self.val_dataset = full.subset(val_idx) if val_idx.size else None
        self.test_dataset = full.subset(test_idx)
        self.predict_dataset = self.test_dataset
        self._scale_splits(self.scaler)
