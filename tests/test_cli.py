"""The console entry point: a light ``--help``, each default said once, quiet known noise only
inside the commands, and the summary that ends ``fit``."""

import ast
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import lightning_recipes
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes.cli import KNOWN_LOG_MESSAGES, main
from lightning_recipes.runner import recipes_text

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONWARNINGS": ""}
TINY = ["--trainer.max_epochs=1", "--trainer.limit_val_batches=2", "--trainer.logger=false"]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=ENV, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_top_level_help_imports_neither_torch_nor_lightning(tmp_path: Path) -> None:
    code = """
import sys
from lightning_recipes.cli import console
sys.argv = ["lightning-recipes", "--help"]
try:
    console()
except SystemExit as exit:
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning", "jsonargparse"})
    print("exit", exit.code, "heavy", heavy)
"""
    out = _python(code, tmp_path)
    assert "Commands:" in out.stdout, out.stderr[-2000:]
    assert out.stdout.strip().endswith("exit 0 heavy []"), out.stdout[-500:]


def test_public_names_stay_importable_where_they_were() -> None:
    from lightning_recipes import runner
    from lightning_recipes.cli import RecipesCLI

    assert RecipesCLI is runner.RecipesCLI
    # The package imports each public name on first use: the lazy table, the names for type
    # checkers (the TYPE_CHECKING imports) and __all__ list the same names.
    tree = ast.parse(Path(lightning_recipes.__file__).read_text())
    [block] = [
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    ]
    typed = {
        a.asname or a.name for n in block.body if isinstance(n, ast.ImportFrom) for a in n.names
    }
    public = set(lightning_recipes.__all__) - {"__version__"}
    assert typed == public
    assert set(lightning_recipes._MODULE_OF) == public
    assert all(getattr(lightning_recipes, name) is not None for name in public)
    assert set(dir(lightning_recipes)) >= public
    assert lightning_recipes.modules.Classifier is lightning_recipes.Classifier  # submodules too
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        lightning_recipes.Nope  # noqa: B018


def _option_helps(text: str) -> dict[str, str]:
    """Each option's help, its lines joined: ``{"--epochs": "training epochs (default: 15)"}``."""
    helps: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        match = re.match(r"  (-{1,2}[\w.\-]+)", line)
        if match:
            current = match.group(1)
            helps[current] = line
        elif current and line.startswith("    "):
            helps[current] += " " + line.strip()
        else:
            current = ""
    return helps


