"""`tune` end to end on the digits config: CLI, results, best.yaml, resume after kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightning_recipes.cli import RecipesCLI, main
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.tuning import tune
from lightning_recipes.tuning.trial import run_trial_subprocess

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"
SPACE = ROOT / "examples" / "configs" / "digits_space.yaml"
FAST = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=2",
]
SMALL_SPACE = {
    "model.init_args.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
    "data.init_args.batch_size": {"type": "categorical", "choices": [32, 64]},
}


def stored(path: Path) -> Any:
    """A study's default journal file, opened as optuna-dashboard opens it (plain Optuna)."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def test_cli_tune_writes_the_report_and_best_yaml_reproduces_the_best_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["tune", "-c", str(CONFIG), "--space", str(SPACE), "--n-trials", "3"]
    args += ["--sampler", "tpe", "--pruner", "none", "--seed", "0", "--out", "runs"]
    assert main([*args, "--no-progress", "--figures", *FAST]) == 0
    out = tmp_path / "runs" / "digits"
    printed = capsys.readouterr().out
    assert "best.yaml" in printed

    study = optuna.load_study(study_name="digits", storage=stored(out / "study.journal"))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    report = (out / "study.md").read_text()
    assert f"Trial {study.best_trial.number}" in report
    assert "| 2 | complete |" in report
    for figure in ("history", "importances", "parallel", "slice"):
        assert (out / f"{figure}.png").stat().st_size > 1000, figure
        assert f"({figure}.png)" in report

    # The overrides reach the trials and best.yaml; the best parameters are applied.
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["trainer"]["max_epochs"] == 2
    assert "TrialReporter" not in (out / "best.yaml").read_text()
    mlp = best["model"]["init_args"]["backbone"]["init_args"]
    params = study.best_trial.params
    assert len(mlp["hidden"]) == len(mlp["dropout"]) == params["depth"]
    assert best["model"]["init_args"]["lr"] == params["model.init_args.lr"]

    # `lightning-recipes fit -c best.yaml` trains the best trial again: same best val_loss.
    cli = RecipesCLI(args=["fit", "-c", str(out / "best.yaml")])
    score = cli.trainer.checkpoint_callback.best_model_score  # type: ignore[union-attr]
    assert float(score) == pytest.approx(study.best_value, rel=1e-5)

    # What optuna-dashboard reads: the storage opens and lists the trials with their values.
    storage = stored(out / "study.journal")
    [summary] = optuna.get_all_study_summaries(storage)
    assert summary.study_name == "digits"
    assert summary.n_trials == 3
    assert summary.best_trial is not None
    assert summary.best_trial.value == study.best_value


def test_python_api_with_a_define_by_run_space_and_the_grid_sampler(tmp_path: Path) -> None:
    def space(trial: Any) -> dict[str, Any]:
        depth = trial.suggest_categorical("depth", [1, 2])
        return {
            "model.init_args.backbone.init_args.hidden": [16] * depth,
            "model.init_args.lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True),
        }

    study = tune(
        CONFIG,
        space,
        n_trials=2,
        pruner="none",
        out_dir=tmp_path,
        overrides=FAST,
        study_name="byrun",
        progress=False,
        seed=1,
    )
    assert len(study.trials) == 2
    assert all(t.user_attrs["epochs"] == 2 for t in study.trials)

    grid_args: dict[str, Any] = {
        "n_trials": 5,
        "sampler": "grid",
        "pruner": "none",
        "out_dir": tmp_path,
        "overrides": FAST,
        "study_name": "grid",
        "progress": False,
        "monitor": "val_acc",  # mode "auto": maximise, read from the name
    }
    grid_space = SMALL_SPACE | {
        "model.init_args.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "grid": [1e-3]}
    }
    grid = tune(CONFIG, grid_space, **grid_args)
    # 2 grid points: the study stops when the grid is exhausted.
    assert sorted(t.params["data.init_args.batch_size"] for t in grid.trials) == [32, 64]
    assert grid.direction.name == "MAXIMIZE"
    # Run again: the grid is exhausted, so no duplicate trial trains.
    again = tune(CONFIG, grid_space, **grid_args)
    assert len(again.trials) == 2


