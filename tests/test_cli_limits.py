"""An int stays an int: ``limit_train_batches: 1`` is one batch through every CLI entry.

Plain LightningCLI hands the Trainer ``1.0`` for ``1`` (every batch; see the note in
`lightning_recipes.runner`); `RecipesCLI`, and through it ``tune`` and ``cross_validate``,
keep the int.
"""

import sys
from pathlib import Path
from typing import Any, Optional, Union

import pytest
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer

from lightning_recipes.runner import RecipesCLI, _int_before_float
from lightning_recipes.tuning import cross_validate, expand_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"
LIMITS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches")


@pytest.fixture(autouse=True)
def _no_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI warns when given both ``args`` and pytest's own ``sys.argv``."""
    monkeypatch.setattr(sys, "argv", sys.argv[:1])


def _config(**trainer: Any) -> dict[str, Any]:
    """The example digits config: one epoch, nothing written, no scheduler."""
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **trainer,
    }
    config["model"]["init_args"]["scheduler"] = None
    return config


def _yaml(tmp_path: Path, limit: str) -> Path:
    """The config as a YAML file whose ``limit_*_batches`` lines read ``limit`` verbatim."""
    text = yaml.safe_dump(_config(), sort_keys=False)
    lines = "".join(f"  {key}: {limit}\n" for key in ("limit_train_batches", "limit_val_batches"))
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("trainer:\n", "trainer:\n" + lines, 1))
    return path


def _fit(args: list[str]) -> RecipesCLI:
    return RecipesCLI(args=["fit", *args], save_config=False)


def _expected(cli: RecipesCLI, limit: int | float) -> tuple[int, int]:
    """The training and validation batches Lightning runs for ``limit`` on this data."""
    train, val = len(cli.datamodule.train_dataloader()), len(cli.datamodule.val_dataloader())
    if isinstance(limit, int):
        return limit, limit
    return int(train * limit), int(val * limit)


@pytest.mark.parametrize(("text", "limit"), [("1", 1), ("1.0", 1.0), ("0.5", 0.5)])
def test_yaml_limit_batches_keep_int_or_float(tmp_path: Path, text: str, limit: float) -> None:
    cli = _fit(["-c", str(_yaml(tmp_path, text))])
    trainer = cli.trainer
    assert type(trainer.limit_train_batches) is type(limit)
    assert trainer.limit_train_batches == limit
    steps, val_batches = _expected(cli, limit)
    assert trainer.global_step == steps  # one epoch
    assert trainer.num_val_batches == [val_batches]
    if text == "1.0":  # every batch: more than one, or the test would not tell
        assert steps == len(cli.datamodule.train_dataloader()) > 1


@pytest.mark.parametrize(("text", "limit"), [("1", 1), ("1.0", 1.0), ("0.5", 0.5)])
def test_command_line_limit_batches_keep_int_or_float(
    tmp_path: Path, text: str, limit: float
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(), sort_keys=False))
    cli = _fit(["-c", str(path), *(f"--trainer.{key}={text}" for key in LIMITS)])
    for key in LIMITS:
        assert type(getattr(cli.trainer, key)) is type(limit), key
        assert getattr(cli.trainer, key) == limit, key
    steps, val_batches = _expected(cli, limit)
    assert cli.trainer.global_step == steps
    assert cli.trainer.num_val_batches == [val_batches]


def test_a_config_dict_and_the_dumped_config_keep_the_int() -> None:
    """``tune`` completes a config with the parser's dump and builds trials from dicts."""
    full = expand_config(_config(limit_train_batches=1, limit_val_batches=1.0))
    assert type(full["trainer"]["limit_train_batches"]) is int
    assert type(full["trainer"]["limit_val_batches"]) is float
    cli = RecipesCLI(args=full, run=False, save_config=False)
    assert type(cli.trainer.limit_train_batches) is int
    assert type(cli.trainer.limit_val_batches) is float
    assert cli.trainer.limit_train_batches == 1


class _Steps(Callback):
    def __init__(self, log: list[int]) -> None:
        self.steps = log

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.steps.append(trainer.global_step)


def test_cross_validate_folds_train_one_batch_per_epoch() -> None:
    steps: list[int] = []
    cross_validate(
        _config(max_epochs=2, limit_train_batches=1, limit_val_batches=1),
        k=2,
        kind="plain",
        callbacks_factory=lambda fold: [_Steps(steps)],
    )
    assert steps == [2, 2]  # 2 epochs of one batch, in each fold


def test_only_unions_with_float_before_int_are_reordered() -> None:
    none = type(None)
    fixed = _int_before_float(Optional[Union[float, int]])  # noqa: UP007, UP045
    assert fixed is not None
    assert fixed.__args__ == (int, float, none)
    assert _int_before_float(float | int | str).__args__ == (int, float, str)
    assert _int_before_float(Union[int, float]) is None  # noqa: UP007
    assert _int_before_float(float | None) is None
    assert _int_before_float(int) is None


def test_help_keeps_lightnings_text_and_shows_int_first(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        RecipesCLI(args=["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--trainer.limit_train_batches LIMIT_TRAIN_BATCHES How much of training dataset to "
        "check (float = fraction, int = num_batches). Value is per device. (type: Union[int, "
        "float, null], default: null)"
    ) in text
