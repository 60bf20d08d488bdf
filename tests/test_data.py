"""Datasets and datamodules: labels exposed, splits stratified, imbalance on train only."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import (
    ArrayDataModule,
    DigitsDataModule,
    LabeledTensorDataset,
    class_counts,
)


def _counts(dataset: LabeledTensorDataset | None) -> np.ndarray:
    assert dataset is not None
    return class_counts(dataset.targets.numpy(), 10)


def test_digits_splits_are_stratified_disjoint_and_complete() -> None:
    dm = DigitsDataModule(val_fraction=0.2, test_fraction=0.1, seed=3)
    dm.setup("fit")
    total = _counts(dm.train_dataset) + _counts(dm.val_dataset) + _counts(dm.test_dataset)
    assert total.sum() == 1797
    for part, fraction in ((dm.val_dataset, 0.2), (dm.test_dataset, 0.1)):
        assert np.all(np.abs(_counts(part) - fraction * total) < 1.0)
    # The three splits together are exactly the bundled data set, row for row.
    parts = [ds.features for ds in (dm.train_dataset, dm.val_dataset, dm.test_dataset) if ds]
    ours = np.concatenate([p.numpy() for p in parts])
    full = load_digits().data / 16.0
    assert np.array_equal(ours[np.lexsort(ours.T)], full[np.lexsort(full.T)].astype(np.float32))
    assert dm.train_dataset is not None
    x, y = dm.train_dataset[0]
    assert x.shape == (64,)
    assert x.dtype == torch.float32
    assert 0.0 <= x.min() <= x.max() <= 1.0
    assert y.dtype == torch.long


def test_digits_imbalance_shrinks_train_only() -> None:
    balanced = DigitsDataModule(seed=0)
    balanced.setup("fit")
    skewed = DigitsDataModule(seed=0, imbalance={3: 0.1, 8: 0.0})
    skewed.setup("fit")
    before, after = _counts(balanced.train_dataset), _counts(skewed.train_dataset)
    assert after[3] == round(0.1 * before[3])
    assert after[8] == 0
    assert np.array_equal(np.delete(after, [3, 8]), np.delete(before, [3, 8]))
    assert np.array_equal(_counts(skewed.val_dataset), _counts(balanced.val_dataset))
    assert np.array_equal(_counts(skewed.test_dataset), _counts(balanced.test_dataset))


def test_digits_image_layout_and_loaders() -> None:
    dm = DigitsDataModule(batch_size=16, layout="image")
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 8, 8)
    assert y.shape == (16,)
    assert dm.input_shape == (1, 8, 8)
    assert sum(len(b[1]) for b in dm.test_dataloader()) == len(dm.test_dataset or [])


def test_digits_same_seed_same_split_and_shuffle() -> None:
    a, b = DigitsDataModule(seed=5), DigitsDataModule(seed=5)
    a.setup()
    b.setup()
    assert a.val_dataset is not None
    assert b.val_dataset is not None
    assert torch.equal(a.val_dataset.features, b.val_dataset.features)
    assert torch.equal(next(iter(a.train_dataloader()))[1], next(iter(b.train_dataloader()))[1])


def test_array_datamodule_holds_out_stratified_validation() -> None:
    x = np.random.default_rng(0).normal(size=(100, 3))
    y = np.repeat([0, 1, 2, 3], 25)
    dm = ArrayDataModule(train=(x, y), test=(x[:10], y[:10]), val_fraction=0.2, batch_size=7)
    assert dm.val_dataset is not None
    assert class_counts(dm.val_dataset.targets.numpy()).tolist() == [5, 5, 5, 5]
    assert len(dm.train_dataset or []) == 80
    assert dm.train_dataset is not None
    assert dm.train_dataset.features.dtype == torch.float32
    assert len(next(iter(dm.train_dataloader()))[0]) == 7
    assert dm.predict_dataset is dm.test_dataset


def test_array_datamodule_explicit_val_and_imbalance() -> None:
    x, y = torch.randn(40, 2), torch.arange(40) % 2
    dm = ArrayDataModule(train=(x, y), val=(x[:4], y[:4]), imbalance={1: 0.25})
    assert len(dm.val_dataset or []) == 4
    assert dm.train_dataset is not None
    assert class_counts(dm.train_dataset.targets.numpy()).tolist() == [20, 5]


def test_array_datamodule_without_validation_or_test() -> None:
    dm = ArrayDataModule(train=(torch.randn(10, 2), torch.arange(10) % 2), val_fraction=0.0)
    assert dm.val_dataset is None
    assert dm.val_dataloader() == []
    with pytest.raises(RecipeConfigError, match="no test data"):
        dm.test_dataloader()


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: DigitsDataModule(val_fraction=-0.1), "val_fraction"),
        (lambda: DigitsDataModule(test_fraction=1.0), "test_fraction"),
        (lambda: DigitsDataModule(val_fraction=0.5, test_fraction=0.5), "val_fraction"),
        (lambda: DigitsDataModule(imbalance={3: -0.5}), r"imbalance\[3\]"),
        (lambda: DigitsDataModule(imbalance={12: 0.5}), r"imbalance\[12\]"),
        (lambda: DigitsDataModule(layout="grid"), "layout"),  # type: ignore[arg-type]
        (lambda: DigitsDataModule(batch_size=0), "batch_size"),
        (lambda: ArrayDataModule(train=(np.zeros((3, 2)), [0, 1])), "features"),
        (lambda: ArrayDataModule(train=(np.zeros((2, 2)), [0.5, 1.0])), "targets"),
        (lambda: ArrayDataModule(train=np.zeros((2, 2))), "train"),  # type: ignore[arg-type]
        (
            lambda: ArrayDataModule(train=(np.zeros((4, 2)), [0, 1, 0, 1]), val_fraction=1.0),
            "val_fraction",
        ),
        (
            lambda: ArrayDataModule(train=(np.zeros((4, 2)), [0, 1, 0, 1]), num_workers=-1),
            "num_workers",
        ),
    ],
)
def test_bad_arguments_raise_at_construction(build: object, argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}"):
        build()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "classes", "features"), [("wine", 3, 13), ("breast_cancer", 2, 30)]
)
def test_tabular_datasets_split_stratified_and_scale_on_the_training_split(
    name: str, classes: int, features: int
) -> None:
    from lightning_recipes.data import TabularDataModule

    dm = TabularDataModule(name, seed=1)
    dm.setup("fit")
    assert (dm.num_classes, dm.num_features) == (classes, features)
    train = dm.train_dataset
    assert train is not None
    x = train.tensors[0] if hasattr(train, "tensors") else torch.stack([s[0] for s in train])
    # Standardised with the training split's own statistics: mean 0, std 1 there.
    assert torch.allclose(x.mean(0), torch.zeros(features), atol=1e-4)
    assert sorted(set(train.targets.tolist())) == list(range(classes))


def test_tabular_refuses_an_unknown_dataset_and_a_class_it_does_not_have() -> None:
    from lightning_recipes.data import TabularDataModule

    with pytest.raises(RecipeConfigError, match="dataset"):
        TabularDataModule("iris")  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="imbalance"):
        TabularDataModule("wine", imbalance={5: 0.1})
