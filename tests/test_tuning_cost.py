"""What keeps a `tune` study cheap, and that each shortcut changes nothing a trial trains.

One parser per study, the expanded config standing for LightningCLI's second dump, the
study's storage lent to in-process reporters, a journal file by default (heartbeats kept),
SQLite in WAL mode when asked for, no full garbage collection after each trial, and
figures drawn only after a long enough study (``figures="auto"``) or skipped
(``figures=False``, ``--no-figures``) and drawn later. benchmarks/peers_tune.py measures
the cost.
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
from lightning_recipes.tuning import config_parser, open_storage, tune, write_results
from lightning_recipes.tuning.config import apply_params, load_config
from lightning_recipes.tuning.config_parser import ConfigParser
from lightning_recipes.tuning.search import FIGURES_AFTER_SECONDS, _dumped_sections, _free_memory
from lightning_recipes.tuning.space import load_space, resize_lists
from lightning_recipes.tuning.storage import journal_url, share_storage
from tests.test_tuning_search import CONFIG, SMALL_SPACE, SPACE, stored

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

    study = optuna.load_study(study_name="digits", storage=stored(out / "study.journal"))
    files = write_results(
        study,
        out,
        load_config(CONFIG),
        storage_url=journal_url(out / "study.journal"),
        monitor="val_loss",
        sampler="tpe",
    )
    for figure in ("history", "importances", "parallel", "slice"):
        assert files[figure].stat().st_size > 1000, figure
    assert "figures=False" not in (out / "study.md").read_text()


def test_lightningclis_parser_is_built_once_for_every_study_of_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = RecipesCLI.setup_parser

    def counting(self: RecipesCLI, *args: Any) -> None:
        built.append(1)
        original(self, *args)

    monkeypatch.setattr(RecipesCLI, "setup_parser", counting)
    monkeypatch.setattr(config_parser, "_BUILT", {})  # as in a fresh process
    for name in ("first", "second"):
        study = tune(
            CONFIG,
            SMALL_SPACE,
            n_trials=3,
            sampler="random",
            pruner="median",
            seed=0,
            out_dir=tmp_path,
            study_name=name,
            progress=False,
            overrides=FAST,
            figures=False,
        )
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    # expand, both ends of the space and three trials, twice: one parser for all of them.
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
        storage=f"sqlite:///{tmp_path / 'wal' / 'study.db'}",
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


def test_an_in_memory_study_runs_the_same_trials_as_one_in_the_default_journal(
    tmp_path: Path,
) -> None:
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
    memory, journal = ([(t.state, t.params, t.value) for t in s.trials] for s in studies)
    assert memory == journal
    assert (tmp_path / "None" / "s" / "study.journal").is_file()
    assert not (tmp_path / "memory" / "s" / "study.journal").exists()
    assert (tmp_path / "memory" / "s" / "best.yaml").is_file()
    assert "memory://" in (tmp_path / "memory" / "s" / "study.md").read_text()


@pytest.mark.parametrize("extra", [{"n_jobs": 2}, {"cv": 2}])
def test_an_in_memory_study_refuses_trials_outside_this_process(
    tmp_path: Path, extra: dict[str, Any]
) -> None:
    with pytest.raises(RecipeConfigError, match="in-memory"):
        tune(CONFIG, SMALL_SPACE, n_trials=2, storage="memory", out_dir=tmp_path, **extra)


# ---------------------------------------------------------------- a parse reused between trials


def _trial_cfg(base: dict[str, Any], params: dict[str, Any], folder: Path, trial_id: int) -> Any:
    """A trial's config as `tune` builds it: the values, its folder and its reporter."""
    from lightning_recipes.tuning.search import _reporter_entry, trial_config

    cfg = apply_params(base, resize_lists(base, params))
    reporter = _reporter_entry(
        "sqlite:///unused.db", "s", trial_id, "val_loss", "min", "median", {}, folder
    )
    return trial_config(cfg, folder, callbacks=[reporter])


LR = "model.init_args.lr"
TRUSTED = [
    "trainer.default_root_dir",
    "trainer.callbacks.2.init_args.trial_id",
    "trainer.callbacks.2.init_args.result_dir",
]


