"""Moved recipes: their old names, modules, YAML class paths and pickles still work.

``WeightInit`` (and its math) moved from ``regularization`` to ``initialization``,
``ActivationMonitor`` (and its math) to ``activations``, ``WeightAverage`` from
``ensembles`` to ``averaging``. Then every callback moved to a module named after it
(``stopping.callback`` -> ``stopping.early_stopping``, ``gradients.monitor`` ->
``gradients.gradient_monitor``, ...), and the package faces stopped exporting helpers that
are not callbacks, results or documented functions. The old names, the old modules and the
old YAML class paths keep working for one release, with a `DeprecationWarning` naming the
new path, and checkpoints keep their slots (the ``state_key`` is unchanged).
"""

import importlib
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_recipes import activations, averaging, errors, initialization
from lightning_recipes._core import loss
from lightning_recipes.activations import figure, stats
from lightning_recipes.attribution import attribution, explanation
from lightning_recipes.augmentation import image_augmentation
from lightning_recipes.averaging import ema, weight_average
from lightning_recipes.ensembles import snapshot_ensemble
from lightning_recipes.gradients import (
    anomaly,
    batch_mixing_check,
    check,
    clipping,
    gradient_monitor,
    groups,
    guard,
)
from lightning_recipes.imbalance import class_weighting, imbalance_report, weights
from lightning_recipes.initialization import schemes
from lightning_recipes.lr import apply, lr_finder
from lightning_recipes.robustness import adversarial_training, robustness_evaluation
from lightning_recipes.runner import RecipesCLI
from lightning_recipes.stopping import early_stopping, rules
from lightning_recipes.tuning import add_reporter, metric_recorder, trial_reporter

# (old module, name, new module): the new module holds the very same object.
MOVED_NAMES = [
    ("lightning_recipes.regularization", "WeightInit", initialization),
    ("lightning_recipes.regularization", "init_modules_", initialization),
    ("lightning_recipes.regularization", "lsuv_", initialization),
    ("lightning_recipes.regularization", "SCHEMES", schemes),
    ("lightning_recipes.regularization", "SCHEME_ALIASES", schemes),
    ("lightning_recipes.regularization", "SCHEME_NAMES", schemes),
    ("lightning_recipes.regularization", "ActivationMonitor", activations),
    ("lightning_recipes.regularization", "activation_stats", activations),
    ("lightning_recipes.regularization", "summarize", activations),
    ("lightning_recipes.ensembles", "WeightAverage", averaging),
    ("lightning_recipes.ensembles", "AverageKind", weight_average),
    # Helpers the package faces no longer export (callbacks' parts, the core's plumbing).
    ("lightning_recipes.gradients", "Anomaly", anomaly),
    ("lightning_recipes.gradients", "AnomalyTracker", anomaly),
    ("lightning_recipes.gradients", "anomaly_warning", anomaly),
    ("lightning_recipes.gradients", "GradientClipper", clipping),
    ("lightning_recipes.gradients", "NonFiniteGuard", guard),
    ("lightning_recipes.gradients", "evaluation_mode", check),
    ("lightning_recipes.lr", "group_ratios", apply),
    ("lightning_recipes.lr", "reference_lr", apply),
    ("lightning_recipes.lr", "scale_learning_rate", apply),
    ("lightning_recipes.lr", "set_module_lr", apply),
    ("lightning_recipes.stopping", "infer_mode", rules),
    ("lightning_recipes.augmentation", "LOSS_ATTRIBUTES", loss),
]

