"""Splits and folds at their boundaries, against counts written by hand."""

import numpy as np
import pytest

from lightning_recipes.data.splits import fold_split, make_imbalanced, stratified_split


def test_one_fold_per_sample_is_leave_one_out() -> None:
    labels = [0, 1, 0, 1]
    held_out = []
    for fold in range(4):
        train, val = fold_split(labels, num_folds=4, fold=fold, kind="plain")
        assert len(val) == 1
        assert len(train) == 3
        held_out.extend(val.tolist())
    assert sorted(held_out) == [0, 1, 2, 3]


def test_more_folds_than_samples_is_refused() -> None:
    with pytest.raises(ValueError, match="num_folds"):
        fold_split([0, 1, 0, 1], num_folds=5, fold=0, kind="plain")


def test_a_stratified_split_gives_each_class_its_largest_remainder_share() -> None:
    labels = np.repeat([0, 1], [10, 5])
    first, second = stratified_split(labels, (0.7, 0.3), seed=0)
    # class 0: 7 + 3; class 1: 3.5 + 1.5 -> the larger remainder (tie: the earlier part) wins
    assert np.bincount(labels[first], minlength=2).tolist() == [7, 4]
    assert np.bincount(labels[second], minlength=2).tolist() == [3, 1]


def test_make_imbalanced_keeps_round_fraction_and_at_least_one() -> None:
    labels = np.repeat([0, 1, 2], 10)
    kept = make_imbalanced(labels, {1: 0.25, 2: 0.01}, seed=0)
    assert np.bincount(labels[kept], minlength=3).tolist() == [10, 2, 1]  # round(2.5) = 2
