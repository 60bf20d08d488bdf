"""Data for recipes: bundled digits and MNIST-1D, in-memory arrays, splits, K folds, imbalance."""

from lightning_recipes.data.arrays import ArrayDataModule, LabeledDataModule
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.digits import TABULAR, DigitsDataModule, TabularDataModule
from lightning_recipes.data.mnist1d import Mnist1dDataModule, generate_mnist1d
from lightning_recipes.data.sampling import EpochShuffleSampler
from lightning_recipes.data.splits import (
    class_counts,
    fold_split,
    make_imbalanced,
    stratified_split,
)

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "EpochShuffleSampler",
    "LabeledDataModule",
    "LabeledTensorDataset",
    "Mnist1dDataModule",
    "TABULAR",
    "TabularDataModule",
    "class_counts",
    "fold_split",
    "generate_mnist1d",
    "make_imbalanced",
    "stratified_split",
]
