"""Every public class of the imbalance package refuses bad arguments at construction.

Table-driven: each row is one bad input; the error must be a RecipeConfigError whose
message names the argument (issue 13, "Bad input everywhere").
"""

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import NearMiss

from lightning_recipes.data import ArrayDataModule
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.imbalance import (
    BalancedAccuracy,
    ClassBalancedSampler,
    ClassWeighting,
    FocalLoss,
    GeometricMeanRecall,
    ImbalanceReport,
    PerClassRecall,
    ResampledDataModule,
    ResamplingSampler,
    class_weights,
    focal_loss,
    sample_weights,
)

Row = tuple[str, dict[str, Any]]


def check(build: Callable[..., Any], argument: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(RecipeConfigError) as info:
        build(**kwargs)
    assert re.search(rf"\b{re.escape(argument)}\b", str(info.value)), str(info.value)


CLASS_WEIGHTING: list[Row] = [
    ("scheme", {"scheme": "inverse"}),
    ("scheme", {"scheme": 3}),
    ("scheme", {"scheme": {}}),
    ("scheme", {"scheme": {0: -1.0, 1: 1.0}}),
    ("scheme", {"scheme": {"a": 1.0}}),
    ("scheme", {"scheme": {0: float("nan")}}),
    ("beta", {"beta": -0.1}),
    ("beta", {"beta": 1.0}),
    ("beta", {"beta": "0.9"}),
    ("beta", {"beta": True}),
    ("labels", {"labels": [0.5, 1.5]}),
    ("labels", {"labels": []}),
    ("labels", {"labels": 3}),
    ("labels", {"labels": ["a", "b"]}),
    ("labels", {"labels": [0.0, float("nan")]}),
    ("label_key", {"label_key": 1.5}),
    ("label_key", {"label_key": ""}),
    ("label_key", {"label_key": True}),
    ("label_key", {"label_key": [1]}),
    ("loss_attr", {"loss_attr": ""}),
    ("loss_attr", {"loss_attr": 5}),
    ("loss_attr", {"loss_attr": "my loss"}),
    ("num_classes", {"num_classes": 1}),
    ("num_classes", {"num_classes": 2.5}),
    ("num_classes", {"num_classes": "10"}),
    ("zero_count", {"zero_count": "skip"}),
    ("log", {"log": "yes"}),
]


@pytest.mark.parametrize(("argument", "kwargs"), CLASS_WEIGHTING)
def test_class_weighting(argument: str, kwargs: dict[str, Any]) -> None:
    check(ClassWeighting, argument, kwargs)


FOCAL: list[Row] = [
    ("gamma", {"gamma": -1.0}),
    ("gamma", {"gamma": "2"}),
    ("gamma", {"gamma": float("inf")}),
    ("gamma", {"gamma": True}),
    ("reduction", {"reduction": "avg"}),
    ("task", {"task": "multi"}),
    ("ignore_index", {"ignore_index": 1.5}),
    ("ignore_index", {"ignore_index": True}),
    ("alpha", {"alpha": -0.5}),
    ("alpha", {"alpha": 1.5, "task": "binary"}),
    ("alpha", {"alpha": [0.5, 0.5], "task": "binary"}),
    ("alpha", {"alpha": [[1.0]]}),
    ("alpha", {"alpha": [1.0, -1.0]}),
    ("weight", {"weight": [1.0, float("nan")]}),
    ("weight", {"weight": ["a"]}),
    ("weight", {"weight": [-1.0, 1.0]}),
]


@pytest.mark.parametrize(("argument", "kwargs"), FOCAL)
def test_focal_loss_module(argument: str, kwargs: dict[str, Any]) -> None:
    check(FocalLoss, argument, kwargs)


@pytest.mark.parametrize(("argument", "kwargs"), FOCAL[:6] + FOCAL[8:12])
def test_focal_loss_function(argument: str, kwargs: dict[str, Any]) -> None:
    kwargs = {k: v for k, v in kwargs.items() if k != "ignore_index"}
    check(lambda **kw: focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), **kw), argument, kwargs)


