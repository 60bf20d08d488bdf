"""docs/api.md matches the public API: the top-level exports and every callback."""

import re
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest

import lightning_recipes
import lightning_recipes.callbacks

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _directives() -> list[tuple[ModuleType, set[str] | None]]:
    """The ``::: module`` blocks of api.md, with their ``members:`` list if one is given."""
    blocks: list[tuple[ModuleType, set[str] | None]] = []
    for block in re.split(r"^(?=::: )", API.read_text(), flags=re.M)[1:]:
        path = block.split()[1]
        members = re.search(r"^\s+members:\s*\[([^\]]*)\]", block, flags=re.M)
        listed = {m.strip().strip("\"'") for m in members.group(1).split(",")} if members else None
        blocks.append((import_module(path), listed))
    return blocks


def _documented(name: str, obj: object) -> bool:
    """Whether a ``:::`` block of api.md renders ``obj`` under ``name``."""
    for module, listed in _directives():
        public = getattr(module, "__all__", ())
        if name in public and getattr(module, name) is obj and (listed is None or name in listed):
            return True
    return False


def _table_names() -> set[str]:
    text = API.read_text()
    section = text.split("## Top-level exports", 1)[1].split("## Modules", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return {name for row in rows for name in re.findall(r"`([\w]+)`", row.split("|")[2])}


def test_the_table_of_top_level_exports_is_the_top_level_all() -> None:
    assert _table_names() == set(lightning_recipes.__all__)


def test_every_top_level_export_and_callback_is_documented() -> None:
    exported = {n: getattr(lightning_recipes, n) for n in lightning_recipes.__all__}
    exported.pop("__version__")
    callbacks = {
        n: getattr(lightning_recipes.callbacks, n) for n in lightning_recipes.callbacks.__all__
    }
    missing = [n for n, obj in {**exported, **callbacks}.items() if not _documented(n, obj)]
    assert missing == []
    assert _documented("explain", lightning_recipes.explain)


def test_every_callback_is_exported_from_the_top_level() -> None:
    for name in lightning_recipes.callbacks.__all__:
        assert getattr(lightning_recipes, name) is getattr(lightning_recipes.callbacks, name)
    assert not {"mlp", "small_cnn"} & set(lightning_recipes.__all__)  # one name per builder


RECIPES = (
    "activations",
    "attribution",
    "augmentation",
    "averaging",
    "batch_size",
    "distillation",
    "ensembles",
    "finetuning",
    "gradients",
    "imbalance",
    "initialization",
    "lr",
    "regularization",
    "robustness",
    "stopping",
    "tuning",
)


def test_every_package_is_a_recipe_or_named_as_plumbing() -> None:
    root = Path(lightning_recipes.__file__).parent
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert packages == {*RECIPES, "_core", "data", "modules"}


@pytest.mark.parametrize("recipe", RECIPES)
def test_no_recipe_package_imports_another(recipe: str) -> None:
    import ast

    root = Path(lightning_recipes.__file__).parent / recipe
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[0] == "lightning_recipes" and len(parts) > 1:
                    assert parts[1] not in set(RECIPES) - {recipe}, f"{path}: {node.module}"
