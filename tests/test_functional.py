"""`lightning_recipes.functional`: the pure forms of the recipes, re-exported, base install only."""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer

import lightning_recipes
from lightning_recipes import functional

SRC = Path(lightning_recipes.__file__).parent
# Packages that are not recipes: shared plumbing, data, models, the search over configs.
NOT_RECIPES = {"_core", "data", "modules", "tuning"}
RECIPES = {p.name for p in SRC.iterdir() if p.is_dir() and p.name not in NOT_RECIPES}
RECIPES.discard("__pycache__")


def _is_adapter(value: object) -> bool:
    return inspect.isclass(value) and issubclass(value, (Callback, LightningModule, Trainer))


def test_every_name_is_a_function_of_a_recipe_packages_pure_module() -> None:
    assert len(functional.__all__) == len(set(functional.__all__))
    for name in functional.__all__:
        value = getattr(functional, name)
        assert inspect.isfunction(value), name  # not a callback, a class or a constant
        package, *rest = value.__module__.split(".")[1:]
        assert package in RECIPES, f"{name} comes from {value.__module__}"
        assert rest, f"{name} is defined in a package face, not in a module of its own"
        module = importlib.import_module(value.__module__)
        assert getattr(module, name) is value  # a re-export, not a second implementation
        # Pure: the module holds no callback, module or Trainer (the adapters live apart).
        adapters = [n for n, v in vars(module).items() if _is_adapter(v)]
        assert adapters == [], f"{value.__module__} ({name}) holds {adapters}"
        assert value.__doc__, name


def test_the_functional_names_are_those_of_the_package_faces() -> None:
    for name in functional.__all__:
        value = getattr(functional, name)
        face = importlib.import_module(".".join(value.__module__.split(".")[:2]))
        if name in getattr(face, "__all__", ()):
            assert getattr(face, name) is value, name


def test_it_imports_and_runs_without_the_optional_extras() -> None:
    # matplotlib cannot be blocked nor checked in sys.modules: `import lightning` (through
    # torchmetrics) loads it whenever it is installed. tests/test_packaging.py checks
    # statically that no module imports it (or any extra) at import time.
    code = """
import sys
for name in ("captum", "optuna", "kornia", "sklearn", "imblearn", "mnist1d"):
    sys.modules[name] = None  # `import name` fails, as if not installed
import torch
import lightning_recipes.functional as F
print(F.ema_decay_for(1_000), float(F.penalty_value([torch.tensor([1.0, -2.0])], l1=1.0, l2=0.0)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "0.99 3.0", out.stderr[-3000:]


def test_importing_it_imports_no_optional_package() -> None:
    code = """
import sys
import lightning_recipes.functional
print(sorted({m.split(".")[0] for m in sys.modules} & {"captum", "optuna", "kornia", "imblearn"}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "[]", out.stderr[-3000:]