CLASS_WEIGHTS: list[Row] = [
    ("counts", {"counts": [10]}),
    ("counts", {"counts": []}),
    ("counts", {"counts": [[1, 2], [3, 4]]}),
    ("counts", {"counts": [1.5, 2]}),
    ("counts", {"counts": [-1, 5]}),
    ("counts", {"counts": [0, 0]}),
    ("counts", {"counts": ["a", "b"]}),
    ("counts", {"counts": [5, 0]}),
    ("counts", {"counts": [1, float("inf")]}),
    ("scheme", {"counts": [5, 5], "scheme": "inverse"}),
    ("scheme", {"counts": [5, 5], "scheme": 3}),
    ("scheme", {"counts": [5, 5], "scheme": {0: 1.0}}),
    ("scheme", {"counts": [5, 5], "scheme": {0: 1.0, 1: -2.0}}),
    ("scheme", {"counts": [5, 5], "scheme": {0: 1.0, 5: 1.0}}),
    ("beta", {"counts": [5, 5], "beta": 1.0}),
    ("beta", {"counts": [5, 5], "beta": "0.9"}),
    ("zero_count", {"counts": [5, 5], "zero_count": "skip"}),
]


@pytest.mark.parametrize(("argument", "kwargs"), CLASS_WEIGHTS)
def test_class_weights(argument: str, kwargs: dict[str, Any]) -> None:
    check(class_weights, argument, kwargs)


SAMPLE_WEIGHTS: list[Row] = [
    ("weights", {"labels": [0, 1], "weights": [[1.0]]}),
    ("weights", {"labels": [0, 1], "weights": 1.0}),
    ("labels", {"labels": [0.5, 1.0], "weights": [1.0, 2.0]}),
    ("labels", {"labels": [0, 2], "weights": [1.0, 2.0]}),
    ("labels", {"labels": [-1, 0], "weights": [1.0, 2.0]}),
    ("labels", {"labels": [True, False], "weights": [1.0, 2.0]}),
    ("labels", {"labels": [0, 5], "weights": [1.0, 2.0]}),
    ("labels", {"labels": [[0, 3]], "weights": [1.0, 2.0]}),
    ("labels", {"labels": np.array([0.0, 1.0]), "weights": [1.0, 2.0]}),
    ("labels", {"labels": torch.tensor([0.0]), "weights": [1.0, 2.0]}),
]


@pytest.mark.parametrize(("argument", "kwargs"), SAMPLE_WEIGHTS)
def test_sample_weights(argument: str, kwargs: dict[str, Any]) -> None:
    check(sample_weights, argument, kwargs)


BAD_LABELS: list[Any] = [
    [[0, 1], [1, 0]],
    [],
    [0.5, 1.0],
    [-1, 0, 1],
    "abc",
    None,
    5,
    torch.zeros(3, 2),
    np.array([0.0, 1.0]),
    [[0], [1, 2]],
]
SAMPLER_ROWS: list[Row] = [("labels", {"labels": labels}) for labels in BAD_LABELS] + [
    ("seed", {"labels": [0, 1], "seed": -1}),
    ("seed", {"labels": [0, 1], "seed": 1.5}),
    ("seed", {"labels": [0, 1], "seed": True}),
    ("seed", {"labels": [0, 1], "seed": "0"}),
]


RESAMPLING_ROWS: list[Row] = [
    *SAMPLER_ROWS,
    ("sampler", {"labels": [0, 1], "sampler": SMOTE()}),
    ("sampler", {"labels": [0, 1], "sampler": NearMiss()}),
    ("sampler", {"labels": [0, 1], "sampler": object()}),
    ("sampler", {"labels": [0, 1], "sampler": "RandomOverSampler"}),
    ("sampler", {"labels": [0, 1], "sampler": RandomOverSampler(shrinkage=1.0)}),
]


