"""A LightningDataModule for arrays already in memory."""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_recipes._core.rng import run_seed
from lightning_recipes.data.datasets import LabeledTensorDataset
from lightning_recipes.data.preprocessing import Scaler, StandardScaler, make_scaler
from lightning_recipes.data.sampling import EpochShuffleSampler
from lightning_recipes.data.splits import (
    FoldKind,
    check_fold_args,
    fold_split,
    make_imbalanced,
    stratified_split,
)
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["ArrayDataModule", "Arrays", "LabeledDataModule"]

Arrays = tuple[npt.ArrayLike | torch.Tensor, npt.ArrayLike | torch.Tensor]


def _check_split(name: str, split: Arrays | None) -> LabeledTensorDataset | None:
    if split is None:
        return None
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise config_error(name, type(split).__name__, "Pass a (features, labels) pair.")
    try:
        return LabeledTensorDataset(*split)
    except RecipeConfigError as err:
        raise config_error(name, "(features, labels)", f"In this pair: {err}") from err


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
            None: the run's seed (``seed_everything``), so that each seed of a study or
            an ablation has its own split.
    """

    def __init__(self, *, batch_size: int, num_workers: int, seed: int | None) -> None:
        super().__init__()
        if batch_size < 1:
            raise config_error("batch_size", batch_size, "Pass a positive integer.")
        if num_workers < 0:
            raise config_error("num_workers", num_workers, "Pass 0 or more worker processes.")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = run_seed() if seed is None else seed
        self.train_dataset: LabeledTensorDataset | None = None
        self.val_dataset: LabeledTensorDataset | None = None
        self.test_dataset: LabeledTensorDataset | None = None
        self.predict_dataset: LabeledTensorDataset | None = None
        self.fitted_scaler: StandardScaler | None = None

    def _scale_splits(self, scaler: Scaler | None) -> None:
        """Fit ``scaler`` on the training dataset only and apply it to every split.

        Validation, test and predict data are transformed with the training statistics,
        never fitted on, so nothing of them leaks into training (nor, under K-fold, any
        fold into another). The fitted scaler is kept as ``fitted_scaler``.

        Args:
            scaler: The scaler's name, or None to leave the features as they are.
        """
        fitted = make_scaler(scaler)
        if fitted is None or self.train_dataset is None:
            return
        fitted.fit(self.train_dataset.features)
        scaled: dict[int, LabeledTensorDataset] = {}
        for name in ("train_dataset", "val_dataset", "test_dataset", "predict_dataset"):
            dataset = getattr(self, name)
            if dataset is None:
                continue
            if id(dataset) not in scaled:  # predict is often the test dataset itself
                scaled[id(dataset)] = LabeledTensorDataset(
                    fitted.transform(dataset.features), dataset.targets
                )
            setattr(self, name, scaled[id(dataset)])
        self.fitted_scaler = fitted

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

    K-fold cross-validation: with ``num_folds=K``, ``train`` is cut into ``K`` folds
    (`fold_split`: stratified, plain or grouped by ``groups``, shuffled with ``seed``);
    fold ``fold`` is the validation set and the other folds are the training set
    (``val_fraction`` is then unused and ``val`` must not be given). ``imbalance`` and
    ``scaler`` act on the training folds only; ``test`` is untouched.

    Args:
        train: ``(features, labels)`` for training (with folds: all labelled data).
        val: ``(features, labels)`` for validation, or None to hold out ``val_fraction``.
        test: ``(features, labels)`` for testing, optional.
        predict: ``(features, labels)`` for ``trainer.predict``; defaults to ``test``.
        val_fraction: Share of ``train`` held out when ``val`` is None; 0 disables validation.
        imbalance: ``{class_id: fraction}`` to shrink classes of the training split only.
        batch_size: Batch size of every loader.
        num_workers: Worker processes per loader.
        seed: Seed of the hold-out split, the folds, the imbalance and the training shuffle.
            None: the run's seed (``seed_everything``), so that each seed of a study or
            an ablation has its own split.
        num_folds: Number of cross-validation folds ``K >= 2``; None (default) for none.
        fold: Which fold is the validation set, ``0 <= fold < num_folds``.
        fold_kind: ``"stratified"`` (class proportions kept in every fold), ``"plain"``,
            or ``"grouped"`` (no group in two folds; needs ``groups``).
        groups: One group id per row of ``train`` (e.g. the patient or the session), for
            ``fold_kind="grouped"``.
        scaler: ``"standard"`` to standardise features with statistics of the training
            split only (see ``fitted_scaler``); None leaves them as they are.

    Examples:
        >>> import numpy as np
        >>> x, y = np.random.rand(40, 3), np.arange(40) % 2
        >>> dm = ArrayDataModule(train=(x, y), val_fraction=0.25, batch_size=8)
        >>> dm.setup("fit")
        >>> len(dm.train_dataset), len(dm.val_dataset)
        (30, 10)
        >>> folds = ArrayDataModule(train=(x, y), num_folds=4, fold=1, scaler="standard")
        >>> len(folds.train_dataset), len(folds.val_dataset)
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
        seed: int | None = 0,
        num_folds: int | None = None,
        fold: int = 0,
        fold_kind: FoldKind = "stratified",
        groups: npt.ArrayLike | torch.Tensor | None = None,
        scaler: Scaler | None = None,
    ) -> None:
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed)
        if not 0.0 <= val_fraction < 1.0:
            raise config_error("val_fraction", val_fraction, "Pass a fraction in [0, 1).")
        check_fold_args(num_folds, fold, fold_kind)
        make_scaler(scaler)  # validate the name now
        if groups is not None and num_folds is None:
            raise config_error(
                "groups",
                "<array>",
                'Groups choose the folds: set num_folds and fold_kind="grouped".',
            )
        full_train = _check_split("train", train)
        assert full_train is not None
        val_dataset = _check_split("val", val)
        if num_folds is not None:
            if val_dataset is not None:
                raise config_error(
                    "val",
                    "(features, labels)",
                    "With num_folds the folds choose validation: pass all labelled data as train.",
                )
            group_ids = None if groups is None else np.asarray(groups)
            train_idx, val_idx = fold_split(
                full_train.targets.numpy(),
                num_folds,
                fold,
                kind=fold_kind,
                groups=group_ids,
                seed=self.seed,
            )
            full_train, val_dataset = full_train.subset(train_idx), full_train.subset(val_idx)
        elif val_dataset is None and val_fraction > 0:
            train_idx, val_idx = stratified_split(
                full_train.targets.numpy(), (1 - val_fraction, val_fraction), seed=self.seed
            )
            full_train, val_dataset = full_train.subset(train_idx), full_train.subset(val_idx)
        if imbalance:
            full_train = full_train.subset(
                make_imbalanced(
                    full_train.targets.numpy(), imbalance, seed=self.seed, argument="imbalance"
                )
            )
        self.num_folds = num_folds
        self.fold = fold
        self.fold_kind = fold_kind
        self.train_dataset = full_train
        self.val_dataset = val_dataset
        self.test_dataset = _check_split("test", test)
        self.predict_dataset = _check_split("predict", predict) or self.test_dataset
        self._scale_splits(scaler)