def test_pruned_trials_are_recorded_as_pruned_and_count_in_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real TrialReporter asks the study's median pruner; make it prune every trial after
    # the first, at its first report, so the outcome does not depend on the values.
    monkeypatch.setattr(
        optuna.pruners.MedianPruner, "prune", lambda self, study, trial: trial.number >= 1
    )
    study = tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=3,
        pruner="median",
        out_dir=tmp_path,
        overrides=FAST,
        study_name="pruned",
        progress=False,
        seed=0,
    )
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "PRUNED"]
    assert "pruned" in (tmp_path / "pruned" / "study.md").read_text()
    # Again with the same name: the budget is reached, nothing runs; a bigger one continues.
    again = tune(
        CONFIG,
        SMALL_SPACE,
        n_trials=3,
        pruner="median",
        out_dir=tmp_path,
        overrides=FAST,
        study_name="pruned",
        progress=False,
    )
    assert len(again.trials) == 3


def test_a_killed_study_resumes_keeping_finished_trials(tmp_path: Path) -> None:
    # Trial 1 holds at its first epoch (tests/tuning_barrier.py) until the test releases it:
    # the kill always lands on a RUNNING trial after a COMPLETE one, however slow the machine.
    reached, release = tmp_path / "trial1-reached", tmp_path / "trial1-release"
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"].append(
        {
            "class_path": "tests.tuning_barrier.HoldTrial",
            "init_args": {"trial": 1, "reached": str(reached), "release": str(release)},
        }
    )
    config_path = tmp_path / "digits.yaml"  # the study is named after the file: "digits"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "lightning_recipes.cli", "tune", "-c", str(config_path)]
    cmd += ["--space", str(SPACE), "--n-trials", "3", "--pruner", "none", "--seed", "0"]
    cmd += ["--out", str(tmp_path), "--no-progress", "--heartbeat", "1", *FAST]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    journal = tmp_path / "digits" / "study.journal"
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        while not reached.exists():  # no deadline of ours: pytest's timeout guards a hang
            assert proc.poll() is None, "tune ended before trial 1 reached its first epoch"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first = optuna.load_study(study_name="digits", storage=stored(journal)).trials
    killed = [t for t in first if t.state.name == "RUNNING"]
    finished = [t for t in first if t.state.name == "COMPLETE"]
    assert [t.number for t in killed] == [1]  # the trial that was training when it died
    assert [t.number for t in finished] == [0]
    # Past the grace period (2 heartbeats) the trial is stale. The process is dead, so its
    # last heartbeat is in the past and the wait can only make it older, never too young.
    time.sleep(2.5)
    release.touch()

    subprocess.run(cmd, env=env, cwd=tmp_path, check=True, stdout=subprocess.DEVNULL)
    trials = optuna.load_study(study_name="digits", storage=stored(journal)).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 3  # the budget counts what is done
    assert states[killed[0].number] == "FAIL"  # failed, not RUNNING forever
    assert "RUNNING" not in states
    for before in finished:  # finished trials are kept as they were
        assert trials[before.number].params == before.params
        assert trials[before.number].value == before.value
    later = trials[killed[0].number + 1 :]
    assert any(t.params == killed[0].params for t in later), "the killed trial is retried once"
    # The seeded sampler does not start over on restart: no trial repeats trial 0.
    assert all(t.params != trials[0].params for t in trials[1:])


# fmt: off
BAD_TUNE: list[tuple[dict[str, Any], str]] = [
    ({"n_trials": 0}, "n_trials"),
    ({"sampler": "bayes"}, "sampler"),
    ({"pruner": "asha"}, "pruner"),
    ({"mode": "minimum"}, "mode"),
    ({"monitor": "val_score"}, "mode"),  # mode "auto" cannot tell up from down: refused
    ({"monitor": ""}, "monitor"),
    ({"timeout": -1}, "timeout"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"cv": 1}, "cv"),
    ({"value": "mean"}, "value"),
    ({"heartbeat_interval": 0}, "heartbeat_interval"),
    ({"storage": "study.db"}, "storage"),
    ({"study_name": "my study/1"}, "study_name"),
    (
        {"space": {"model.init_args.lrr": {"type": "float", "low": 0.1, "high": 1}}},
        "model.init_args.lr",
    ),
    ({"space": {}}, "space"),
    ({"space": {"data.init_args.batch_size": {"type": "float", "low": 8, "high": 64}}}, "space"),
    # A value of the config's type that LightningCLI refuses (the quick check, no defaults).
    ({"space": {"model.init_args.optimizer": {"type": "categorical", "choices": ["sgd", "x"]}}},
     "space"),
    (
        {
            "space": {"model.init_args.lr": {"type": "float", "low": 0.001, "high": 0.1}},
            "sampler": "grid",
        },
        "step",
    ),
    ({"overrides": ["--trainer.max_epochs"]}, "overrides"),
    # One string is not a list of overrides (it used to be read character by character).
    ({"overrides": "--trainer.max_epochs=1"}, "Invalid overrides='--trainer.max_epochs=1'"),
    ({"config": "missing.yaml"}, "config"),
]
# fmt: on