def _same_build(reused: Any, full: Any) -> None:
    """Two CLIs built the same objects from the same parsed config."""
    assert reused.config == full.config
    assert repr(reused.model) == repr(full.model)
    assert dict(reused.model.hparams) == dict(full.model.hparams)
    assert dict(reused.datamodule.hparams) == dict(full.datamodule.hparams)
    for name in ("max_epochs", "limit_train_batches", "default_root_dir"):
        assert getattr(reused.trainer, name) == getattr(full.trainer, name), name
    kinds = [type(c).__name__ for c in reused.trainer.callbacks]
    assert kinds == [type(c).__name__ for c in full.trainer.callbacks]
    ours = [c for c in reused.trainer.callbacks if type(c).__name__ == "TrialReporter"]
    theirs = [c for c in full.trainer.callbacks if type(c).__name__ == "TrialReporter"]
    assert [vars(c) for c in ours] == [vars(c) for c in theirs]


def test_a_trial_built_from_the_reused_parse_is_the_trial_a_full_parse_builds(
    tmp_path: Path,
) -> None:
    base = load_config(CONFIG, FAST)
    parser = ConfigParser()
    parser.expand(base)
    parser.check(apply_params(base, {"model.init_args.lr": 1e-3, "data.init_args.batch_size": 32}))
    parser.check(apply_params(base, {"model.init_args.lr": 3e-2, "data.init_args.batch_size": 64}))
    first = _trial_cfg(base, {"model.init_args.lr": 0.01}, tmp_path / "t0", 0)
    parser.cli(first, save_config=False, reuse=True, trusted=TRUSTED)
    parsed = parser.parsed
    fresh = ConfigParser()
    trials = [
        ({"model.init_args.lr": 0.0123, "data.init_args.batch_size": 64}, True),
        ({"model.init_args.lr": 0.001, "data.init_args.batch_size": 32}, True),  # an end
        ({"model.init_args.lr": 0.05}, False),  # outside the accepted range: parsed
        ({"data.init_args.batch_size": 48}, True),  # between two accepted ints
        ({"data.init_args.batch_size": 16}, False),  # below every accepted one: parsed
        ({"model.init_args.optimizer": "sgd"}, False),  # a new string: parsed
        ({"model.init_args.backbone.init_args.hidden": [32, 16, 8]}, False),  # a longer list
        ({"model.init_args.backbone.class_path": "lightning_recipes.modules.builders.MLP"}, False),
        ({"model.init_args.lr": 0.02, "model.init_args.backbone.init_args.hidden.1": 64}, True),
    ]
    for number, (params, reused) in enumerate(trials, start=1):
        cfg = _trial_cfg(base, params, tmp_path / f"t{number}", number)
        before = parser.parsed
        cli = parser.cli(cfg, save_config=False, reuse=True, trusted=TRUSTED)
        assert (parser.parsed == before) is reused, params
        _same_build(cli, fresh.cli(cfg, save_config=False))
    assert parser.parsed == parsed + sum(not reused for _, reused in trials)


def test_a_value_the_parser_turns_into_another_is_parsed_at_every_trial(tmp_path: Path) -> None:
    # jsonargparse reads the string "32" as the int 32 for Trainer(precision=...): setting
    # the string in a reused parse would build another Trainer than `fit -c` builds.
    base = load_config(CONFIG, FAST)
    parser = ConfigParser()
    for precision in ("32-true", "32"):  # both accepted when the study checks its space
        parser.check(apply_params(base, {"trainer.precision": precision}))
    first = _trial_cfg(base, {"trainer.precision": "32-true"}, tmp_path / "t0", 0)
    parser.cli(first, save_config=False, reuse=True, trusted=TRUSTED)
    for number, precision in enumerate(["32", "32", "32-true"], start=1):
        cfg = _trial_cfg(base, {"trainer.precision": precision}, tmp_path / f"t{number}", number)
        before = parser.parsed
        cli = parser.cli(cfg, save_config=False, reuse=True, trusted=TRUSTED)
        assert (parser.parsed == before) is (precision == "32-true")
        assert cli.config.trainer.precision == (32 if precision == "32" else "32-true")
        _same_build(cli, ConfigParser().cli(cfg, save_config=False))