@pytest.mark.parametrize("command", ["demo", "tune", "fit"])
def test_help_says_each_default_once(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0
    helps = _option_helps(capsys.readouterr().out)
    assert len(helps) > 8
    says_default = re.compile(r"\b[Dd]efault: |\bDefaults to ")  # not "will default to" (a rule)
    twice = {o: h for o, h in helps.items() if len(says_default.findall(h)) > 1}
    assert twice == {}
    assert not any("(default: None)" in h for h in helps.values())
    if command == "demo":
        assert "(default: 15)" in helps["--epochs"]
        assert helps["--name"].endswith("run name (default: <data>-<model>)")
        assert "(default: digits)" in helps["--data"]
    if command == "fit":  # jsonargparse's default stays, the docstring's "Default: ``1``." goes
        assert helps["--trainer.num_nodes"].endswith(
            "Number of GPU nodes for distributed training. (type: int, default: 1)"
        )


def test_fit_prints_no_known_noise_and_ends_with_what_each_recipe_did(tmp_path: Path) -> None:
    # In a subprocess, as a person runs it: pytest's own capture would hide the noise.
    args = ["fit", "-c", str(CONFIG), *TINY, "--trainer.limit_train_batches=1.0"]
    args += [f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    args += ["--trainer.callbacks+=lightning_recipes.EarlyStopping"]
    args += ["--trainer.callbacks.monitor=val_loss"]
    code = "import sys; from lightning_recipes.cli import console; "
    code += f"sys.argv = {['lightning-recipes', *args]!r}; console()"
    out = _python(code, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    printed = out.stdout + out.stderr
    assert "LeafSpec" not in printed
    assert "💡 Tip" not in printed
    assert "limit_train_batches=1.0" not in printed
    assert "GPU available" in printed  # Lightning's other lines still show
    summary = out.stdout.split("What the recipes did:", 1)[1]
    assert "  Early stopping\n    monitor: val_loss\n" in summary
    assert "Best checkpoint: " in summary


def test_the_known_log_messages_are_exact() -> None:
    assert KNOWN_LOG_MESSAGES.match(
        "💡 Tip: For seamless cloud uploads and versioning, try installing [litmodels](...)"
    )
    assert KNOWN_LOG_MESSAGES.match(
        "`Trainer(limit_val_batches=1.0)` was configured so 100% of the batches will be used.."
    )
    assert not KNOWN_LOG_MESSAGES.match(
        "`Trainer(limit_train_batches=1)` was configured so 1 batch per epoch will be used."
    )
    assert not KNOWN_LOG_MESSAGES.match("GPU available: False, used: False")


def test_the_commands_leave_warning_filters_and_loggers_as_they_were(tmp_path: Path) -> None:
    filters = list(warnings.filters)
    args = ["fit", "-c", str(CONFIG), *TINY, "--trainer.limit_train_batches=2"]
    args += [f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"]
    assert main(args) == 0
    assert warnings.filters == filters
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        assert logging.getLogger(name).filters == []


def test_the_library_filters_no_warning_of_its_user(tmp_path: Path) -> None:
    # Importing the library and fitting with it: the filters are Lightning's, untouched, and
    # the user's own warning shows (also one that reads like the noise the CLI hides).
    code = """
import warnings
import lightning.pytorch as pl

baseline = list(warnings.filters)
import lightning_recipes, lightning_recipes.callbacks, lightning_recipes.tuning
from lightning_recipes import MLP, Classifier, DigitsDataModule, EarlyStopping, MetricHistory

class Loud(Classifier):
    def training_step(self, batch, batch_idx):
        warnings.warn("the user's own warning", UserWarning)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated (user)", FutureWarning)
        return super().training_step(batch, batch_idx)

trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=[EarlyStopping("val_loss"),
                     MetricHistory()])
trainer.fit(Loud(MLP(64), num_classes=10), datamodule=DigitsDataModule(batch_size=64))
print("filters unchanged:", warnings.filters == baseline)
"""
    out = _python(code, tmp_path)
    assert "filters unchanged: True" in out.stdout, out.stderr[-3000:]
    assert "UserWarning: the user's own warning" in out.stderr
    assert "LeafSpec)` is deprecated (user)" in out.stderr


def test_recipes_text_shows_facts_tables_notes_and_figures() -> None:
    summaries = [
        RecipeSummary(
            "LR finder",
            facts={
                "chosen lr": 0.01,
                "groups": ["backbone", "head"],
                "tests": [{"epoch": 0, "lr": 0.01}, {"epoch": 2, "lr": 0.003}],
                "accuracy at eps": {"val": {"0": 0.9, "0.1": 0.5}},
            },
            figures={"LR range test": Path("logs/lr_finder.png")},
            notes=["The suggestion came from the valley rule."],
        ),
        RecipeSummary("Weight penalty"),
    ]
    assert recipes_text(summaries) == (
        "What the recipes did:\n"
        "  LR finder\n"
        "    chosen lr: 0.0100\n"
        "    groups: backbone, head\n"
        "    tests:\n"
        "      epoch  lr\n"
        "      -----  ------\n"
        "          0  0.0100\n"
        "          2  0.0030\n"
        "    accuracy at eps:\n"
        "           0       0.1\n"
        "      ---  ------  ------\n"
        "      val  0.9000  0.5000\n"
        "    note: The suggestion came from the valley rule.\n"
        "    figure: logs/lr_finder.png (LR range test)\n"
        "  Weight penalty\n"
    )
    assert recipes_text([]) == ""


def test_the_console_script_destroys_the_process_group_a_ddp_fit_left(tmp_path: Path) -> None:
    import torch.distributed as dist

    from lightning_recipes._core.collectives import release_process_group

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert dist.is_initialized()
    release_process_group()  # what `console()` does before the interpreter exits
    assert not dist.is_initialized()
    release_process_group()  # and nothing when there is none
