"""Exact behaviour of search spaces and pruning at their boundaries."""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch import Trainer

from lightning_recipes.tuning.config import apply_params
from lightning_recipes.tuning.space import load_space, resize_lists
from lightning_recipes.tuning.trial_reporter import TrialReporter
from tests.scripted import Scripted, one_batch

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

LIST = "model.hidden"


def _space_with_a_length(choices: list[int]) -> Any:
    return load_space(
        {
            "depth": {
                "type": "categorical",
                "choices": choices,
                "virtual": True,
                "length_of": [LIST],
            },
            **{f"{LIST}.{i}": {"type": "int", "low": 1, "high": 9} for i in range(3)},
        }
    )


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_a_list_length_samples_exactly_the_items_it_keeps(depth: int) -> None:
    space = _space_with_a_length([depth])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = space.sample(trial)
    kept = [f"{LIST}.{i}" for i in range(depth)]
    assert sorted(trial.params) == sorted(["depth", *kept])  # nothing removed is asked
    assert sorted(k for k in params if k.startswith(LIST)) == kept
    assert params[f"__length__:{LIST}"] == depth
    config: dict[str, Any] = {"model": {"hidden": [5, 6, 7, 8]}}
    values = resize_lists(config, params)
    assert config["model"]["hidden"] == [5, 6, 7, 8][:depth]
    assert list(values) == kept


def test_a_condition_on_a_value_samples_only_for_that_value() -> None:
    space = load_space(
        {
            "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
            "momentum": {"type": "float", "low": 0.5, "high": 0.9, "condition": {"opt": "sgd"}},
        }
    )
    for choice, asked in (("sgd", True), ("adam", False)):
        params = space.sample(optuna.trial.FixedTrial({"opt": choice, "momentum": 0.7}))
        assert ("momentum" in params) is asked


def test_list_items_fill_a_scalar_in_index_order_whatever_the_space_order() -> None:
    space = load_space(
        {
            "depth": {
                "type": "categorical",
                "choices": [3],
                "virtual": True,
                "length_of": ["model.dropout"],
            },
            # listed last item first
            **{
                f"model.dropout.{i}": {"type": "categorical", "choices": [i / 10]}
                for i in (2, 1, 0)
            },
        }
    )
    fixed = {"depth": 3, **{f"model.dropout.{i}": i / 10 for i in range(3)}}
    params = space.sample(optuna.trial.FixedTrial(fixed))
    config: dict[str, Any] = {"model": {"dropout": 0.5}}  # one value for every layer
    values = resize_lists(config, params)
    assert list(values) == ["model.dropout.0", "model.dropout.1", "model.dropout.2"]
    assert apply_params(config, values)["model"]["dropout"] == [0.0, 0.1, 0.2]


def test_the_reporters_best_value_skips_nan_and_keeps_the_lowest(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    trial = optuna.create_study(storage=storage, study_name="s").ask()
    reporter = TrialReporter(storage, "s", trial._trial_id, prune=False)
    loader = one_batch()
    values = [math.nan, 0.5, 0.25, 0.375]
    make_trainer(max_epochs=4, callbacks=[reporter]).fit(Scripted(values), loader, loader)
    assert (reporter.best, reporter.best_epoch, reporter.last) == (0.25, 2, 0.375)
