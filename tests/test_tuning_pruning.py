"""TrialReporter: pruning decided once per epoch on rank 0, shared by every rank, no raise.

The pruner's decisions are made deterministic by seeding the study with five COMPLETE
trials whose intermediate values are terrible before step 2 and perfect from step 2 on:
the MedianPruner keeps the running trial at epochs 0 and 1 and prunes it at epoch 2.
"""

import json
import math
import pickle
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import MissingMetricError, RecipeConfigError
from lightning_recipes.modules import MLP, Classifier
from lightning_recipes.tuning import (
    TrialReporter,
    TrialReportError,
    TrialSubprocessError,
    add_reporter,
    build_pruner,
    finish_trial,
    needs_subprocess,
    open_storage,
    run_trial_subprocess,
)
from lightning_recipes.tuning.pruning import redact_url

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRUNE_AT = 2


def seeded_study(
    tmp_path: Path, *, direction: str = "minimize", name: str = "s"
) -> tuple[str, optuna.Study, optuna.Trial]:
    """A SQLite study whose MedianPruner prunes the returned RUNNING trial at epoch 2."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage, study_name=name, direction=direction, pruner=build_pruner("median")
    )
    bad, good = (1e9, -1e9) if direction == "minimize" else (-1e9, 1e9)
    for _ in range(5):
        study.add_trial(
            optuna.trial.create_trial(
                value=good,
                intermediate_values={s: bad if s < PRUNE_AT else good for s in range(10)},
                params={},
                distributions={},
            )
        )
    return storage, study, study.ask()


def fit(reporter: Callback, make_trainer: Callable[..., Trainer], **kwargs: Any) -> Trainer:
    seed_everything(0)
    args: dict[str, Any] = {"max_epochs": 6, "limit_train_batches": 2, "callbacks": [reporter]}
    trainer = make_trainer(**{**args, **kwargs})
    trainer.fit(Classifier(MLP(64, [16]), num_classes=10), DigitsDataModule(batch_size=64))
    return trainer


def digits_config(tmp_path: Path, **trainer: Any) -> dict[str, Any]:
    """A small LightningCLI config for the subprocess fits."""
    return {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 6,
            "limit_train_batches": 2,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path / "fit"),
            **trainer,
        },
        "model": {
            "class_path": "lightning_recipes.modules.Classifier",
            "init_args": {
                "num_classes": 10,
                "backbone": {
                    "class_path": "lightning_recipes.modules.MLP",
                    "init_args": {"in_features": 64, "hidden": [16]},
                },
            },
        },
        "data": {
            "class_path": "lightning_recipes.data.DigitsDataModule",
            "init_args": {"batch_size": 32},
        },
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


# ------------------------------------------------------------ one process


def test_prunes_at_the_pruners_epoch_and_the_caller_marks_it_pruned(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, study, trial = seeded_study(tmp_path)
    reporter = TrialReporter(storage, "s", trial._trial_id, result_dir=tmp_path / "out")
    trainer = fit(reporter, make_trainer)  # no exception escapes the fit
    assert reporter.pruned
    assert reporter.pruned_at_epoch == PRUNE_AT
    assert trainer.current_epoch == PRUNE_AT + 1 == reporter.epochs_run
    assert sorted(reporter.values) == [0, 1, 2]
    stored = study.trials[-1]
    assert stored.state == optuna.trial.TrialState.RUNNING  # the fit does not finish it
    assert stored.intermediate_values == pytest.approx(reporter.values)
    written = json.loads((tmp_path / "out" / "result.json").read_text())
    assert written == reporter.result()
    assert written["pruned"]
    assert written["epochs"] == PRUNE_AT + 1
    assert finish_trial(study, trial, written) == optuna.trial.TrialState.PRUNED
    assert study.trials[-1].state == optuna.trial.TrialState.PRUNED
    assert study.trials[-1].value == pytest.approx(reporter.values[PRUNE_AT])


def test_reports_every_epoch_without_pruning_and_tells_the_best_value(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, study, trial = seeded_study(tmp_path, direction="maximize")
    reporter = TrialReporter(
        storage, "s", trial._trial_id, monitor="val_acc", mode="max", prune=False
    )
    trainer = fit(reporter, make_trainer, max_epochs=4)
    assert not reporter.pruned
    assert trainer.current_epoch == 4
    assert sorted(study.trials[-1].intermediate_values) == [0, 1, 2, 3]
    assert reporter.best == max(reporter.values.values())
    assert reporter.best_epoch is not None
    assert reporter.values[reporter.best_epoch] == reporter.best
    assert reporter.last == reporter.values[3]
    assert finish_trial(study, trial.number, reporter.result()) == optuna.trial.TrialState.COMPLETE
    assert study.trials[-1].value == pytest.approx(reporter.best)


def test_step_offset_moves_the_reported_steps(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, study, trial = seeded_study(tmp_path)
    reporter = TrialReporter(storage, "s", trial._trial_id, prune=False, step_offset=5)
    fit(reporter, make_trainer, max_epochs=2)
    assert sorted(study.trials[-1].intermediate_values) == [5, 6]
    assert sorted(reporter.values) == [0, 1]
    assert reporter.result()["step_offset"] == 5


def test_state_travels_in_checkpoints_and_pickles_without_a_connection(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, _, trial = seeded_study(tmp_path)
    reporter = TrialReporter(storage, "s", trial._trial_id)
    fit(reporter, make_trainer)
    state = reporter.state_dict()
    twin = TrialReporter(storage, "s", trial._trial_id)
    twin.load_state_dict(deepcopy(state))
    assert {**twin.result(), "epochs": 3} == reporter.result()  # epochs: set by the next fit
    assert twin.state_key == reporter.state_key != TrialReporter(storage, "s", 0).state_key
    copied = pickle.loads(pickle.dumps(reporter))
    assert copied._trial is None
    assert copied.result() == reporter.result()


def test_a_storage_failure_mid_fit_is_raised_by_the_fit_not_swallowed(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, study, trial = seeded_study(tmp_path)

    class FinishFromOutside(Callback):
        def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
            if trainer.current_epoch == 1:  # someone else fails the trial (e.g. stale)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)

    reporter = TrialReporter(storage, "s", trial._trial_id)
    with pytest.raises(TrialReportError, match=r"could not report val_loss=.* at epoch 1"):
        fit(reporter, make_trainer, callbacks=[FinishFromOutside(), reporter])


def test_a_metric_that_was_not_logged_names_the_logged_ones(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage, _, trial = seeded_study(tmp_path)
    reporter = TrialReporter(storage, "s", trial._trial_id, monitor="val_los")
    with pytest.raises(MissingMetricError, match=r"'val_los'.*'val_loss'"):
        fit(reporter, make_trainer)


def study_setup_cases(tmp_path: Path) -> list[tuple[str, dict[str, Any], dict[str, Any], str]]:
    storage, study, trial = seeded_study(tmp_path)
    done = study.ask()
    study.tell(done, 1.0)
    optuna.create_study(storage=storage, study_name="other")
    other_trial = optuna.load_study(study_name="other", storage=storage).ask()
    tid = trial._trial_id
    return [
        ("direction", {"trial_id": tid, "mode": "max"}, {}, "mode='max'.*minimize"),
        ("finished trial", {"trial_id": done._trial_id}, {}, "COMPLETE, not RUNNING"),
        ("no such trial", {"trial_id": 10_000}, {}, "trial_id=10000.*no such trial"),
        ("other study's trial", {"trial_id": other_trial._trial_id}, {}, "no such trial"),
        ("no such study", {"trial_id": tid, "study_name": "nope"}, {}, "no study 'nope'"),
        (
            "unreachable storage",
            {"trial_id": tid, "storage": "postgresql://u:secret@127.0.0.1:9/db"},
            {},
            r"could not open .*u:\*\*\*@127",
        ),
        ("mid-epoch validation", {"trial_id": tid}, {"val_check_interval": 0.5}, "once per epoch"),
        ("step validation", {"trial_id": tid}, {"val_check_interval": 1}, "once per epoch"),
        ("no validation", {"trial_id": tid}, {"limit_val_batches": 0}, "limit_val_batches=0"),
    ]


def test_setup_refuses_what_would_make_the_decision_wrong(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    for label, args, trainer_args, message in study_setup_cases(tmp_path):
        reporter = TrialReporter(**{"storage": storage, "study_name": "s", **args})
        with pytest.raises(RecipeConfigError, match=message) as info:
            fit(reporter, make_trainer, max_epochs=1, **trainer_args)
        assert "secret" not in str(info.value), label


BAD_REPORTER_ARGS: list[tuple[str, Any]] = [
    ("storage", ""),
    ("storage", "runs/study.db"),
    ("storage", None),
    ("study_name", ""),
    ("study_name", 3),
    ("trial_id", -1),
    ("trial_id", True),
    ("trial_id", 1.0),
    ("monitor", ""),
    ("mode", "auto"),
    ("prune", "yes"),
    ("pruner", "percentile"),
    ("pruner_args", [1]),
    ("pruner_args", {"reduction_factor": 3}),  # a hyperband argument for the median pruner
    ("result_dir", ""),
    ("step_offset", -1),
    ("step_offset", 1.5),
]


@pytest.mark.parametrize(("name", "value"), BAD_REPORTER_ARGS)
def test_bad_arguments_fail_at_construction_naming_them(name: str, value: Any) -> None:
    args: dict[str, Any] = {"storage": "sqlite:///s.db", "study_name": "s", "trial_id": 0}
    with pytest.raises(RecipeConfigError, match=f"Invalid {name}="):
        TrialReporter(**{**args, name: value})


def test_pruners_by_name() -> None:
    assert type(build_pruner("hyperband", min_resource=1)).__name__ == "HyperbandPruner"
    assert type(build_pruner("none")).__name__ == "NopPruner"
    with pytest.raises(RecipeConfigError, match="Invalid pruner='asha'"):
        build_pruner("asha")  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match=r"Invalid pruner_args=.*refused"):
        build_pruner("median", n_startup_trials=-1)
    with pytest.raises(RecipeConfigError, match="Invalid objective='mean'"):
        finish_trial(None, 0, {}, objective="mean")  # type: ignore[arg-type]


def test_redacts_passwords_only() -> None:
    assert redact_url("postgresql://a:b@h/d") == "postgresql://a:***@h/d"
    assert redact_url("postgresql://a@h/d") == "postgresql://a@h/d"
    assert redact_url("mysql+pymysql://a:p@ss@h/d") == "mysql+pymysql://a:***@h/d"


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ({"accelerator": "cpu", "devices": 1}, False),
        ({}, False),
        ({"accelerator": "cpu", "devices": "auto"}, False),
        ({"devices": "1"}, False),
        ({"strategy": "ddp", "devices": 2}, True),
        ({"strategy": "ddp_spawn", "devices": 2}, True),
        ({"strategy": {"class_path": "lightning.pytorch.strategies.FSDPStrategy"}}, True),
        ({"accelerator": "cpu", "devices": 2}, True),
        ({"devices": [0, 1]}, True),
        ({"devices": "0,1"}, True),
        ({"devices": -1}, True),
        ({"num_nodes": 2}, True),
    ],
)
def test_needs_subprocess(trainer: dict[str, Any], expected: bool) -> None:
    assert needs_subprocess({"trainer": trainer}) is expected


# ------------------------------------------------------------ subprocess fits


def test_add_reporter_copies_replaces_and_checks(tmp_path: Path) -> None:
    config = digits_config(tmp_path)
    config["trainer"]["callbacks"] = [{"class_path": "lightning_recipes.MetricHistory"}]
    first = add_reporter(config, storage="sqlite:///a.db", study_name="s", trial_id=1)
    second = add_reporter(first, storage="sqlite:///a.db", study_name="s", trial_id=2)
    assert len(config["trainer"]["callbacks"]) == 1  # not changed
    paths = [c["class_path"] for c in second["trainer"]["callbacks"]]
    assert paths == [
        "lightning_recipes.MetricHistory",
        "lightning_recipes.tuning.trial_reporter.TrialReporter",
    ]
    assert second["trainer"]["callbacks"][1]["init_args"]["trial_id"] == 2
    with pytest.raises(RecipeConfigError, match="Invalid trial_id=-3"):
        add_reporter(config, storage="sqlite:///a.db", study_name="s", trial_id=-3)


def test_subprocess_fit_from_yaml_reports_and_returns_the_result(tmp_path: Path) -> None:
    storage, study, trial = seeded_study(tmp_path)
    out = tmp_path / "trial"
    config = add_reporter(
        digits_config(tmp_path),
        storage=storage,
        study_name="s",
        trial_id=trial._trial_id,
        result_dir=out,
    )
    result = run_trial_subprocess(write_config(tmp_path / "t.yaml", config), out, timeout=240)
    assert result["pruned"]
    assert result["pruned_at_epoch"] == PRUNE_AT
    assert result["epochs"] == PRUNE_AT + 1
    assert "pruned at epoch 2" in Path(result["log"]).read_text()
    assert finish_trial(study, trial, result) == optuna.trial.TrialState.PRUNED
    assert sorted(study.trials[-1].intermediate_values) == [0, 1, 2]


def test_subprocess_failures_are_errors_with_the_log(tmp_path: Path) -> None:
    out = tmp_path / "out"
    broken = digits_config(tmp_path)
    broken["model"]["class_path"] = "lightning_recipes.modules.NoSuchModel"
    with pytest.raises(TrialSubprocessError, match="exited with status") as failed:
        run_trial_subprocess(write_config(tmp_path / "broken.yaml", broken), out)
    assert failed.value.returncode != 0
    assert "NoSuchModel" in failed.value.log.read_text()

    no_reporter = write_config(tmp_path / "plain.yaml", digits_config(tmp_path, max_epochs=1))
    with pytest.raises(TrialSubprocessError, match=r"wrote no .*result.json"):
        run_trial_subprocess(no_reporter, out)

    slow = write_config(tmp_path / "slow.yaml", digits_config(tmp_path, max_epochs=10_000))
    with pytest.raises(TrialSubprocessError, match="past its timeout") as hung:
        run_trial_subprocess(slow, out, timeout=2)
    assert hung.value.timed_out
    assert hung.value.returncode is None

    with pytest.raises(RecipeConfigError, match="Invalid config_path="):
        run_trial_subprocess(tmp_path / "missing.yaml", out)
    for timeout in (0, -1.0, True):
        with pytest.raises(RecipeConfigError, match="Invalid timeout="):
            run_trial_subprocess(slow, out, timeout=timeout)


# ------------------------------------------------------------ DDP


@pytest.mark.ddp
def test_ddp_both_ranks_prune_at_the_same_epoch_and_the_trial_is_pruned(
    tmp_path: Path, ddp: Callable[..., list[dict[str, Any]]]
) -> None:
    storage, study, trial = seeded_study(tmp_path)
    rank0, rank1 = ddp(
        "trial_reporter_prune", storage=storage, study_name="s", trial_id=trial._trial_id
    )
    # The metric differs by rank (rank r logs r + epoch); both act on the rank average.
    assert rank0["values"] == rank1["values"] == {0: 0.5, 1: 1.5, 2: 2.5}
    assert rank0["pruned_at_epoch"] == rank1["pruned_at_epoch"] == PRUNE_AT
    assert rank0["current_epoch"] == rank1["current_epoch"] == PRUNE_AT + 1
    assert rank0["should_stop"]
    assert rank1["should_stop"]
    # Rank 0 alone reported: one value per epoch, the averaged one.
    assert study.trials[-1].intermediate_values == {0: 0.5, 1: 1.5, 2: 2.5}
    result = json.loads((tmp_path / "ddp-trial_reporter_prune" / "result.json").read_text())
    assert result == rank0["result"]
    assert finish_trial(study, trial, result) == optuna.trial.TrialState.PRUNED
    assert study.trials[-1].state == optuna.trial.TrialState.PRUNED
    assert math.isclose(study.trials[-1].value, 2.5)


@pytest.mark.ddp
def test_ddp_trial_run_as_a_subprocess_of_the_cli_ends_pruned_without_hanging(
    tmp_path: Path,
) -> None:
    storage, study, trial = seeded_study(tmp_path)
    out = tmp_path / "trial"
    trainer = {"devices": 2, "strategy": "ddp", "max_epochs": 8}
    config = add_reporter(
        digits_config(tmp_path, **trainer),
        storage=storage,
        study_name="s",
        trial_id=trial._trial_id,
        result_dir=out,
    )
    assert needs_subprocess(config)
    result = run_trial_subprocess(write_config(tmp_path / "ddp.yaml", config), out, timeout=240)
    assert result["pruned_at_epoch"] == PRUNE_AT
    assert result["epochs"] == PRUNE_AT + 1
    assert finish_trial(study, trial, result) == optuna.trial.TrialState.PRUNED
    stored = study.trials[-1]
    assert stored.state == optuna.trial.TrialState.PRUNED
    assert stored.intermediate_values == pytest.approx(
        {int(k): v for k, v in result["values"].items()}
    )


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_open_storage_opens_sqlite_and_refuses_what_is_not_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    storage = open_storage(url, heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(study_name="fresh", storage=storage)
    assert optuna.load_study(study_name="fresh", storage=open_storage(url)).study_name == "fresh"
    assert study.study_name == "fresh"
    for bad in ("", "study.db", None):
        with pytest.raises(RecipeConfigError, match="Invalid storage="):
            open_storage(bad)  # type: ignore[arg-type]