def test_what_one_trial_does_to_its_objects_never_reaches_the_next(tmp_path: Path) -> None:
    base = load_config(CONFIG, FAST)
    parser = ConfigParser()
    parser.check(apply_params(base, {"model.init_args.lr": 1e-3}))
    parser.check(apply_params(base, {"model.init_args.lr": 3e-2}))
    first = parser.cli(
        _trial_cfg(base, {}, tmp_path / "t0", 0), save_config=False, reuse=True, trusted=TRUSTED
    )
    # Everything mutable that a trial's code could change in place.
    first.config.model.init_args.backbone.init_args.hidden.append(7)
    first.config.trainer.callbacks[2].init_args.pruner_args["n_startup_trials"] = 99
    first.model.hparams["lr"] = 1.0
    first.model.backbone.hidden.append(7) if hasattr(first.model.backbone, "hidden") else None
    second_cfg = _trial_cfg(base, {"model.init_args.lr": 0.02}, tmp_path / "t1", 1)
    second = parser.cli(second_cfg, save_config=False, reuse=True, trusted=TRUSTED)
    assert parser.parsed == 3  # two checks, the first trial: the second reused the parse
    _same_build(second, ConfigParser().cli(second_cfg, save_config=False))
    assert second.config.model.init_args.backbone.init_args.hidden == [128, 64]
    assert second.config.trainer.callbacks[2].init_args.pruner_args == {}


