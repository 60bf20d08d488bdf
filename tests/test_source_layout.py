"""The shape of the source tree: no import circle, no module too long to hold one purpose."""

import ast
from pathlib import Path

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
