"""The demo and the console entry point, end to end with tiny settings."""

import functools
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from lightning_recipes import RecipeConfigError, demo
from lightning_recipes.cli import RecipesCLI, main
from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.demo import DEMO_RECIPES, parse_imbalance, run_demo
from lightning_recipes.modules import MLP, Classifier

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits.yaml"


def test_run_demo_writes_the_report(tmp_path: Path) -> None:
    result = run_demo(max_epochs=2, out_dir=tmp_path, progress=False, imbalance={3: 0.2})
    assert result.run_dir == tmp_path / "digits-mlp" / "version_0"
    for name in ("report.md", "metrics.json", "curves.png", "confusion.png"):
        assert (result.run_dir / name).is_file(), name
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert len(metrics["history"]) == 2
    assert metrics["test"]["test_acc"] == pytest.approx(result.report.test_metrics["test_acc"])
    assert metrics["test"]["test_acc"] > 0.5  # two epochs already learn something
    assert len(metrics["test_per_class_recall"]) == 10
    assert metrics["config"]["imbalance"] == {"3": 0.2}
    assert "## Per-class recall (test)" in (result.run_dir / "report.md").read_text()
    assert any((result.run_dir / "logs").iterdir())  # the logger's files


def test_demo_command_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["demo", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "val_acc" in out
    assert "test_acc" in out
    assert "report.md" in out
    assert (tmp_path / "digits-cnn" / "version_0" / "report.md").is_file()
    assert f"Run folder: {tmp_path / 'digits-cnn' / 'version_0'}" in out


def test_each_demo_run_gets_its_own_folder(tmp_path: Path) -> None:
    def files(folder: Path) -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    first = run_demo(max_epochs=1, out_dir=tmp_path, progress=False, limit_batches=2)
    before = files(first.run_dir)
    second = run_demo(max_epochs=1, out_dir=tmp_path, progress=False, limit_batches=2)
    assert [first.run_dir.name, second.run_dir.name] == ["version_0", "version_1"]
    assert files(first.run_dir) == before  # the second run changed nothing of the first
    for run in (first, second):  # each has its own report, logs and checkpoint
        assert (run.run_dir / "report.md").is_file()
        assert len(list(run.run_dir.rglob("*.ckpt"))) == 1
        assert any(run.run_dir.rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (tmp_path / "digits-mlp").iterdir()) == [
        "version_0",
        "version_1",
    ]


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "fit", "validate", "test", "predict"):
        assert f"  {command}" in out
    assert main([]) == 2


def test_cli_builds_everything_from_the_example_yaml(tmp_path: Path) -> None:
    cli = RecipesCLI(args=["-c", str(CONFIG), f"--trainer.default_root_dir={tmp_path}"], run=False)
    settings = yaml.safe_load(CONFIG.read_text())
    assert isinstance(cli.model, Classifier)
    assert isinstance(cli.model.backbone, MLP)
    assert cli.model.lr == settings["model"]["init_args"]["lr"]
    assert cli.model.scheduler_name == "onecycle"
    assert cli.datamodule.batch_size == 64
    assert cli.trainer.max_epochs == settings["trainer"]["max_epochs"]
    assert {type(c).__name__ for c in cli.trainer.callbacks} >= {"ModelCheckpoint", "MetricHistory"}


def test_the_tabular_example_config_trains(tmp_path: Path) -> None:
    config = CONFIG.with_name("breast_cancer.yaml")
    args = ["-c", str(config), f"--trainer.default_root_dir={tmp_path}", "--trainer.max_epochs=2"]
    cli = RecipesCLI(args=[*args, "--trainer.enable_progress_bar=false"], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.datamodule.num_features == 30
    assert cli.trainer.callback_metrics["val_acc"] > 0.6


def test_cli_fit_then_test_from_checkpoint(tmp_path: Path) -> None:
    common = [
        "-c",
        str(CONFIG),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
    ]
    assert main(["fit", *common, "--trainer.max_epochs=1"]) == 0
    checkpoints = list(tmp_path.rglob("*.ckpt"))
    assert len(checkpoints) == 1
    assert list(tmp_path.rglob("config.yaml"))  # the resolved config is saved with the run
    assert main(["test", *common, f"--ckpt_path={checkpoints[0]}"]) == 0


def test_parse_imbalance() -> None:
    assert parse_imbalance("") == {}
    assert parse_imbalance("3:0.1,8:0.05") == {3: 0.1, 8: 0.05}
    with pytest.raises(RecipeConfigError, match=r"Invalid imbalance='3=0\.1'"):
        parse_imbalance("3=0.1")


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="Invalid model='resnet'"):
        run_demo(model="resnet", out_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="Invalid max_epochs=0"):
        run_demo(max_epochs=0, out_dir=tmp_path)
    with pytest.raises(RecipeConfigError, match=r"Invalid data='mnist'.*'digits', 'mnist1d'"):
        run_demo(data="mnist", out_dir=tmp_path)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # refused before any folder is made


