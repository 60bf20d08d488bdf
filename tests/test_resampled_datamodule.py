"""ResampledDataModule: SMOTE & co. on the training split only, synthetic rows marked."""

from collections.abc import Callable

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import TomekLinks
from lightning.pytorch import Trainer
from sklearn.datasets import make_classification

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import ArrayDataModule, DigitsDataModule
from lightning_recipes.imbalance.datamodule import ResampledDataModule, resample_arrays
from lightning_recipes.modules import MLP, Classifier


def tabular() -> ArrayDataModule:
    x, y = make_classification(
        n_samples=600, n_features=8, n_informative=5, weights=[0.85, 0.15], random_state=0
    )
    return ArrayDataModule(train=(x, y), test=(x[:50], y[:50]), val_fraction=0.2, batch_size=32)


def test_smote_balances_the_training_split_and_marks_synthetic_rows() -> None:
    inner = tabular()
    data = ResampledDataModule(inner, SMOTE(), seed=0)
    data.setup("fit")
    loader = data.train_dataloader()
    original = inner.train_dataset
    assert original is not None
    resampled = loader.dataset
    counts = np.bincount(resampled.targets.numpy())  # type: ignore[attr-defined]
    assert counts[0] == counts[1] == int(np.bincount(original.targets.numpy()).max())
    mask = data.synthetic_mask
    assert mask is not None
    n = len(original)
    assert not mask[:n].any()
    assert bool(mask[n:].all())
    assert torch.equal(resampled.features[:n], original.features)  # type: ignore[attr-defined]


def test_validation_and_test_data_are_never_touched() -> None:
    inner = tabular()
    data = ResampledDataModule(inner, SMOTE(), seed=0)
    data.setup("fit")
    data.setup("test")
    val = data.val_dataloader().dataset
    test = data.test_dataloader().dataset
    assert val is inner.val_dataset
    assert test is inner.test_dataset
    assert len(val) == 120  # a fifth of 600, as before wrapping
    train_rows = {tuple(r) for r in data.train_dataloader().dataset.features.numpy()}  # type: ignore[attr-defined]
    val_rows = {tuple(r) for r in val.features.numpy()}
    assert not train_rows & val_rows  # no synthetic or original training row in validation


def test_selection_samplers_mark_nothing_synthetic() -> None:
    x, y = make_classification(n_samples=200, n_features=4, weights=[0.8, 0.2], random_state=1)
    for sampler in (RandomOverSampler(), TomekLinks()):
        _, _, synthetic = resample_arrays(sampler, x, y, seed=0)
        assert not synthetic.any()


def test_fresh_every_epoch_resamples_and_needs_reloading(
    make_trainer: Callable[..., Trainer],
) -> None:
    data = ResampledDataModule(tabular(), SMOTE(), fresh_every_epoch=True, seed=0)
    model = Classifier(MLP(8, [8]), num_classes=2)
    with pytest.raises(RecipeConfigError, match="reload_dataloaders_every_n_epochs"):
        make_trainer(limit_val_batches=0).fit(model, data)
    seen = []

    class Record(Classifier):
        def on_train_epoch_start(self) -> None:
            loader = self.trainer.train_dataloader
            seen.append(loader.dataset.features[-1].clone())  # type: ignore[union-attr]

    trainer = make_trainer(max_epochs=2, limit_val_batches=0, reload_dataloaders_every_n_epochs=1)
    trainer.fit(Record(MLP(8, [8]), num_classes=2), data)
    assert not torch.equal(seen[0], seen[1])  # a new synthetic last row each epoch


def test_images_and_bad_samplers_are_refused() -> None:
    images = ResampledDataModule(DigitsDataModule(layout="image"), SMOTE())
    with pytest.raises(RecipeConfigError, match="2-D"):
        images.setup("fit")
    with pytest.raises(RecipeConfigError, match="sampler"):
        ResampledDataModule(tabular(), sampler=object())
    with pytest.raises(RecipeConfigError, match="batch_size"):
        ResampledDataModule(tabular(), SMOTE(), batch_size=0)


def test_a_tensor_dataset_with_extra_tensors_is_refused() -> None:
    from lightning.pytorch import LightningDataModule
    from torch.utils.data import TensorDataset

    class WithGroups(LightningDataModule):
        batch_size = 16

        def setup(self, stage: str) -> None:
            x, y = make_classification(n_samples=100, n_features=4, random_state=0)
            group = np.arange(100) % 2  # integer, like the labels: must not be taken for them
            self.train_dataset = TensorDataset(*(torch.as_tensor(v) for v in (x, y, group)))

    data = ResampledDataModule(WithGroups(), SMOTE(), seed=0)
    with pytest.raises(RecipeConfigError, match=r"TensorDataset of 3 tensors.*cannot be guessed"):
        data.setup("fit")
