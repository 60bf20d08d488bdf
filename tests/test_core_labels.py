"""One reading of "class ids" for every recipe: `lightning_recipes._core.labels.class_ids`.

Data splits, class counts and the loss-target reading take whole-number floats (pandas and
some loaders give labels as floats); the samplers refuse them, where a float label is more
often a regression target than a class. Both go through the same function.
"""

from typing import Any

import numpy as np
import pytest
import torch

from lightning_recipes._core.labels import class_ids
from lightning_recipes.data.splits import class_counts, stratified_split
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.imbalance import ClassBalancedSampler
from lightning_recipes.imbalance.labels import multiclass_ids


@pytest.mark.parametrize(
    "labels",
    [[0, 2, 1], np.array([0, 2, 1], dtype=np.uint64), torch.tensor([0, 2, 1]), [0.0, 2.0, 1.0]],
)
def test_integer_and_whole_float_labels_are_the_same_class_ids(labels: Any) -> None:
    ids = class_ids(labels)
    assert ids.dtype == np.int64
    assert ids.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("labels", "kwargs", "shown"),
    [
        (np.zeros((3, 2), dtype=int), {}, "labels=<2-D array of shape (3, 2)>"),
        ([0.5, 1.0], {}, "labels=<array of dtype float64 with values that are not whole"),
        ([0.0, float("nan")], {}, "labels=<array of dtype float64 with values that are not"),
        ([1.0, 0.0], {"whole_floats": False}, "labels=<array of dtype float64>"),
        ([True, False], {}, "labels=<array of dtype bool>"),
        (["a", "b"], {}, "labels=<array of dtype <U1>"),
        ([0, -1], {}, "labels=<array with minimum -1>"),
        ([], {"empty": False}, "labels=<empty>"),
        ([[0], [1, 2]], {}, "labels=<list>"),
    ],
)
def test_what_is_not_class_ids_is_refused_with_what_it_is(
    labels: Any, kwargs: dict[str, Any], shown: str
) -> None:
    with pytest.raises(RecipeConfigError) as err:
        class_ids(labels, **kwargs)
    assert shown in str(err.value)


def test_booleans_and_no_labels_only_when_asked() -> None:
    assert class_ids([True, False], booleans=True).tolist() == [1, 0]
    assert class_ids([]).tolist() == []
    assert class_ids(torch.tensor([1.0, 0.0], dtype=torch.bfloat16)).tolist() == [1, 0]


def test_every_recipe_reads_labels_through_it() -> None:
    floats = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    assert class_counts(floats).tolist() == [3, 3]
    train, held = stratified_split(floats, [0.5, 0.5], seed=0)
    assert sorted(class_counts(floats[train]) + class_counts(floats[held])) == [3, 3]
    assert set(floats[train].tolist()) == set(floats[held].tolist()) == {0.0, 1.0}
    assert multiclass_ids(floats)[0].tolist() == [0, 1, 1, 0, 1, 0]
    with pytest.raises(RecipeConfigError, match="Class ids start at 0"):
        class_counts([0, -1])  # was "Class ids must be >= 0." in a copy of its own
    with pytest.raises(RecipeConfigError, match=r"labels=<array of dtype float64>"):
        ClassBalancedSampler(floats)  # the samplers' stricter reading, same function