@pytest.mark.parametrize(("argument", "kwargs"), RESAMPLING_ROWS)
def test_resampling_sampler(argument: str, kwargs: dict[str, Any]) -> None:
    check(ResamplingSampler, argument, kwargs)


BALANCED_ROWS: list[Row] = [
    *SAMPLER_ROWS,
    ("weights", {"labels": [0, 1], "weights": "inverse"}),
    ("weights", {"labels": [0, 1], "weights": [1.0]}),
    ("weights", {"labels": [0, 1], "weights": [1.0, -1.0]}),
    ("weights", {"labels": [0, 1], "weights": [0.0, 0.0]}),
    ("weights", {"labels": [0, 1], "weights": [1.0, float("nan")]}),
    ("weights", {"labels": [0, 1], "weights": [[1.0, 1.0]]}),
    ("num_samples", {"labels": [0, 1], "num_samples": 0}),
    ("num_samples", {"labels": [0, 1], "num_samples": 2.5}),
    ("num_samples", {"labels": [0, 1], "num_samples": True}),
]


@pytest.mark.parametrize(("argument", "kwargs"), BALANCED_ROWS)
def test_class_balanced_sampler(argument: str, kwargs: dict[str, Any]) -> None:
    check(ClassBalancedSampler, argument, kwargs)


def tabular() -> ArrayDataModule:
    x = np.random.default_rng(0).normal(size=(40, 3))
    return ArrayDataModule(train=(x, np.arange(40) % 2), batch_size=8)


RESAMPLED: list[Row] = [
    ("datamodule", {"datamodule": None}),
    ("datamodule", {"datamodule": "data"}),
    ("datamodule", {"datamodule": [1, 2]}),
    ("sampler", {"sampler": None}),
    ("sampler", {"sampler": SMOTE}),
    ("sampler", {"sampler": "SMOTE"}),
    ("sampler", {"sampler": object()}),
    ("fresh_every_epoch", {"fresh_every_epoch": "yes"}),
    ("fresh_every_epoch", {"fresh_every_epoch": 1}),
    ("batch_size", {"batch_size": 0}),
    ("batch_size", {"batch_size": 2.5}),
    ("batch_size", {"batch_size": True}),
    ("seed", {"seed": -1}),
    ("seed", {"seed": "0"}),
    ("seed", {"seed": 1.5}),
]


@pytest.mark.parametrize(("argument", "kwargs"), RESAMPLED)
def test_resampled_datamodule(argument: str, kwargs: dict[str, Any]) -> None:
    defaults: dict[str, Any] = {"datamodule": tabular(), "sampler": SMOTE()}
    check(ResampledDataModule, argument, {**defaults, **kwargs})


NUM_CLASSES: list[Any] = [1, 0, -3, 2.5, "3", True, None, [3], float("nan"), 1.0]


@pytest.mark.parametrize("metric", [PerClassRecall, GeometricMeanRecall, BalancedAccuracy])
@pytest.mark.parametrize("value", NUM_CLASSES)
def test_metrics(metric: type, value: Any) -> None:
    check(metric, "num_classes", {"num_classes": value})


REPORT: list[Row] = [
    *[("num_classes", {"num_classes": value}) for value in NUM_CLASSES[:6]],
    ("class_names", {"class_names": ["a", "b"]}),
    ("class_names", {"class_names": "abc"}),
    ("class_names", {"class_names": ["a", "a", "b"]}),
    ("class_names", {"class_names": ["a", "", "b"]}),
    ("class_names", {"class_names": [0, 1, 2]}),
    ("plot", {"plot": "yes"}),
    ("label_key", {"label_key": 1.5}),
    ("label_key", {"label_key": ""}),
    ("input_key", {"input_key": [0]}),
]


@pytest.mark.parametrize(("argument", "kwargs"), REPORT)
def test_imbalance_report(argument: str, kwargs: dict[str, Any]) -> None:
    check(ImbalanceReport, argument, {"num_classes": 3, "plot": False, **kwargs})
