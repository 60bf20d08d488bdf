"""scikit-learn's bundled handwritten digits as a LightningDataModule."""

from typing import Literal

import numpy as np
import numpy.typing as npt
from typing_extensions import override

from lightning_recipes._core.optional import require
from lightning_recipes.data.bundled import BundledDataModule, Splits
from lightning_recipes.data.preprocessing import Scaler
from lightning_recipes.data.splits import FoldKind, stratified_split
from lightning_recipes.errors import choice_error, config_error

__all__ = ["DigitsDataModule"]


class DigitsDataModule(BundledDataModule):
    """The 1,797 8x8 handwritten digits that ship with scikit-learn, ready to train on.

    Pixels are scaled to [0, 1]. The data is split once, stratified by class, into
    train/val/test with ``seed`` (identical on every rank). ``imbalance`` shrinks chosen
    classes in the training split only, so validation and test measure the damage on the
    true distribution. No download: the data is inside the scikit-learn wheel (extra
    ``data``).

    K-fold cross-validation: with ``num_folds=K`` the train and validation splits are
    pooled and cut into ``K`` folds (`fold_split`, shuffled with ``seed``); fold ``fold``
    is the validation set, the other folds the training set, and the test split is the
    same as without folds. ``imbalance`` and ``scaler`` act on the training folds only,
    so ``train_dataset.targets`` holds exactly the labels the model trains on.

    Args:
        batch_size: Batch size of every loader.
        layout: ``"flat"`` for 64 features per sample, ``"image"`` for ``1x8x8`` images.
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the test split.
        imbalance: ``{class_id: fraction}``: keep only that fraction of the class in the
            training split, e.g. ``{0: 0.05, 1: 0.05}``.
        num_workers: Worker processes per loader.
        seed: Seed of the split, the folds, the imbalance and the training shuffle.
            None: the run's seed (``seed_everything``), so that each seed of a study or
            an ablation has its own split.
        num_folds: Number of cross-validation folds ``K >= 2``; None (default) for none.
        fold: Which fold is the validation set, ``0 <= fold < num_folds``.
        fold_kind: ``"stratified"`` (class proportions kept in every fold) or ``"plain"``;
            the digits have no groups, so ``"grouped"`` is refused.
        scaler: ``"standard"`` to standardise pixels with statistics of the training
            split only (see ``fitted_scaler``); None keeps them in [0, 1].

    Examples:
        >>> dm = DigitsDataModule(batch_size=32, imbalance={3: 0.1})
        >>> dm.setup("fit")
        >>> dm.num_features, dm.num_classes, len(dm.train_dataset) > len(dm.val_dataset)
        (64, 10, True)
    """

    num_classes = 10
    num_features = 64

    def __init__(
        self,
        batch_size: int = 64,
        layout: Literal["flat", "image"] = "flat",
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        imbalance: dict[int, float] | None = None,
        num_workers: int = 0,
        seed: int | None = 0,
        num_folds: int | None = None,
        fold: int = 0,
        fold_kind: FoldKind = "stratified",
        scaler: Scaler | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            layout=layout,
            layouts=("flat", "image"),
            imbalance=imbalance,
            num_workers=num_workers,
            seed=seed,
            num_folds=num_folds,
            fold=fold,
            fold_kind=fold_kind,
            scaler=scaler,
        )
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < fraction < 1.0:
                raise config_error(name, fraction, "Pass a fraction strictly between 0 and 1.")
        if val_fraction + test_fraction >= 1.0:
            raise config_error(
                "val_fraction + test_fraction",
                val_fraction + test_fraction,
                "Leave some data for training: the two fractions must sum to less than 1.",
            )
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.save_hyperparameters()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``(64,)`` flat or ``(1, 8, 8)`` as an image."""
        return (self.num_features,) if self.layout == "flat" else (1, 8, 8)

    def _load(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The features (scaled to [0, 1], in ``input_shape``) and labels of the digits."""
        datasets = require("sklearn.datasets", extra="data", feature="DigitsDataModule")
        features, labels = datasets.load_digits(return_X_y=True)
        features = (features / 16.0).astype(np.float32).reshape(-1, *self.input_shape)
        return features, labels.astype(np.int64)

    @override
    def _load_split(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], Splits]:
        features, labels = self._load()
        train_idx, val_idx, test_idx = stratified_split(
            labels,
            (1.0 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction),
            seed=self.seed,
        )
        return features, labels, (train_idx, val_idx, test_idx)


TABULAR: dict[str, tuple[int, int]] = {"wine": (3, 13), "breast_cancer": (2, 30)}
"""The tabular datasets scikit-learn ships: ``name: (classes, features)``."""


class TabularDataModule(DigitsDataModule):
    """A tabular dataset that ships with scikit-learn (wine, breast cancer), ready to train on.

    Everything `DigitsDataModule` does (stratified split with ``seed``, imbalance of the
    training split, K folds, a scaler fitted on the training split only), on tabular
    features: standardised by default (``scaler="standard"``), since their columns have
    different units. No download.

    Args:
        dataset: ``"breast_cancer"`` (569 samples, 30 features, 2 classes) or ``"wine"``
            (178 samples, 13 features, 3 classes).
        batch_size: Batch size of every loader.
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the test split.
        imbalance: ``{class_id: fraction}`` kept of those classes in the training split.
        num_workers: Worker processes per loader.
        seed: Seed of the split, the folds, the imbalance and the training shuffle.
            None: the run's seed (``seed_everything``), so that each seed of a study or
            an ablation has its own split.
        num_folds: Number of cross-validation folds; None for none.
        fold: Which fold is the validation set.
        fold_kind: ``"stratified"`` or ``"plain"``.
        scaler: ``"standard"`` (default) or None.

    Examples:
        >>> dm = TabularDataModule("wine")
        >>> dm.setup("fit")
        >>> dm.num_features, dm.num_classes, dm.train_dataset[0][0].shape
        (13, 3, torch.Size([13]))
    """

    def __init__(
        self,
        dataset: Literal["breast_cancer", "wine"] = "breast_cancer",
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        imbalance: dict[int, float] | None = None,
        num_workers: int = 0,
        seed: int | None = 0,
        num_folds: int | None = None,
        fold: int = 0,
        fold_kind: FoldKind = "stratified",
        scaler: Scaler | None = "standard",
    ) -> None:
        if dataset not in TABULAR:
            raise choice_error("dataset", dataset, sorted(TABULAR))
        # Instance values before the base class validates `imbalance` against them.
        self.num_classes, self.num_features = TABULAR[dataset]
        self.dataset = dataset
        super().__init__(
            batch_size=batch_size,
            layout="flat",
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            imbalance=imbalance,
            num_workers=num_workers,
            seed=seed,
            num_folds=num_folds,
            fold=fold,
            fold_kind=fold_kind,
            scaler=scaler,
        )

    @override
    def _load(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        datasets = require("sklearn.datasets", extra="data", feature="TabularDataModule")
        features, labels = getattr(datasets, f"load_{self.dataset}")(return_X_y=True)
        return features.astype(np.float32), labels.astype(np.int64)
