"""Generic checks over every callback of the registry (tests/registry.py).

Each callback, from one line of configuration, is checked for: resume equivalence
(interrupted + resumed == uninterrupted, bitwise), construction from LightningCLI-style
YAML (``class_path`` / ``init_args``), deepcopy and pickling (before and after a fit),
2-rank DDP agreement, and every pairing, in both orders, with every callback that touches
one of the same things (the registry's conflict classes); all of them together run in both
orders and with either loss style.
"""

import contextlib
import copy
import inspect
import itertools
import json
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonargparse import ArgumentParser
from lightning.pytorch import Callback

import lightning_recipes
from lightning_recipes import callbacks as callbacks_module
from lightning_recipes._core.contract import ReportsToRun
from lightning_recipes.errors import RecipeWarning
from tests.ddp.harness import DDP_TIMEOUT, run_ddp
from tests.registry import (
    CONFLICT_CLASSES,
    REGISTRY,
    CrashError,
    Entry,
    assert_same,
    fit,
    state_of,
)

IDS = [entry.name for entry in REGISTRY]


def test_every_public_callback_is_in_the_registry_and_in_callbacks_module() -> None:
    registered = {entry.cls() for entry in REGISTRY}
    listed = {getattr(callbacks_module, name) for name in callbacks_module.__all__}
    assert registered == listed
    exported = {
        obj
        for name in lightning_recipes.__all__
        if inspect.isclass(obj := getattr(lightning_recipes, name)) and issubclass(obj, Callback)
    }
    assert exported <= registered


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_resume_equals_an_uninterrupted_run(entry: Entry, tmp_path: Path) -> None:
    full_trainer, full = fit([entry.build()], tmp_path / "full", trainer_kwargs={"max_epochs": 4})
    with contextlib.suppress(CrashError):
        fit([entry.build()], tmp_path / "cut", crash_at=2, trainer_kwargs={"max_epochs": 4})
    last = tmp_path / "cut" / "ckpt" / "last.ckpt"
    assert last.exists()
    resumed_trainer, resumed = fit(
        [entry.build()], tmp_path / "resumed", ckpt_path=last, trainer_kwargs={"max_epochs": 4}
    )
    assert_same(state_of(resumed), state_of(full), "weights")
    assert resumed_trainer.current_epoch == full_trainer.current_epoch
    assert_same(
        resumed_trainer.callbacks[0].state_dict(),  # type: ignore[union-attr]
        full_trainer.callbacks[0].state_dict(),  # type: ignore[union-attr]
        entry.name,
    )
    # A callback that has trained is still picklable (ddp_spawn, checkpoint tooling).
    pickle.loads(pickle.dumps(full_trainer.callbacks[0]))


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_builds_from_lightningcli_yaml(entry: Entry) -> None:
    parser = ArgumentParser()
    parser.add_argument("--callbacks", type=list[Callback])
    text = yaml.safe_dump(
        {"callbacks": [{"class_path": entry.class_path, "init_args": dict(entry.init_args)}]}
    )
    built = parser.instantiate(parser.parse_string(text)).callbacks[0]
    direct = entry.build()
    assert type(built) is type(direct)
    assert built.state_key == direct.state_key
    assert_same(built.state_dict(), direct.state_dict(), entry.name)


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_deepcopies_and_pickles(entry: Entry) -> None:
    callback = entry.build()
    for clone in (copy.deepcopy(callback), pickle.loads(pickle.dumps(callback))):
        assert type(clone) is type(callback)
        assert clone.state_key == callback.state_key


OBSERVERS = [entry for entry in REGISTRY if not entry.changes_training]


@pytest.mark.parametrize("entry", OBSERVERS, ids=[e.name for e in OBSERVERS])
def test_observers_leave_training_untouched(entry: Entry, tmp_path: Path) -> None:
    _, without = fit([], tmp_path / "without", dropout=0.1)
    _, with_it = fit([entry.build()], tmp_path / "with", dropout=0.1)
    assert_same(state_of(with_it), state_of(without), f"{entry.name} changed training")


PAIRS = [(a, b) for a, b in itertools.combinations(REGISTRY, 2) if set(a.touches) & set(b.touches)]


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_every_entry_declares_known_conflict_classes(entry: Entry) -> None:
    assert set(entry.touches) <= set(CONFLICT_CLASSES), entry.touches
    assert len(set(entry.touches)) == len(entry.touches)


def test_the_pairs_are_the_callbacks_that_touch_the_same_thing() -> None:
    """Two loss recipes are paired; a loss recipe and a weight averager are not."""
    names = {(a.name, b.name) for a, b in PAIRS}
    assert ("ClassWeighting", "MixUp") in names  # both edit the loss
    assert ("Freezer", "GradientMonitor") in names  # frozen is not vanishing
    assert ("LRFinder", "Freezer") in names  # the range test knows what will train
    assert ("ClassWeighting", "WeightAverage") not in names
    assert len(PAIRS) < len(list(itertools.combinations(REGISTRY, 2))) / 2


