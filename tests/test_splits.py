"""Pure index arithmetic: exact stratification and exact imbalance."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import class_counts, make_imbalanced, stratified_split

labels_st = st.lists(st.integers(0, 5), min_size=1, max_size=300)
fractions_st = st.lists(st.integers(1, 20), min_size=1, max_size=4).map(
    lambda w: tuple(x / sum(w) for x in w)
)


@settings(max_examples=150, deadline=None)
@given(labels=labels_st, fractions=fractions_st, seed=st.integers(0, 2**16))
def test_stratified_split_is_an_exact_stratified_partition(
    labels: list[int], fractions: tuple[float, ...], seed: int
) -> None:
    y = np.asarray(labels)
    parts = stratified_split(y, fractions, seed=seed)
    assert len(parts) == len(fractions)
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(y.size))  # a partition
    for cls in np.unique(y):
        n_c = int((y == cls).sum())
        sizes = [int((y[part] == cls).sum()) for part in parts]
        assert sum(sizes) == n_c
        for size, fraction in zip(sizes, fractions, strict=False):
            assert abs(size - fraction * n_c) < 1.0  # within one sample of exact
    again = stratified_split(y, fractions, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=False))  # deterministic


def test_stratified_split_depends_on_seed() -> None:
    y = np.arange(200) % 4
    a = stratified_split(y, (0.5, 0.5), seed=0)[0]
    b = stratified_split(y, (0.5, 0.5), seed=1)[0]
    assert not np.array_equal(a, b)


@settings(max_examples=150, deadline=None)
@given(
    labels=labels_st,
    fractions=st.dictionaries(st.integers(0, 5), st.floats(0.0, 1.0), max_size=3),
    seed=st.integers(0, 2**16),
)
def test_make_imbalanced_keeps_exact_counts(
    labels: list[int], fractions: dict[int, float], seed: int
) -> None:
    y = np.asarray(labels)
    fractions = {c: f for c, f in fractions.items() if c in set(labels)}
    kept = make_imbalanced(y, fractions, seed=seed)
    assert np.array_equal(kept, np.unique(kept))  # sorted, no repeats
    before = class_counts(y, 6)
    after = class_counts(y[kept], 6)
    for cls in range(6):
        if cls in fractions:
            expected = round(fractions[cls] * before[cls])
            if fractions[cls] > 0:
                expected = max(expected, 1)
            assert after[cls] == expected
        else:
            assert after[cls] == before[cls]


def test_make_imbalanced_extremes() -> None:
    y = np.array([0, 0, 1, 1, 1])
    assert y[make_imbalanced(y, {1: 0.0})].tolist() == [0, 0]
    assert make_imbalanced(y, {1: 1.0}).tolist() == [0, 1, 2, 3, 4]
    assert class_counts(y[make_imbalanced(y, {1: 0.01})]).tolist() == [2, 1]  # never vanishes


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: stratified_split([0, 1], (0.5, 0.6)), "fractions"),
        (lambda: stratified_split([0, 1], (1.5, -0.5)), "fractions"),
        (lambda: stratified_split([[0, 1]], (1.0,)), "labels"),
        (lambda: stratified_split([0.5, 1.0], (1.0,)), "labels"),
        (lambda: make_imbalanced([0, 1], {1: -0.1}), "fractions[1]"),
        (lambda: make_imbalanced([0, 1], {1: 1.5}), "fractions[1]"),
        (lambda: make_imbalanced([0, 1], {7: 0.5}), "fractions"),
        (lambda: class_counts([0, -1]), "labels"),
    ],
)
def test_bad_arguments_name_the_argument(call: object, argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"Invalid {__import__('re').escape(argument)}="):
        call()  # type: ignore[operator]
