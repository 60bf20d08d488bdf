"""ResampledDataModule: imbalanced-learn resampling (SMOTE & co.) of the training split only."""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import flag, non_negative_int, positive_int
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.sampling import EpochShuffleSampler
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.imbalance.labels import dataset_labels

__all__ = ["ResampledDataModule", "resample_arrays"]


def _seeded(sampler: Any, seed: int) -> Any:
    """A fresh copy of an imbalanced-learn sampler with its random_state set."""
    base = require("sklearn.base", extra="imbalanced", feature="ResampledDataModule")
    fresh = base.clone(sampler)
    if "random_state" in fresh.get_params():
        fresh.set_params(random_state=seed)
    return fresh


def resample_arrays(
    sampler: Any, features: npt.NDArray[Any], labels: npt.NDArray[np.int64], seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Resample ``(features, labels)`` with an imbalanced-learn sampler; mark synthetic rows.

    Args:
        sampler: An imbalanced-learn sampler (``SMOTE()``, ``ADASYN()``, ``TomekLinks()``,
            ``SMOTETomek()``, ``RandomOverSampler()``...); it is cloned, never modified.
        features: ``(n, d)`` features.
        labels: ``(n,)`` class ids.
        seed: The ``random_state`` given to the clone.

    Returns:
        ``(features, labels, synthetic)``: the resampled rows and a mask of the rows that
        are not copies of an original row.

    Raises:
        RecipeConfigError: If the synthetic rows cannot be told apart.

    Examples:
        >>> import numpy as np
        >>> from imblearn.over_sampling import SMOTE
        >>> x = np.r_[np.zeros((8, 2)), np.ones((3, 2))] + np.arange(11)[:, None] * 0.01
        >>> y = np.array([0] * 8 + [1] * 3)
        >>> x2, y2, synthetic = resample_arrays(SMOTE(k_neighbors=2), x, y, seed=0)
        >>> np.bincount(y2).tolist(), int(synthetic.sum())
        ([8, 8], 5)
    """
    fitted = _seeded(sampler, seed)
    x_res, y_res = fitted.fit_resample(features, labels)
    x_res, y_res = np.asarray(x_res), np.asarray(y_res, dtype=np.int64)
    kept = getattr(fitted, "sample_indices_", None)
    if kept is not None:  # under-sampling, cleaning, random over-sampling: copies only
        return x_res, y_res, np.zeros(len(y_res), dtype=bool)
    n = len(labels)
    if (
        len(y_res) >= n
        and np.array_equal(x_res[:n], features)
        and np.array_equal(y_res[:n], labels)
    ):
        synthetic = np.zeros(len(y_res), dtype=bool)
        synthetic[n:] = True  # SMOTE and ADASYN keep the originals first, in order
        return x_res, y_res, synthetic
    raise RecipeConfigError(
        f"{type(sampler).__name__} both removed and synthesised rows, so the synthetic ones "
        "cannot be marked. Resample with the over-sampler alone (e.g. SMOTE) or with a "
        "sampler that exposes sample_indices_."
    )


class ResampledDataModule(LightningDataModule):
    """Wrap a datamodule so that its training split is resampled by imbalanced-learn.

    The training dataset's 2-D features and labels (a `LabeledTensorDataset`, a
    ``TensorDataset`` of two tensors, or any dataset with ``features`` and
    ``targets``) are resampled with ``sampler`` (``SMOTE``, ``ADASYN``, ``TomekLinks``,
    combinations...) once, or afresh every epoch with ``fresh_every_epoch=True``
    (then the Trainer needs ``reload_dataloaders_every_n_epochs=1``). Validation, test
    and predict loaders are the wrapped datamodule's, untouched: synthetic samples never
    leak into evaluation. ``synthetic_mask`` marks the rows that are not original.

    For samplers that only select rows (random over/under-sampling), prefer
    `ResamplingSampler`: it needs no copy of the data and works for any input shape.

    Args:
        datamodule: The datamodule to wrap.
        sampler: An imbalanced-learn sampler instance.
        fresh_every_epoch: Resample at every epoch with a new seed.
        batch_size: Training batch size; defaults to the wrapped datamodule's
            ``batch_size``.
        seed: Seed of the resampling (combined with the epoch) and of the shuffle.

    Attributes:
        train_dataset: The resampled training dataset, after setup.
        synthetic_mask: Boolean tensor, True for synthetic rows.
    """

    def __init__(
        self,
        datamodule: LightningDataModule,
        sampler: Any,
        *,
        fresh_every_epoch: bool = False,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(datamodule, LightningDataModule):
            raise config_error(
                "datamodule",
                type(datamodule).__name__,
                "Pass a LightningDataModule whose train_dataset exposes features and labels.",
            )
        if isinstance(sampler, type) or not callable(getattr(sampler, "fit_resample", None)):
            raise config_error(
                "sampler",
                sampler if isinstance(sampler, type) else type(sampler).__name__,
                "Pass an imbalanced-learn sampler instance, e.g. SMOTE().",
            )
        flag("fresh_every_epoch", fresh_every_epoch)
        size = batch_size if batch_size is not None else getattr(datamodule, "batch_size", None)
        positive_int("batch_size", size, "Pass a positive training batch size.")
        non_negative_int("seed", seed)
        self.datamodule = datamodule
        self.sampler = sampler
        self.fresh_every_epoch = fresh_every_epoch
        self.batch_size = size
        self.seed = seed
        self.train_dataset: LabeledTensorDataset | None = None
        self.synthetic_mask: torch.Tensor | None = None
        self._original: tuple[npt.NDArray[Any], npt.NDArray[np.int64]] | None = None
        self._epoch: int | None = None

    @override
    def prepare_data(self) -> None:
        self.datamodule.prepare_data()

    @override
    def setup(self, stage: str) -> None:
        self.datamodule.trainer = self.trainer
        self.datamodule.setup(stage)
        if stage == "fit":
            self._original = self._arrays(getattr(self.datamodule, "train_dataset", None))

    def _arrays(self, dataset: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
        tensors = getattr(dataset, "tensors", None)
        features = getattr(dataset, "features", None)
        if features is None and isinstance(tensors, tuple):
            if len(tensors) != 2:
                raise RecipeConfigError(
                    f"ResampledDataModule resamples (features, labels) pairs, but the wrapped "
                    f"train_dataset is a TensorDataset of {len(tensors)} tensors: which is the "
                    "label cannot be guessed, and the extra tensors (sample weights, group "
                    "ids) have no value for synthetic rows. Wrap a dataset of two tensors, or "
                    "a LabeledTensorDataset(features, targets)."
                )
            features = tensors[0]
        labels = dataset_labels(dataset, owner="ResampledDataModule")
        if features is None or labels is None:
            raise RecipeConfigError(
                "ResampledDataModule needs the wrapped datamodule's train_dataset to expose "
                "features and labels (a LabeledTensorDataset or a TensorDataset(x, y))."
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iub":
            raise config_error(
                "datamodule",
                f"<{labels.dtype} labels of shape {labels.shape}>",
                "imbalanced-learn resamples 1-D integer class ids; for one-hot targets store "
                "the class ids (targets.argmax(1)) in the dataset and convert in the step.",
            )
        x = features.cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
        if x.ndim != 2:
            raise config_error(
                "datamodule",
                f"<features of shape {x.shape}>",
                "SMOTE-style resampling needs 2-D (tabular) features; for images use "
                "ResamplingSampler or ClassWeighting.",
            )
        if len(x) != len(labels):
            raise config_error(
                "datamodule",
                f"<{len(x)} feature rows, {len(labels)} labels>",
                "Pass one label per feature row.",
            )
        return x, labels.astype(np.int64, copy=False)

    def _resampled(self, epoch: int) -> LabeledTensorDataset:
        if self._original is None:
            raise RecipeConfigError("ResampledDataModule.setup('fit') has not run.")
        if self.train_dataset is None or self._epoch != epoch:
            seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
            x, y, synthetic = resample_arrays(self.sampler, *self._original, seed=seed)
            self.train_dataset = LabeledTensorDataset(x, y)
            self.synthetic_mask = torch.from_numpy(synthetic)
            self._epoch = epoch
        return self.train_dataset

    @override
    def train_dataloader(self) -> DataLoader[Any]:
        epoch = 0
        if self.fresh_every_epoch:
            trainer = self.trainer
            # Trainer.reload_dataloaders_every_n_epochs is public but set without annotation.
            every = getattr(trainer, "reload_dataloaders_every_n_epochs", 0)
            if every != 1:
                raise config_error(
                    "fresh_every_epoch",
                    True,
                    "Pass Trainer(reload_dataloaders_every_n_epochs=1), so the training "
                    "loader is rebuilt (and resampled) every epoch.",
                )
            epoch = self.trainer.current_epoch if self.trainer is not None else 0
        dataset = self._resampled(epoch)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochShuffleSampler(dataset, seed=self.seed),
        )

    @override
    def val_dataloader(self) -> Any:
        return self.datamodule.val_dataloader()

    @override
    def test_dataloader(self) -> Any:
        return self.datamodule.test_dataloader()

    @override
    def predict_dataloader(self) -> Any:
        return self.datamodule.predict_dataloader()

    @override
    def teardown(self, stage: str) -> None:
        self.datamodule.teardown(stage)