def _recipe_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a.name}+{b.name}" for a, b in PAIRS])
def test_every_pair_composes_in_either_order(first: Entry, second: Entry, tmp_path: Path) -> None:
    results = []
    for order, (a, b) in enumerate(((first, second), (second, first))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, model = fit([a.build(), b.build()], tmp_path / str(order))
        results.append((state_of(model), _recipe_warnings(caught)))
    assert_same(results[0][0], results[1][0], "weights depend on callback order")
    # Nothing in this setup deserves an alarm (e.g. a frozen backbone is not "vanishing").
    allowed = [re.compile(p) for p in (*first.allowed_warnings, *second.allowed_warnings)]
    for _, messages in results:
        alarms = [m for m in messages if not any(p.search(m) for p in allowed)]
        assert alarms == [], alarms


REPORTING = ("EarlyStopping", "LRFinder", "ClassWeighting", "Freezer", "GradientMonitor",
             "Distillation",
             "Attribution", "WeightPenalty", "WeightInit", "ActivationMonitor", "MixUp",
             "CutMix", "LabelSmoothing", "ImageAugmentation", "AdversarialTraining",
             "RobustnessEvaluation", "SnapshotEnsemble", "WeightAverage", "GradientNoiseScale",
             "BatchSizeFinder", "LogitAdjustment")  # fmt: skip


@pytest.mark.parametrize("entry", REGISTRY, ids=IDS)
def test_recipes_that_act_say_what_they_did(entry: Entry, tmp_path: Path) -> None:
    callback = entry.build()
    fit([callback], tmp_path)
    if entry.name.split("-")[0] not in REPORTING:
        return
    assert isinstance(callback, ReportsToRun)
    summary = callback.run_summary()
    assert summary.recipe
    assert summary.facts
    json.dumps(summary.to_dict())  # JSON-able, for metrics.json


@pytest.mark.parametrize("functional", [True, False], ids=["F.cross_entropy", "loss_fn"])
def test_all_callbacks_together_resume_like_an_uninterrupted_run(
    functional: bool, tmp_path: Path
) -> None:
    def build() -> list[Callback]:
        return [entry.build() for entry in REGISTRY]

    args: dict[str, Any] = {"trainer_kwargs": {"max_epochs": 4}, "functional": functional}
    full_trainer, full = fit(build(), tmp_path / "full", **args)
    with contextlib.suppress(CrashError):
        fit(build(), tmp_path / "cut", crash_at=2, **args)
    resumed_trainer, resumed = fit(
        build(), tmp_path / "resumed", ckpt_path=tmp_path / "cut" / "ckpt" / "last.ckpt", **args
    )
    assert_same(state_of(resumed), state_of(full), "weights")
    ours = len(REGISTRY)  # the Trainer puts its checkpoint callback and ours after them
    pairs = zip(resumed_trainer.callbacks[:ours], full_trainer.callbacks[:ours], strict=True)
    for a, b in pairs:
        assert_same(a.state_dict(), b.state_dict(), type(a).__name__)  # type: ignore[union-attr]


def test_all_callbacks_together_in_any_order_and_either_loss_style(tmp_path: Path) -> None:
    states = []
    runs = ((REGISTRY, True), (REGISTRY[::-1], True), (REGISTRY, False))
    for order, (entries, functional) in enumerate(runs):
        built = [e.build() for e in entries]
        trainer, model = fit(built, tmp_path / str(order), functional=functional)
        states.append(state_of(model))
        trainer.test(model, datamodule=trainer.datamodule, verbose=False)
    assert_same(states[0], states[1], "weights depend on callback order")
    # The loss recipes act the same on F.cross_entropy as on self.loss_fn.
    assert_same(states[0], states[2], "weights depend on how the module computes its loss")


@pytest.fixture(scope="module")
def ddp_results(ddp_batch: Any, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if ddp_batch is not None and ddp_batch.has("registry_fits", {}):
        return ddp_batch.get().result("registry_fits", {}, timeout=DDP_TIMEOUT)  # type: ignore[no-any-return]
    return run_ddp("registry_fits", tmp_path_factory.mktemp("registry"), timeout=600)


@pytest.mark.ddp
@pytest.mark.parametrize("name", [*(e.name for e in REGISTRY if e.ddp), "all together"])
def test_two_ddp_ranks_agree(name: str, ddp_results: list[dict[str, Any]]) -> None:
    rank0, rank1 = (r[name] for r in ddp_results)
    assert_same(rank0["weights"], rank1["weights"], f"{name} weights")
    assert_same(rank0["state"], rank1["state"], f"{name} state")
    assert rank0["epoch"] == rank1["epoch"]