def test_demo_command_refuses_an_unknown_data_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["demo", "--data", "cifar10", "--out", str(tmp_path)])
    assert exit.value.code == 2
    error = capsys.readouterr().err  # Python 3.12.8+ quotes the choices
    choices = r"--data: invalid choice: 'cifar10' \(choose from '?digits'?, '?mnist1d"
    assert re.search(choices, error)
    assert not any(tmp_path.iterdir())


@pytest.fixture
def small_mnist1d(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's MNIST-1D at 500 signals (361 training, 39 validation, 100 test): fast."""
    monkeypatch.setattr(
        demo, "Mnist1dDataModule", functools.partial(Mnist1dDataModule, num_samples=500)
    )


@pytest.mark.usefixtures("small_mnist1d")
def test_demo_command_trains_on_mnist1d(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--data", "mnist1d", "--model", "cnn", "--epochs", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path), "--recipes", "mixup,label-smoothing"]) == 0
    out = capsys.readouterr().out
    assert f"Run folder: {tmp_path / 'mnist1d-cnn' / 'version_0'}" in out
    saved = json.loads((tmp_path / "mnist1d-cnn" / "version_0" / "metrics.json").read_text())
    assert saved["config"]["data"] == "mnist1d"
    assert saved["config"]["train/val/test samples"] == "361/39/100"
    assert saved["config"]["parameters"] == 5210  # the paper's CNN with its linear head
    report = (tmp_path / "mnist1d-cnn" / "version_0" / "report.md").read_text()
    assert "# MNIST-1D demo: mnist1d-cnn" in report


@pytest.mark.usefixtures("small_mnist1d")
def test_demo_runs_every_recipe_on_mnist1d(tmp_path: Path) -> None:
    result = run_demo(
        data="mnist1d",
        model="cnn",
        max_epochs=3,
        out_dir=tmp_path,
        progress=False,
        limit_batches=2,
        imbalance={3: 0.3},
        recipes=DEMO_RECIPES,
    )
    summaries = {s.recipe: s for s in result.report.recipes}
    assert len(summaries) == len(DEMO_RECIPES)
    assert result.run_dir == tmp_path / "mnist1d-cnn" / "version_0"
    # The attacks are in standard deviations, not clipped to [0, 1] (the signals are not).
    accuracy = summaries["Robustness evaluation"].facts["accuracy at eps"]["test"]
    assert set(accuracy) == {"0", "0.02", "0.05", "0.1"}
    assert accuracy["0"] >= accuracy["0.1"]
    assert summaries["Adversarial training"].facts["batches attacked"] > 0
    # The image recipes saw each signal as a 1 x 40 image, and changed it.
    assert summaries["Image augmentation"].facts["batches augmented"] > 0
    assert summaries["CutMix"].facts["batches augmented"] > 0
    # Attribution ranked the 40 time steps.
    table = next(result.run_dir.rglob("importance.csv")).read_text().splitlines()
    assert len(table) == 41
    assert table[1].startswith("t0,")
    assert 0 < result.report.test_metrics["test_acc"] <= 1


def test_demo_runs_the_recipes_together(tmp_path: Path) -> None:
    result = run_demo(
        max_epochs=3,
        out_dir=tmp_path,
        progress=False,
        imbalance={3: 0.2},
        recipes=["class-weighting", "freeze", "find-lr", "early-stopping", "attribution"],
    )
    assert result.report.config["recipes"].startswith("class-weighting")
    figures = result.run_dir / "logs"
    assert any(figures.rglob("lr_finder.png"))  # the range test ran and drew its curve
    assert any(result.run_dir.rglob("attributions.pt"))  # explained at test end
    assert result.report.test_metrics["test_acc"] > 0.3
    # The report says what every recipe did, with its figures, in report.md and metrics.json.
    text = (result.run_dir / "report.md").read_text()
    for recipe in ("Class weighting", "Freezer", "LR finder", "Early stopping", "Attribution"):
        assert f"### {recipe}" in text
    assert "![LR range test, epoch 0](logs/figures/lr_finder.png)" in text
    assert "pretraining" in result.report.config
    assert result.report.config["lr (used, schedule peak)"] != result.report.config["lr (given)"]
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    recipes = {entry["recipe"]: entry for entry in saved["recipes"]}
    assert len(recipes["Class weighting"]["facts"]["weights installed"]) == 10
    assert recipes["LR finder"]["facts"]["tests"][0]["trainable share"] == 1.0  # sweep_final
    assert recipes["Early stopping"]["facts"]["monitor"] == "val_macro_f1"


def test_demo_refuses_an_unknown_recipe(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="recipes"):
        run_demo(out_dir=tmp_path, recipes=["dropout"])


def test_demo_runs_the_regularization_recipes(tmp_path: Path) -> None:
    result = run_demo(
        max_epochs=2,
        out_dir=tmp_path,
        progress=False,
        limit_batches=3,
        recipes=["weight-penalty", "weight-init", "activations"],
    )
    names = [summary.recipe for summary in result.report.recipes]
    assert len(names) == 3
    text = (result.run_dir / "report.md").read_text()
    assert all(f"### {name}" in text for name in names)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_demo_runs_the_augmentation_recipes(tmp_path: Path, model: str) -> None:
    result = run_demo(
        model=model,  # type: ignore[arg-type]
        max_epochs=2,
        out_dir=tmp_path,
        progress=False,
        limit_batches=3,
        recipes=["image-augmentation", "mixup", "cutmix", "label-smoothing", "class-weighting"],
    )
    assert len(result.report.recipes) == 5


def test_demo_runs_the_robustness_and_ensemble_recipes(tmp_path: Path) -> None:
    result = run_demo(
        max_epochs=3,
        out_dir=tmp_path,
        progress=False,
        limit_batches=3,
        recipes=["adversarial", "robustness", "weight-average", "snapshot-ensemble",
                 "early-stopping"],
    )  # fmt: skip
    summaries = {s.recipe: s for s in result.report.recipes}
    assert summaries["Adversarial training"].facts["batches attacked"] == 9
    accuracy = summaries["Robustness evaluation"].facts["accuracy at eps"]["test"]
    assert accuracy["0"] >= accuracy["0.2"]
    assert summaries["Snapshot ensemble"].facts["snapshot epochs"] == [0, 1, 2]
    # Early stopping restores the best validated weights; the average leaves them to it.
    assert summaries["Weight averaging"].facts["final weights"] == "set by EarlyStopping"
    assert 0 < result.report.test_metrics["snapshot_ensemble_test_acc"] <= 1
    assert "cosine restarts every 1 epochs" in result.report.config["optimizer"]
    text = (result.run_dir / "report.md").read_text()
    assert all(f"### {name}" in text for name in summaries)


def test_the_robustness_example_config_trains(tmp_path: Path) -> None:
    settings = yaml.safe_load(CONFIG.with_name("digits_robust.yaml").read_text())
    # Shorter: cycles of 2 epochs in the schedule and the ensemble, the average from epoch 1.
    settings["model"]["init_args"]["scheduler_options"]["cycle_epochs"] = 2
    for callback in settings["trainer"]["callbacks"]:
        name = callback["class_path"].rsplit(".", 1)[1]
        if name == "SnapshotEnsemble":
            callback["init_args"]["cycle_epochs"] = 2
        if name == "WeightAverage":
            callback["init_args"]["start_epoch"] = 1
    config = tmp_path / "robust.yaml"
    config.write_text(yaml.safe_dump(settings))
    args = ["-c", str(config), f"--trainer.default_root_dir={tmp_path}",
            "--trainer.max_epochs=4", "--trainer.enable_progress_bar=false",
            "--trainer.limit_train_batches=4", "--trainer.logger=false"]  # fmt: skip
    cli = RecipesCLI(args=args, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    by_name = {type(c).__name__: c for c in cli.trainer.callbacks}
    assert by_name["SnapshotEnsemble"].snapshot_epochs == [1, 3]
    assert by_name["AdversarialTraining"].batches == 16
    assert by_name["WeightAverage"].final_weights_by == ["EarlyStopping"]
    assert 0.0 in by_name["RobustnessEvaluation"].results["val_epoch3"]
    # The checkpoint the config's header suggests for `test --ckpt_path` holds the best
    # weights: those EarlyStopping restored (the module's final weights), not the last epoch's.
    header = CONFIG.with_name("digits_robust.yaml").read_text()
    best = Path(cli.trainer.checkpoint_callback.best_model_path)  # type: ignore[union-attr]
    assert best.name == "best.ckpt"
    assert f"checkpoints/{best.name}" in header
    checkpoint = torch.load(best, weights_only=True)
    saved = checkpoint["state_dict"]
    final = cli.model.state_dict()
    assert saved.keys() == final.keys()
    for key, value in final.items():
        torch.testing.assert_close(saved[key], value.cpu(), rtol=0, atol=0, msg=key)
    assert checkpoint["epoch"] == by_name["EarlyStopping"].best_epoch
