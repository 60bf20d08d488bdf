"""Data for recipes: bundled digits, in-memory arrays, stratified splits, K folds, imbalance."""

from lightning_recipes.data.arrays import ArrayDataModule, LabeledDataModule
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.digits import TABULAR, DigitsDataModule, TabularDataModule
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
    "TABULAR",
    "TabularDataModule",
    "class_counts",
    "fold_split",
    "make_imbalanced",
    "stratified_split",
]