# The old modules, now deprecated aliases of the new ones.
MOVED_MODULE_NAMES = [
    ("lightning_recipes.regularization.weight_init", "WeightInit", initialization.weight_init),
    ("lightning_recipes.regularization.init", "init_modules_", schemes),
    ("lightning_recipes.regularization.init", "Scheme", schemes),
    ("lightning_recipes.regularization.init", "resolve_scheme", schemes),
    ("lightning_recipes.regularization.activation_monitor", "ActivationMonitor",
     activations.activation_monitor),
    ("lightning_recipes.regularization.activations", "activation_stats", stats),
    ("lightning_recipes.regularization.activations", "ACTIVATION_TYPES", stats),
    ("lightning_recipes.regularization.activations", "activations_figure", figure),
    ("lightning_recipes.ensembles.averaging", "WeightAverage", weight_average),
    ("lightning_recipes.ensembles.averaging", "AverageKind", weight_average),
    ("lightning_recipes.ensembles.averaging", "ema_decay_for", ema),
    ("lightning_recipes.ensembles.averaging", "ema_horizon", ema),
    # Each callback in a module named after it; the old modules are aliases.
    ("lightning_recipes.stopping.callback", "EarlyStopping", early_stopping),
    ("lightning_recipes.gradients.monitor", "GradientMonitor", gradient_monitor),
    ("lightning_recipes.gradients.monitor", "REMEDIES", anomaly),
    ("lightning_recipes.gradients.monitor", "parameter_groups", groups),
    ("lightning_recipes.gradients.check", "BatchMixingCheck", batch_mixing_check),
    ("lightning_recipes.gradients.check", "BatchMixingError", errors),
    ("lightning_recipes.imbalance.callback", "ClassWeighting", class_weighting),
    ("lightning_recipes.imbalance.callback", "binary_pos_weight", weights),
    ("lightning_recipes.imbalance.callback", "LOSS_ATTRIBUTES", loss),
    ("lightning_recipes.imbalance.metrics", "ImbalanceReport", imbalance_report),
    ("lightning_recipes.attribution.callback", "Attribution", attribution),
    ("lightning_recipes.attribution.callback", "feature_importance", explanation),
    ("lightning_recipes.lr.finder", "LRFinder", lr_finder),
    ("lightning_recipes.lr.finder", "find_lr", lr_finder),
    ("lightning_recipes.lr.finder", "DEFAULT_SUGGESTION", lr_finder),
    ("lightning_recipes.ensembles.snapshot", "SnapshotEnsemble", snapshot_ensemble),
    ("lightning_recipes.robustness.callbacks", "AdversarialTraining", adversarial_training),
    ("lightning_recipes.robustness.callbacks", "RobustnessEvaluation", robustness_evaluation),
    ("lightning_recipes.augmentation.images", "ImageAugmentation", image_augmentation),
    ("lightning_recipes.tuning.pruning", "TrialReporter", trial_reporter),
    ("lightning_recipes.tuning.recorder", "MetricRecorder", metric_recorder),
    ("lightning_recipes.tuning.recorder", "not_logged", metric_recorder),
]  # fmt: skip


@pytest.mark.parametrize(("old", "name", "new"), MOVED_NAMES + MOVED_MODULE_NAMES)
def test_an_old_name_still_works_with_a_warning_naming_the_new_path(
    old: str, name: str, new: Any
) -> None:
    message = rf"{re.escape(old)}\.{name} is deprecated .* import it from {re.escape(new.__name__)}"
    with pytest.warns(DeprecationWarning, match=message):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(new, name)


def test_the_from_import_form_works_too_and_unknown_names_still_fail() -> None:
    with pytest.warns(DeprecationWarning, match=r"regularization\.WeightInit is deprecated"):
        from lightning_recipes.regularization import WeightInit
    assert WeightInit is initialization.WeightInit
    with pytest.warns(DeprecationWarning, match=r"ensembles\.averaging\.WeightAverage"):
        from lightning_recipes.ensembles.averaging import WeightAverage
    assert WeightAverage is averaging.WeightAverage
    for old in {old for old, _, _ in MOVED_NAMES + MOVED_MODULE_NAMES}:
        with pytest.raises(AttributeError, match="no_such_name"):
            importlib.import_module(old).no_such_name  # noqa: B018


def test_the_faces_no_longer_list_the_moved_names() -> None:
    for face, name, _ in MOVED_NAMES:
        assert name not in importlib.import_module(face).__all__, (face, name)
    assert set(initialization.__all__) == {"WeightInit", "init_modules_", "lsuv_"}
    assert set(activations.__all__) == {"ActivationMonitor", "activation_stats", "summarize"}
    assert set(averaging.__all__) == {"WeightAverage", "ema_decay_for", "ema_horizon"}


