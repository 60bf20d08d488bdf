"""What keeps a `tune` study cheap, and that each shortcut changes nothing a trial trains.

One parser per study, the expanded config standing for LightningCLI's second dump, the
study's storage lent to in-process reporters, SQLite in WAL mode, no full garbage
collection after each trial, and figures that can be skipped (``figures=False``,
``--no-figures``) and drawn later. benchmarks/peers_tune.py measures the cost.
"""

import copy
import gc
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_recipes.cli import main
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.runner import RecipesCLI
from lightning_recipes.tuning import open_storage, tune, write_results
from lightning_recipes.tuning.config import ConfigParser, apply_params, load_config
from lightning_recipes.tuning.search import _dumped_sections, _free_memory
from lightning_recipes.tuning.space import load_space, resize_lists
from lightning_recipes.tuning.storage import share_storage
from tests.test_tuning_search import CONFIG, SMALL_SPACE, SPACE

optuna = pytest.importorskip("optuna")

FAST = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
]


def test_no_figures_writes_the_report_and_best_yaml_and_the_figures_can_be_drawn_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["tune", "-c", str(CONFIG), "--space", str(SPACE), "--n-trials", "2", "--seed", "0"]
    args += ["--pruner", "none", "--out", "runs", "--no-progress", "--no-figures", *FAST]
    assert main(args) == 0
    out = tmp_path / "runs" / "digits"
    report = (out / "study.md").read_text()
    assert "figures=False" in report
    assert "## Best trial" in report
    assert (out / "best.yaml").is_file()
    assert not list(out.glob("*.png"))

    study = optuna.load_study(study_name="digits", storage=f"sqlite:///{out / 'study.db'}")
    files = write_results(
        study,
        out,
        load_config(CONFIG),
        storage_url=f"sqlite:///{out / 'study.db'}",
        monitor="val_loss",
        sampler="tpe",
    )
    for figure in ("history", "importances", "parallel", "slice"):
        assert files[figure].stat().st_size > 1000, figure
    assert "figures=False" not in (out / "study.md").read_text()


def test_a_study_builds_lightningclis_parser_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = RecipesCLI.setup_parser

    def counting(self: RecipesCLI, *args: Any) -> None:
        built.append(1)
        original(self, *args)

    monkeypatch.setattr(RecipesCLI, "setup_parser", counting)
    study = tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=3,
        sampler="random",
        pruner="median",
        seed=0,
        out_dir=tmp_path,
        progress=False,
        overrides=FAST,
        figures=False,
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    # expand, both ends of the space and three trials: one parser for all of them.
    assert len(built) == 1


def test_a_reused_parser_builds_what_a_fresh_cli_builds(tmp_path: Path) -> None:
    parser = ConfigParser()
    base = load_config(CONFIG, FAST)
    parser.expand(base)
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump({**base, "seed_everything": 3}))
    fresh = RecipesCLI(args=["--config", str(path)], run=False)
    for source in (path, {**base, "seed_everything": 3}):
        reused = parser.cli(source, save_config=False)
        assert reused.parser is parser.parser
        assert repr(reused.model) == repr(fresh.model)
        assert reused.trainer.max_epochs == fresh.trainer.max_epochs == 1
        assert reused.datamodule.hparams == fresh.datamodule.hparams


def test_the_expanded_config_stands_for_lightningclis_dump_of_a_trial() -> None:
    parser = ConfigParser()
    base = load_config(CONFIG, FAST)
    full = parser.expand(base)
    space = load_space(SPACE)
    for depth in (2, 3):
        fixed = {
            "depth": depth,
            "model.init_args.backbone.init_args.hidden.0": 40,
            "model.init_args.backbone.init_args.hidden.1": 20,
            "model.init_args.backbone.init_args.hidden.2": 17,
            "model.init_args.backbone.init_args.dropout.0": 0.2,
            "model.init_args.backbone.init_args.dropout.1": 0.0,
            "model.init_args.backbone.init_args.dropout.2": 0.3,
            "model.init_args.lr": 0.0123,
            "model.init_args.optimizer": "sgd",
            "data.init_args.batch_size": 128,
        }
        params = space.sample(optuna.trial.FixedTrial(fixed))
        cfg = copy.deepcopy(base)
        cfg = apply_params(cfg, resize_lists(cfg, params))
        cli = parser.cli(cfg, save_config=False)  # LightningCLI dumps it itself
        ours = _dumped_sections(full, params)
        assert ours["model"] == cli.config_dump["model"]
        assert ours["data"] == cli.config_dump["data"]
        # The hyperparameters a checkpoint stores are the same either way.
        shortcut = parser.cli(cfg, save_config=False, dumped=ours)
        assert dict(shortcut.model.hparams) == dict(cli.model.hparams)
        assert dict(shortcut.datamodule.hparams) == dict(cli.datamodule.hparams)


def test_open_storage_returns_the_storage_lent_by_share_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    lent = open_storage(url)
    with share_storage(url, lent):
        assert open_storage(url) is lent
        assert open_storage(url, heartbeat_interval=5) is not lent  # its own settings: new
    assert open_storage(url) is not lent


def test_a_studys_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=1,
        sampler="random",
        pruner="none",
        out_dir=tmp_path,
        study_name="wal",
        progress=False,
        overrides=FAST,
        figures=False,
    )
    with sqlite3.connect(tmp_path / "wal" / "study.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_no_full_collection_after_a_trial_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    collected: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(1) or 0)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    _free_memory(None, None)
    assert collected == []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    _free_memory(None, None)
    assert collected == [1]


def test_an_in_memory_study_runs_the_same_trials_as_an_sqlite_one(tmp_path: Path) -> None:
    studies = [
        tune(
            CONFIG,
            SMALL_SPACE,
            n_trials=4,
            sampler="tpe",
            pruner="median",
            seed=1,
            storage=storage,
            out_dir=tmp_path / str(storage),
            study_name="s",
            progress=False,
            overrides=["--trainer.max_epochs=3", *FAST[1:]],
            figures=False,
        )
        for storage in ("memory", None)
    ]
    memory, sqlite = ([(t.state, t.params, t.value) for t in s.trials] for s in studies)
    assert memory == sqlite
    assert not (tmp_path / "memory" / "s" / "study.db").exists()
    assert (tmp_path / "memory" / "s" / "best.yaml").is_file()
    assert "memory://" in (tmp_path / "memory" / "s" / "study.md").read_text()


@pytest.mark.parametrize("extra", [{"n_jobs": 2}, {"cv": 2}])
def test_an_in_memory_study_refuses_trials_outside_this_process(
    tmp_path: Path, extra: dict[str, Any]
) -> None:
    with pytest.raises(RecipeConfigError, match="in-memory"):
        tune(CONFIG, SMALL_SPACE, n_trials=2, storage="memory", out_dir=tmp_path, **extra)