@pytest.fixture
def reused(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each in-process trial reused a kept parse (True) or parsed its config."""
    seen: list[bool] = []
    original = ConfigParser._reused
    monkeypatch.setattr(
        ConfigParser,
        "_reused",
        lambda self, *args: seen.append((ns := original(self, *args)) is not None) or ns,
    )
    return seen


def _small_study(tmp_path: Path, space: Any, n_trials: int, **extra: Any) -> Any:
    return tune(
        CONFIG,
        space,
        n_trials=n_trials,
        sampler="random",
        pruner="none",
        seed=0,
        out_dir=tmp_path,
        progress=False,
        overrides=FAST,
        figures=False,
        **extra,
    )


def test_every_trial_trains_what_fit_c_its_trial_yaml_trains(
    tmp_path: Path, reused: list[bool]
) -> None:
    lr = {"model.init_args.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}}
    study = _small_study(tmp_path, lr, 3, value="last")
    assert reused == [True, True, True]  # the check of the space's low end served them all
    for trial in study.trials:
        path = Path(trial.user_attrs["trial_dir"]) / "trial.yaml"
        cli = RecipesCLI(args=["fit", "-c", str(path)])
        assert float(cli.trainer.callback_metrics["val_loss"]) == trial.value


def test_a_conditional_space_parses_once_per_shape_of_config(
    tmp_path: Path, reused: list[bool]
) -> None:
    study = _small_study(tmp_path, SPACE, 5)  # depth 2 or 3: two shapes (the checks parse 3)
    depths = [t.params["depth"] for t in study.trials]
    assert set(depths) == {2, 3}
    assert reused.count(False) == 1  # the first trial of depth 2; every other reused a parse


def test_tune_runs_the_trials_of_a_plain_optuna_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("optuna_integration")
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    monkeypatch.setitem(sys.modules, "peers_tune", None)
    del sys.modules["peers_tune"]
    import peers_tune

    monkeypatch.setattr(peers_tune, "TRIALS", 6)
    for variant in ("tune, memory", "tune"):
        ours = peers_tune.tune_study("short", 3, tmp_path / variant, variant)
        plain = peers_tune.plain_study("short", 3, tmp_path, sqlite=False)
        assert [(t.state, t.params, t.value) for t in ours.trials] == [
            (t.state, t.params, t.value) for t in plain.trials
        ]
    assert {t.state.name for t in plain.trials} == {"COMPLETE", "PRUNED"}


@pytest.mark.parametrize(
    "multi_process",
    [["--trainer.strategy=ddp", "--trainer.devices=2"], ["--trainer.devices=0,1"]],
    ids=["ddp-2", "devices-0,1"],
)
def test_trials_of_a_multi_process_trainer_still_run_in_subprocesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multi_process: list[str]
) -> None:
    """``tune`` asks `needs_subprocess` (``devices: "0,1"`` was once fitted in process)."""
    from lightning_recipes.tuning import trial as trial_module

    ran: list[dict[str, Any]] = []

    def fake(config_path: Path, out_dir: Path, timeout: Any = None) -> dict[str, Any]:
        ran.append(yaml.safe_load(Path(config_path).read_text()))
        return {"value": 0.5, "pruned": False}

    monkeypatch.setattr(trial_module, "run_trial_subprocess", fake)
    monkeypatch.setattr(ConfigParser, "cli", lambda *a, **k: pytest.fail("fitted in process"))
    study = tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=2,
        sampler="random",
        pruner="none",
        out_dir=tmp_path,
        progress=False,
        overrides=[*FAST, *multi_process],
        figures=False,
    )
    assert [t.value for t in study.trials] == [0.5, 0.5]
    assert len(ran) == 2
    reporters = [c["trainer"]["callbacks"][-1]["init_args"]["trial_id"] for c in ran]
    assert reporters == [t._trial_id for t in study.trials]


def test_figures_auto_skips_them_after_a_short_study_and_says_why(tmp_path: Path) -> None:
    tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=1,
        sampler="random",
        pruner="none",
        out_dir=tmp_path,
        study_name="auto",
        progress=False,
        overrides=FAST,
    )
    out = tmp_path / "auto"
    report = (out / "study.md").read_text()
    assert not list(out.glob("*.png"))
    assert f"less than the {FIGURES_AFTER_SECONDS:.0f} s after which figures='auto'" in report
    assert "write_results(..., figures=True)" in report
    assert f"optuna-dashboard {out.resolve() / 'study.journal'}" in report


def test_figures_auto_draws_them_after_a_long_enough_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lightning_recipes.tuning.search.FIGURES_AFTER_SECONDS", 0.0)
    tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=2,
        sampler="random",
        pruner="none",
        out_dir=tmp_path,
        study_name="auto",
        progress=False,
        overrides=FAST,
    )
    assert (tmp_path / "auto" / "history.png").stat().st_size > 1000


@pytest.mark.parametrize("figures", ["yes", 1, None])
def test_figures_takes_true_false_or_auto(tmp_path: Path, figures: Any) -> None:
    with pytest.raises(RecipeConfigError, match="figures"):
        tune(CONFIG, SMALL_SPACE, n_trials=1, out_dir=tmp_path, figures=figures)
    assert not (tmp_path / "digits").exists()


def test_an_in_process_trial_has_the_callbacks_fit_c_its_trial_yaml_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.pytorch import Trainer

    fitted: list[list[str]] = []
    original = Trainer.fit

    def recording(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        fitted.append([type(c).__name__ for c in self.callbacks])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", recording)
    lr = {"model.init_args.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}}
    study = tune(
        CONFIG, lr, n_trials=1, pruner="median", out_dir=tmp_path, progress=False,
        overrides=FAST, figures=False,
    )  # fmt: skip
    trial_yaml = Path(study.trials[0].user_attrs["trial_dir"]) / "trial.yaml"
    cli = RecipesCLI(args=["--config", str(trial_yaml)], run=False, save_config=False)
    built = [type(c).__name__ for c in cli.trainer.callbacks]
    assert built.index("TrialReporter") < built.index("ModelCheckpoint")  # the config's order
    assert fitted == [[*built, "MetricRecorder"]]  # the reporter built from its entry


def test_a_check_of_the_kept_shape_accepts_only_what_a_full_parse_keeps(tmp_path: Path) -> None:
    # The space's ends are checked without defaults once the study's config is kept: a
    # value the parser turns into another ("32" -> 32) must still not count as accepted.
    base = apply_params(load_config(CONFIG, FAST), {"trainer.precision": "32-true"})
    parser = ConfigParser()
    parser.expand(base, trial_shape=lambda cfg: _trial_cfg(dict(cfg), {}, tmp_path / "t0", 0))
    full = parser.parsed
    for precision, lr in (("32", 1e-3), ("32-true", 3e-2)):
        parser.check(_trial_cfg(base, {"trainer.precision": precision, LR: lr}, tmp_path, 0))
    assert parser.parsed == full  # both checks took the quick way
    with pytest.raises(RecipeConfigError):  # which still refuses what LightningCLI refuses
        parser.check(_trial_cfg(base, {"trainer.precision": "31-true"}, tmp_path, 0))
    for number, (precision, reused) in enumerate([("32", False), ("32-true", True)], start=1):
        cfg = _trial_cfg(base, {"trainer.precision": precision, LR: 0.01}, tmp_path, number)
        before = parser.parsed
        cli = parser.cli(cfg, save_config=False, reuse=True, trusted=TRUSTED)
        assert (parser.parsed == before) is reused
        _same_build(cli, ConfigParser().cli(cfg, save_config=False))


def test_a_monitor_the_trial_never_logs_fails_the_first_trial_naming_what_was_logged(
    tmp_path: Path,
) -> None:
    from lightning_recipes.errors import MissingMetricError

    lr = {"model.init_args.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}}
    with pytest.raises(MissingMetricError, match=r"^tune: monitor='val_f2'.*'val_acc'"):
        _small_study(tmp_path, lr, 2, monitor="val_f2", mode="max")
