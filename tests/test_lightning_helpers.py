"""_core.trainer helpers on one process (their DDP behaviour: test_ddp_classifier.py)."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_recipes import RecipeConfigError
from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.optional import new_figure
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier


def _figure() -> object:
    figure = new_figure("test")
    figure.subplots().plot([1, 2, 3], [3, 1, 2])
    return figure


def test_log_figure_saves_png_and_sends_it_to_tensorboard(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    trainer = Trainer(logger=[logger, CSVLogger(tmp_path)], accelerator="cpu", max_epochs=1)
    path = helpers.log_figure(trainer, _figure(), "lr/curve", step=7)
    assert path == Path(logger.log_dir) / "figures" / "lr" / "curve_step7.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    logger.experiment.flush()
    events = EventAccumulator(logger.log_dir).Reload()
    assert "lr/curve" in events.Tags()["images"]
    assert events.Images("lr/curve")[0].step == 7


def test_run_dir_matches_trainer_log_dir(tmp_path: Path) -> None:
    for loggers in ([TensorBoardLogger(tmp_path)], [CSVLogger(tmp_path, name="x")], False):
        trainer = Trainer(logger=loggers, default_root_dir=tmp_path, accelerator="cpu")
        assert helpers.run_dir(trainer) == Path(trainer.log_dir or "")
    assert helpers.figure_dir(trainer) == tmp_path / "figures"


def test_without_logger_or_default_root_dir_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(logger=False, accelerator="cpu")  # Lightning falls back to the cwd
    assert helpers.run_dir(trainer) is None
    assert helpers.figure_dir(trainer) is None
    assert helpers.log_figure(trainer, _figure(), "lr/curve") is None
    assert list(tmp_path.iterdir()) == []
    # A folder the user names is used, even a relative one inside the current folder.
    named = Trainer(logger=False, accelerator="cpu", default_root_dir="out")
    assert helpers.log_figure(named, _figure(), "lr/curve") == Path("out/figures/lr/curve.png")
    assert (tmp_path / "out" / "figures" / "lr" / "curve.png").is_file()


def test_single_process_collectives_are_identities() -> None:
    trainer = Trainer(accelerator="cpu", devices=1, logger=False)
    value = torch.tensor([1.0, 2.0])
    assert helpers.reduce_mean(trainer, value) is value
    assert helpers.reduce_sum(trainer, value) is value
    assert helpers.broadcast(trainer, {"a": 1}) == {"a": 1}
    assert helpers.all_ranks_agree(trainer, True)
    assert not helpers.all_ranks_agree(trainer, False)


def test_strategy_family_and_refusal() -> None:
    single = Trainer(accelerator="cpu", devices=1, logger=False)
    ddp = Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False)
    spawn = Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False)
    assert [helpers.strategy_family(t) for t in (single, ddp, spawn)] == ["single", "ddp", "ddp"]
    helpers.refuse_strategies(single, {"fsdp", "deepspeed"}, recipe="Test", reason="no.")
    with pytest.raises(
        RecipeConfigError, match=r"Test does not support strategy DDPStrategy \(ddp\): because"
    ):
        helpers.refuse_strategies(ddp, {"ddp"}, recipe="Test", reason="because.")


def test_missing_metric_message_lists_logged_metrics(make_trainer: Callable[..., Trainer]) -> None:
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=2)
    trainer.fit(Classifier(MLP(64, hidden=(8,)), 10), datamodule=DigitsDataModule())
    message = helpers.missing_metric_message("val_los", trainer, recipe="EarlyStopping")
    assert "EarlyStopping monitors 'val_los'" in message
    assert "'val_loss'" in message
    assert "'val_acc'" in message
    assert "'train_loss'" in message
