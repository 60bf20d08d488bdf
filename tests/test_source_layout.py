"""The shape of the source tree: no import circle, no overlong module, callbacks by name.

A module holds one purpose (at most 450 lines); a recipe package keeps each callback in a
module named after it.
"""

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from lightning.pytorch import Callback

import lightning_recipes

SRC = Path(lightning_recipes.__file__).parent
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The library modules ``path`` imports when it is imported (module level)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("lightning_recipes"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lightning_recipes"))
    return found


def test_the_import_graph_has_no_circle() -> None:
    modules = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: sorted(_imports(path) & modules.keys()) for name, path in modules.items()}
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in graph[name]:
            if state.get(other) == 1:
                circles.append([*path[path.index(other) :], other])
            elif other not in state:
                visit(other, [*path, other])
        state[name] = 2

    for name in modules:
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_no_module_is_over_the_length_limit() -> None:
    lengths = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in SRC.rglob("*.py")}
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert too_long == {}, "split these modules by job"


def test_the_core_imports_no_recipe_package() -> None:
    recipes = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("_")}
    for path in (SRC / "_core").rglob("*.py"):
        imported = {name.split(".")[1] for name in _imports(path) if name.count(".") >= 1}
        assert imported & recipes == set(), path.name


# Packages that are not recipes: shared plumbing, data, models (none defines a callback).
NOT_RECIPES = {"_core", "data", "modules"}


def _snake_case(name: str) -> str:
    """``LRFinder`` -> ``lr_finder``, ``BatchMixingCheck`` -> ``batch_mixing_check``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _callbacks_defined_in(package: str) -> dict[str, str]:
    """``{class name: module name}`` of every Callback class a recipe package defines."""
    found: dict[str, str] = {}
    root = importlib.import_module(f"lightning_recipes.{package}")
    for info in pkgutil.walk_packages(root.__path__, f"{root.__name__}."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():  # not __getattr__: aliases define nothing
            if (
                inspect.isclass(value)
                and issubclass(value, Callback)
                and value.__module__ == module.__name__
            ):
                found[name] = module.__name__
    return found


RECIPE_PACKAGES = sorted(
    p.name for p in SRC.iterdir() if (p / "__init__.py").exists() and p.name not in NOT_RECIPES
)


@pytest.mark.parametrize("package", RECIPE_PACKAGES)
def test_each_callback_lives_in_a_module_named_after_it(package: str) -> None:
    # The one exception: a private helper callback stays beside the public one that
    # uses it (lr_finder._EndFitAfterStart ends find_lr's throwaway fit). Old module paths
    # (stopping.callback, gradients.monitor, ...) are deprecated aliases that define
    # nothing: they forward to the new modules through a module __getattr__.
    misplaced = {
        name: module
        for name, module in _callbacks_defined_in(package).items()
        if not name.startswith("_") and module.rsplit(".", 1)[1] != _snake_case(name)
    }
    assert misplaced == {}, "move each callback to a module named after it (snake_case)"


def test_the_snake_case_rule() -> None:
    assert [_snake_case(n) for n in ("LRFinder", "MixUp", "BatchMixingCheck", "WeightInit")] == [
        "lr_finder",
        "mix_up",
        "batch_mixing_check",
        "weight_init",
    ]
    assert _callbacks_defined_in("stopping") == {
        "EarlyStopping": "lightning_recipes.stopping.early_stopping"
    }