# What these callbacks' state_key was before the move (checkpoints are keyed by it).
STATE_KEYS = {
    "WeightInit": "WeightInit{'scheme': 'lsuv', 'types': ('Linear', 'Bilinear', 'Conv1d', "
    "'Conv2d', 'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d'), "
    "'names': None, 'exclude': ()}",
    "ActivationMonitor": "ActivationMonitor{'every': None, 'types': ('ReLU', 'ReLU6', "
    "'LeakyReLU', 'PReLU', 'ELU', 'SELU', 'CELU', 'GELU', 'SiLU', 'Mish', 'Softplus', "
    "'Sigmoid', 'Hardsigmoid', 'Tanh', 'Hardtanh', 'Softsign'), 'names': None, 'exclude': ()}",
    "WeightAverage": "WeightAverage{'kind': 'swa', 'decay': 0.9, 'start_epoch': 0}",
}


def test_checkpoint_slots_are_unchanged() -> None:
    assert initialization.WeightInit("lsuv").state_key == STATE_KEYS["WeightInit"]
    assert activations.ActivationMonitor().state_key == STATE_KEYS["ActivationMonitor"]
    assert averaging.WeightAverage("swa", decay=0.9).state_key == STATE_KEYS["WeightAverage"]


def _build_old_yaml(tmp_path: Path, callbacks: list[dict[str, Any]]) -> tuple[Any, str]:
    """A RecipesCLI built from a YAML file whose callbacks use old class paths, and its warnings."""
    config: dict[str, Any] = {
        "trainer": {"default_root_dir": str(tmp_path), "logger": False, "callbacks": callbacks},
        "model": {
            "class_path": "lightning_recipes.Classifier",
            "init_args": {
                "num_classes": 10,
                "backbone": {
                    "class_path": "lightning_recipes.MLP",
                    "init_args": {"in_features": 64},
                },
            },
        },
        "data": {"class_path": "lightning_recipes.DigitsDataModule"},
    }
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.warns(DeprecationWarning, match="is deprecated") as caught:
        cli = RecipesCLI(args=["-c", str(path)], run=False, save_config=False)
    return cli, " ".join(str(w.message) for w in caught)


def test_an_old_yaml_class_path_still_builds(tmp_path: Path) -> None:
    old = [
        ("lightning_recipes.regularization.WeightInit", {"scheme": "lsuv"}),
        ("lightning_recipes.regularization.ActivationMonitor", {"plot": False}),
        ("lightning_recipes.ensembles.WeightAverage", {"kind": "swa", "decay": 0.9}),
    ]
    callbacks = [{"class_path": path, "init_args": args} for path, args in old]
    cli, warned = _build_old_yaml(tmp_path, callbacks)
    for entry in callbacks:
        assert f"{entry['class_path']} is deprecated" in warned
    built = {type(c): c for c in cli.trainer.callbacks}
    init = built[initialization.WeightInit]
    monitor = built[activations.ActivationMonitor]
    average = built[averaging.WeightAverage]
    assert (init.scheme, monitor.plot, average.kind) == ("lsuv", False, "swa")
    assert [c.state_key for c in (init, monitor, average)] == list(STATE_KEYS.values())


@pytest.mark.parametrize(
    ("callback", "new", "old"),
    [
        (
            lambda: initialization.WeightInit("he"),
            "lightning_recipes.initialization.weight_init",
            "lightning_recipes.regularization.weight_init",
        ),
        (
            lambda: averaging.WeightAverage("ema", decay=0.9),  # holds an _EMAUpdate too
            "lightning_recipes.averaging.weight_average",
            "lightning_recipes.ensembles.averaging",
        ),
        (  # a whole module moved: stopping.callback is an alias of stopping.early_stopping
            lambda: early_stopping.EarlyStopping("val_loss", restore_best_weights=True),
            "lightning_recipes.stopping.early_stopping",
            "lightning_recipes.stopping.callback",
        ),
        (  # a callback moved out of a module that keeps the math: gradients.check
            lambda: batch_mixing_check.BatchMixingCheck(on_mixing="warn", samples=(0, 2)),
            "lightning_recipes.gradients.batch_mixing_check",
            "lightning_recipes.gradients.check",
        ),
        (  # one module became two: robustness.callbacks
            lambda: robustness_evaluation.RobustnessEvaluation([0.05], steps=2, plot=False),
            "lightning_recipes.robustness.robustness_evaluation",
            "lightning_recipes.robustness.callbacks",
        ),
    ],
)
def test_a_callback_pickled_under_its_old_module_still_unpickles(
    callback: Any, new: str, old: str
) -> None:
    before = callback()
    payload = pickle.dumps(before, protocol=0)  # text protocol: module paths as lines
    assert f"{new}\n".encode() in payload
    with pytest.warns(DeprecationWarning, match=re.escape(old)):
        after = pickle.loads(payload.replace(f"{new}\n".encode(), f"{old}\n".encode()))
    assert type(after) is type(before)
    assert after.state_key == before.state_key


