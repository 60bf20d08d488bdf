"""Initialisation, activation statistics and weight averaging have packages of their own.

``WeightInit`` (and its math) moved from ``regularization`` to ``initialization``,
``ActivationMonitor`` (and its math) to ``activations``, ``WeightAverage`` from
``ensembles`` to ``averaging``. The old names, the old modules and the old YAML class
paths keep working for one release, with a `DeprecationWarning` naming the new path, and
checkpoints keep their slots (the ``state_key`` is unchanged).
"""

import importlib
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_recipes import activations, averaging, initialization
from lightning_recipes.activations import figure, stats
from lightning_recipes.averaging import ema, weight_average
from lightning_recipes.initialization import schemes
from lightning_recipes.runner import RecipesCLI

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


def test_the_faces_of_regularization_and_ensembles_no_longer_list_the_moved_names() -> None:
    regularization = importlib.import_module("lightning_recipes.regularization")
    ensembles = importlib.import_module("lightning_recipes.ensembles")
    moved = {name for _, name, _ in MOVED_NAMES}
    assert moved.isdisjoint({*regularization.__all__, *ensembles.__all__})
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


def test_an_old_yaml_class_path_still_builds(tmp_path: Path) -> None:
    config: dict[str, Any] = {
        "trainer": {
            "default_root_dir": str(tmp_path),
            "logger": False,
            "callbacks": [
                {
                    "class_path": "lightning_recipes.regularization.WeightInit",
                    "init_args": {"scheme": "lsuv"},
                },
                {
                    "class_path": "lightning_recipes.regularization.ActivationMonitor",
                    "init_args": {"plot": False},
                },
                {
                    "class_path": "lightning_recipes.ensembles.WeightAverage",
                    "init_args": {"kind": "swa", "decay": 0.9},
                },
            ],
        },
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
    warned = " ".join(str(w.message) for w in caught)
    for entry in config["trainer"]["callbacks"]:
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
