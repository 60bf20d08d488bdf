"""Importing is cheap and extras fail loudly, naming the extra, only when used."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import lightning_recipes
from lightning_recipes import MissingExtraError, RecipeConfigError
from lightning_recipes._core.optional import new_figure, require
from lightning_recipes.data import DigitsDataModule, Mnist1dDataModule
from lightning_recipes.errors import config_error

OPTIONAL = ("matplotlib", "sklearn", "captum", "imblearn", "optuna", "kornia", "mnist1d")


def test_import_works_without_any_optional_package() -> None:
    # `import lightning` itself loads matplotlib when it is installed, so checking
    # sys.modules proves nothing: block the optional packages instead, as if absent.
    # (torchmetrics imports matplotlib whenever its distribution is installed, so it
    # cannot be blocked here: the static test below covers it.)
    blocked = [m for m in OPTIONAL if m != "matplotlib"]
    code = f"""
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` fails; find_spec(name) says "not installed"
import lightning_recipes, lightning_recipes.callbacks, lightning_recipes.cli
from lightning_recipes.modules import Classifier, MLP
Classifier(MLP(4), num_classes=3)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr[-3000:]


# Modules that exist only for an optional package (a subclass of one of its classes) and
# that no module imports at import time: `open_storage` imports the journal when a URL asks
# for one, after `require("optuna")`.
OPTIONAL_ONLY = {"lightning_recipes.tuning.journal": "optuna"}


def test_no_module_imports_an_optional_package_at_import_time() -> None:
    src = Path(lightning_recipes.__file__).parent
    offenders = []
    for path in src.rglob("*.py"):
        module = ".".join(path.relative_to(src.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            optional = [n for n in names if n.split(".")[0] in OPTIONAL]
            if OPTIONAL_ONLY.get(module) is not None:
                optional = [n for n in optional if n.split(".")[0] != OPTIONAL_ONLY[module]]
            optional += [n for n in names if n in OPTIONAL_ONLY]  # nor imports those
            offenders += [f"{path.name}: {n}" for n in optional]
    assert offenders == []


def _image_augmentation() -> object:
    from lightning_recipes.augmentation import ImageAugmentation

    return ImageAugmentation(rotation=5)


@pytest.mark.parametrize(
    ("module", "extra", "use"),
    [
        ("matplotlib", "plots", lambda: new_figure("The LR curve")),
        ("sklearn", "data", lambda: DigitsDataModule().setup()),
        ("mnist1d", "data", lambda: Mnist1dDataModule(num_samples=120, data_seed=9).setup()),
        ("kornia", "augment", lambda: _image_augmentation()),
    ],
)
def test_missing_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, use: object
) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'lightning-recipes\[{extra}\]'"):
        use()  # type: ignore[operator]


def test_a_broken_dependency_is_not_reported_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokenpkg.py").write_text("import does_not_exist_either\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("brokenpkg", extra="x", feature="y")
    assert not isinstance(info.value, MissingExtraError)


def test_error_types() -> None:
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    error = config_error("patience", -1, "Pass 0 or more checks.")
    assert isinstance(error, RecipeConfigError)
    assert isinstance(error, ValueError)
    assert isinstance(error, MisconfigurationException)
    assert str(error) == "Invalid patience=-1. Pass 0 or more checks."
    assert issubclass(MissingExtraError, ImportError)
    assert lightning_recipes.__version__
