"""scikit-learn's bundled handwritten digits as a LightningDataModule."""

from typing import Literal

import numpy as np

from lightning_recipes._optional import require
from lightning_recipes.data.arrays import LabeledDataModule
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.splits import make_imbalanced, stratified_split
from lightning_recipes.errors import choice_error, config_error

__all__ = ["DigitsDataModule"]


class DigitsDataModule(LabeledDataModule):
    """The 1,797 8x8 handwritten digits that ship with scikit-learn, ready to train on.

    Pixels are scaled to [0, 1]. The data is split once, stratified by class, into
    train/val/test with ``seed`` (identical on every rank). ``imbalance`` shrinks chosen
    classes in the training split only, so validation and test measure the damage on the
    true distribution. No download: the data is inside the scikit-learn wheel (extra
    ``data``).

    Args:
        batch_size: Batch size of every loader.
        layout: ``"flat"`` for 64 features per sample, ``"image"`` for ``1x8x8`` images.
        val_fraction: Share of samples in the validation split.
        test_fraction: Share of samples in the test split.
        imbalance: ``{class_id: fraction}``: keep only that fraction of the class in the
            training split, e.g. ``{0: 0.05, 1: 0.05}``.
        num_workers: Worker processes per loader.
        seed: Seed of the split, the imbalance and the training shuffle.

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
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if layout not in ("flat", "image"):
            raise choice_error("layout", layout, ("flat", "image"))
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < fraction < 1.0:
                raise config_error(name, fraction, "Pass a fraction strictly between 0 and 1.")
        if val_fraction + test_fraction >= 1.0:
            raise config_error(
                "val_fraction + test_fraction",
                val_fraction + test_fraction,
                "Leave some data for training: the two fractions must sum to less than 1.",
            )
        for cls, fraction in (imbalance or {}).items():
            if not 0 <= int(cls) < self.num_classes or not 0.0 <= float(fraction) <= 1.0:
                raise config_error(
                    f"imbalance[{cls}]",
                    fraction,
                    "Map class ids 0-9 to the fraction of the class to keep, in [0, 1].",
                )
        self.layout = layout
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.imbalance = dict(imbalance or {})
        self.save_hyperparameters()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``(64,)`` flat or ``(1, 8, 8)`` as an image."""
        return (self.num_features,) if self.layout == "flat" else (1, 8, 8)

    def setup(self, stage: str | None = None) -> None:
        """Load and split the digits (idempotent; the same split on every rank).

        Args:
            stage: The Trainer stage; all splits are built whatever it is.
        """
        if self.train_dataset is not None:
            return
        datasets = require("sklearn.datasets", extra="data", feature="DigitsDataModule")
        features, labels = datasets.load_digits(return_X_y=True)
        features = (features / 16.0).astype(np.float32).reshape(-1, *self.input_shape)
        full = LabeledTensorDataset(features, labels)
        train_idx, val_idx, test_idx = stratified_split(
            labels,
            (1.0 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction),
            seed=self.seed,
        )
        if self.imbalance:
            train_idx = train_idx[
                make_imbalanced(labels[train_idx], self.imbalance, seed=self.seed)
            ]
        self.train_dataset = full.subset(train_idx)
        self.val_dataset = full.subset(val_idx)
        self.test_dataset = full.subset(test_idx)
        self.predict_dataset = self.test_dataset