@pytest.mark.parametrize(("change", "named"), BAD_TUNE)
def test_bad_input_fails_before_any_trial(
    change: dict[str, Any], named: str, tmp_path: Path
) -> None:
    kwargs: dict[str, Any] = {
        "config": CONFIG,
        "space": SMALL_SPACE,
        "n_trials": 2,
        "out_dir": tmp_path,
        "progress": False,
        "study_name": "bad",
    }
    kwargs.update(change)
    with pytest.raises(RecipeConfigError) as info:
        tune(**kwargs)
    assert named in str(info.value)
    assert not (tmp_path / "bad" / "study.journal").exists()


def test_cli_reports_a_bad_space_as_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "-c", str(CONFIG), "--space", str(SPACE), "--n-trials", "2"]
    assert main([*args, "--sampler", "grid", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "lightning-recipes tune: error:" in err
    assert "space['model.init_args.lr']" in err
    assert "step" in err
    with pytest.raises(SystemExit):
        main([*args, "-x"])  # a stray short option is an argparse error, not an override


def test_cli_mode_defaults_to_auto_and_refuses_a_metric_it_cannot_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "-c", str(CONFIG), "--space", str(SPACE), "--n-trials", "1"]
    args += ["--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--monitor", "val_score"]) == 2
    err = capsys.readouterr().err
    assert "lightning-recipes tune: error: Invalid mode='auto'" in err
    assert "'val_score'" in err
    assert not (tmp_path / "digits" / "study.journal").exists()  # refused before any trial


def test_an_existing_study_with_the_other_direction_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    optuna.create_study(storage=url, study_name="s", direction="maximize")
    with pytest.raises(RecipeConfigError, match="mode"):
        tune(
            CONFIG,
            SMALL_SPACE,
            n_trials=1,
            storage=url,
            study_name="s",
            out_dir=tmp_path,
            progress=False,
        )


def test_recipes_run_inside_every_trial(tmp_path: Path) -> None:
    """LRFinder sets each trial's rate, EarlyStopping is the per-trial stopper, ClassWeighting
    weights each trial's loss: the contract of docs/combining.md holds inside a search."""
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"] += [
        {"class_path": "lightning_recipes.ClassWeighting"},
        {
            "class_path": "lightning_recipes.LRFinder",
            "init_args": {"num_steps": 20, "plot": False, "verbose": False},
        },
        {
            "class_path": "lightning_recipes.EarlyStopping",
            "init_args": {"monitor": "val_loss", "patience": 1},
        },
    ]
    study = tune(
        config,
        SMALL_SPACE,
        n_trials=2,
        pruner="none",
        out_dir=tmp_path,
        overrides=[*FAST, "--trainer.max_epochs=4"],
        study_name="recipes",
        progress=False,
        seed=0,
    )
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    best = yaml.safe_load((tmp_path / "recipes" / "best.yaml").read_text())
    classes = [c["class_path"] for c in best["trainer"]["callbacks"]]
    assert "lightning_recipes.LRFinder" in classes  # the recipes travel into best.yaml


def test_trial_subprocess_args_must_be_a_list_not_one_string(tmp_path: Path) -> None:
    config = tmp_path / "trial.yaml"
    config.write_text(CONFIG.read_text())
    with pytest.raises(RecipeConfigError, match=r"Invalid args='--trainer.max_epochs=1'"):
        run_trial_subprocess(config, tmp_path / "out", args="--trainer.max_epochs=1")  # type: ignore[arg-type]