# Old module paths in YAML, with the state_key each callback had before the move.
OLD_CLASS_PATHS: list[tuple[str, dict[str, Any], str]] = [
    ("lightning_recipes.stopping.callback.EarlyStopping",
     {"monitor": "val_loss", "patience": 1, "restore_best_weights": True},
     "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"),
    ("lightning_recipes.gradients.monitor.GradientMonitor",
     {"log_every_n_steps": 2, "clip": "norm", "max_norm": 1.0},
     "GradientMonitor{'groups': 'layer', 'clip': 'norm', 'max_norm': 1.0, 'p': 2.0, 'every': 2, "
     "'vanish': 1e-08, 'explode': None, 'mode': 'absolute', 'patience': 3}"),
    ("lightning_recipes.imbalance.callback.ClassWeighting", {"scheme": "balanced"},
     "ClassWeighting{'scheme': 'balanced', 'beta': 0.999, 'loss_attr': None, 'label_key': None}"),
    ("lightning_recipes.lr.finder.LRFinder",
     {"num_steps": 30, "min_lr": 1e-5, "max_lr": 10.0, "plot": False, "verbose": False},
     "LRFinder{'min_lr': 1e-05, 'max_lr': 10.0, 'num_steps': 30, 'mode': 'exponential', "
     "'suggestion': 'minimum', 'at_start': True, 'milestones': []}"),
    ("lightning_recipes.ensembles.snapshot.SnapshotEnsemble", {"cycle_epochs": 1},
     "SnapshotEnsemble{'cycle_epochs': 1, 'max_snapshots': None, 'skip_cycles': 0}"),
    ("lightning_recipes.robustness.callbacks.AdversarialTraining", {"eps": 0.05},
     "AdversarialTraining{'eps': 0.05, 'method': 'fgsm', 'norm': 'linf'}"),
    ("lightning_recipes.tuning.pruning.TrialReporter",
     {"storage": "sqlite:///x.db", "study_name": "s", "trial_id": 3, "step_offset": 5},
     "TrialReporter{'study_name': 's', 'trial_id': 3, 'monitor': 'val_loss', 'step_offset': 5}"),
]  # fmt: skip


def test_old_module_class_paths_in_yaml_still_build(tmp_path: Path) -> None:
    callbacks = [{"class_path": path, "init_args": args} for path, args, _ in OLD_CLASS_PATHS]
    cli, warned = _build_old_yaml(tmp_path, callbacks)
    built = {type(c).__name__: c for c in cli.trainer.callbacks}
    for class_path, _, state_key in OLD_CLASS_PATHS:
        assert f"{class_path} is deprecated" in warned
        old_module, name = class_path.rsplit(".", 1)
        assert type(built[name]).__module__ != old_module  # built from the new module
        assert built[name].state_key == state_key  # the checkpoint slot it had before


def test_a_trial_config_saved_with_the_old_reporter_path_gets_one_reporter() -> None:
    old = "lightning_recipes.tuning.pruning.TrialReporter"
    config = {"trainer": {"callbacks": [{"class_path": old, "init_args": {"trial_id": 1}}]}}
    new = add_reporter(config, storage="sqlite:///a.db", study_name="s", trial_id=2)
    paths = [c["class_path"] for c in new["trainer"]["callbacks"]]
    assert paths == ["lightning_recipes.tuning.trial_reporter.TrialReporter"]
