"""The designs and statistics of an ablation, on scores whose effects are known by construction."""

import random
from typing import Any

import pytest
import yaml
from lightning.pytorch import Callback

from lightning_recipes.errors import MissingMetricError, RecipeConfigError
from lightning_recipes.tuning.ablation import (
    MAX_FACTORIAL_FACTORS,
    check_switchable,
    config_factors,
    configuration_config,
    configurations,
    factor_effects,
    recommended_config,
)

CONFIG: dict[str, Any] = {
    "seed_everything": 0,
    "trainer": {
        "max_epochs": 3,
        "callbacks": [
            {"class_path": "lightning_recipes.imbalance.ClassWeighting"},
            {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"},
            {
                "class_path": "lightning_recipes.augmentation.LabelSmoothing",
                "init_args": {"smoothing": 0.9},
            },
            {"class_path": "lightning_recipes.gradients.GradientMonitor"},
        ],
    },
    "model": {"class_path": "lightning_recipes.Classifier"},
}
# One recipe that helps, one that hurts, one observer that does nothing (accuracy, "max").
TRUE_EFFECTS = {"ClassWeighting": 0.08, "LabelSmoothing": -0.05, "GradientMonitor": 0.0}


def _scores(design: Any, seeds: int = 5, noise: float = 0.01) -> dict[tuple[str, ...], Any]:
    """Accuracy = seed level + the true effects of the factors on + a little run noise."""
    rng = random.Random(0)
    level = [0.6 + 0.1 * rng.random() for _ in range(seeds)]  # seeds differ far more
    scores = {}
    for on in configurations(list(TRUE_EFFECTS), design):
        effect = sum(TRUE_EFFECTS[f] for f in on)
        scores[on] = [level[s] + effect + rng.gauss(0, noise) for s in range(seeds)]
    return scores


def test_the_factors_are_the_library_callbacks_and_those_named() -> None:
    assert [f.name for f in config_factors(CONFIG)] == list(TRUE_EFFECTS)
    named = config_factors(CONFIG, ["LearningRateMonitor"])
    assert [(f.name, f.index) for f in named][1] == ("LearningRateMonitor", 1)
    assert config_factors(CONFIG, [1]) == named
    mix_up = {"class_path": "lightning_recipes.augmentation.MixUp"}
    twice = {"trainer": {"callbacks": [mix_up, mix_up]}}
    assert [f.name for f in config_factors(twice)] == ["MixUp", "MixUp#2"]


@pytest.mark.parametrize("design", ["leave-one-out", "add-one-in", "factorial"])
def test_each_design_ranks_known_effects_and_calls_the_observer_noise(design: Any) -> None:
    effects = factor_effects(_scores(design), list(TRUE_EFFECTS), design, "max")
    assert [e.factor for e in effects] == ["ClassWeighting", "GradientMonitor", "LabelSmoothing"]
    verdicts = {e.factor: e.verdict for e in effects}
    assert verdicts == {
        "ClassWeighting": "helps",
        "GradientMonitor": "within the noise",
        "LabelSmoothing": "hurts",
    }
    for effect in effects:
        assert effect.low <= TRUE_EFFECTS[effect.factor] <= effect.high
        assert effect.seeds == 5


def test_a_lower_is_better_metric_flips_the_sign_not_the_ranking() -> None:
    loss = {on: [-v for v in values] for on, values in _scores("leave-one-out").items()}
    effects = factor_effects(loss, list(TRUE_EFFECTS), "leave-one-out", "min")
    assert effects[0].factor == "ClassWeighting"
    assert effects[0].mean > 0


def test_the_recommended_config_drops_only_what_hurt() -> None:
    factors = config_factors(CONFIG)
    effects = factor_effects(_scores("leave-one-out"), list(TRUE_EFFECTS), "leave-one-out", "max")
    kept = recommended_config(CONFIG, factors, effects)["trainer"]["callbacks"]
    assert [c["class_path"].rsplit(".", 1)[-1] for c in kept] == [
        "ClassWeighting",
        "LearningRateMonitor",  # not a factor: never touched
        "GradientMonitor",  # within the noise: kept
    ]
    assert CONFIG["trainer"]["callbacks"][2]["init_args"] == {"smoothing": 0.9}  # not mutated


def test_a_configuration_removes_exactly_the_factors_that_are_off() -> None:
    factors = config_factors(CONFIG)
    none = configuration_config(CONFIG, factors, [])["trainer"]["callbacks"]
    assert [c["class_path"].rsplit(".", 1)[-1] for c in none] == ["LearningRateMonitor"]
    assert configuration_config(CONFIG, factors, list(TRUE_EFFECTS)) == CONFIG


def test_one_seed_is_never_beyond_the_noise() -> None:
    one_seed = _scores("add-one-in", seeds=1)
    effects = factor_effects(one_seed, list(TRUE_EFFECTS), "add-one-in", "max")
    assert {e.verdict for e in effects} == {"within the noise"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: configurations(["a"], "one-at-a-time"), "Invalid design='one-at-a-time'"),
        (lambda: configurations(["a", "a"], "add-one-in"), "distinct"),
        (
            lambda: configurations([str(i) for i in range(MAX_FACTORIAL_FACTORS + 1)], "factorial"),
            "at most 6 factors",
        ),
        (
            lambda: config_factors(CONFIG, ["EarlyStopping"]),
            r"Invalid factor='EarlyStopping'.*LearningRateMonitor",
        ),
        (lambda: config_factors(CONFIG, [9]), "Invalid factor=9"),
        (lambda: config_factors({"trainer": {}}), "no callback to ablate"),
        (lambda: factor_effects({(): [1.0]}, ["a"], "add-one-in", "max"), r"missing \[\('a',\)\]"),
        (
            lambda: factor_effects({(): [1.0], ("a",): [1.0, 2.0]}, ["a"], "add-one-in", "max"),
            "seed counts",
        ),
        (lambda: factor_effects({}, ["a"], "add-one-in", "best"), "Invalid mode='best'"),
    ],
)
def test_bad_input_is_refused_with_the_fix(call: Any, message: str) -> None:
    with pytest.raises(RecipeConfigError, match=message):
        call()


# --- ablate on real runs: a config whose answer is known by construction ----------------

DIGITS: dict[str, Any] = {
    "seed_everything": 0,
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 6,
        "logger": False,
        "enable_checkpointing": False,
        "callbacks": [
            # must help: four classes kept at 3 % of the training split, macro F1 monitored
            {"class_path": "lightning_recipes.imbalance.ClassWeighting"},
            # must hurt: an L2 penalty far too strong
            {
                "class_path": "lightning_recipes.regularization.WeightPenalty",
                "init_args": {"l2": 3.0},
            },
            # an observer: changes nothing
            {
                "class_path": "lightning_recipes.gradients.GradientMonitor",
                "init_args": {"plot": False},
            },
        ],
    },
    "model": {
        "class_path": "lightning_recipes.modules.Classifier",
        "init_args": {
            "num_classes": 10,
            "lr": 0.01,
            "backbone": {
                "class_path": "lightning_recipes.modules.MLP",
                "init_args": {"in_features": 64, "hidden": [32]},
            },
        },
    },
    "data": {
        "class_path": "lightning_recipes.data.DigitsDataModule",
        "init_args": {"batch_size": 64, "imbalance": {0: 0.03, 1: 0.03, 2: 0.03, 3: 0.03}},
    },
}


def test_ablate_ranks_a_helpful_recipe_an_observer_and_a_harmful_one(tmp_path: Any) -> None:
    pytest.importorskip("optuna")
    from lightning_recipes.runner import RecipesCLI
    from lightning_recipes.tuning.ablate import ablate

    result = ablate(
        DIGITS, seeds=3, design="add-one-in", monitor="val_macro_f1", out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    verdicts = [(e.factor, e.verdict) for e in result.effects]
    assert verdicts == [
        ("ClassWeighting", "helps"),
        ("GradientMonitor", "within the noise"),
        ("WeightPenalty", "hurts"),
    ]
    assert result.effects[1].mean == 0.0  # an observer: the same runs, to the bit
    out = tmp_path / "ablation"
    assert {p.name for p in out.iterdir()} >= {
        "ablation.md", "ablation.png", "ablation.json", "recommended.yaml", "study.journal",
    }  # fmt: skip
    report = (out / "ablation.md").read_text()
    assert "Drop WeightPenalty" in report
    assert f"This call trained {result.overhead[1]:.1f} s of runs" in report
    recommended = yaml.safe_load((out / "recommended.yaml").read_text())
    kept = [c["class_path"] for c in recommended["trainer"]["callbacks"]]
    assert kept == [
        "lightning_recipes.imbalance.ClassWeighting",
        "lightning_recipes.gradients.GradientMonitor",
    ]
    cli = RecipesCLI(args=["-c", str(out / "recommended.yaml")], run=False, save_config=False)
    assert [type(c).__name__ for c in cli.trainer.callbacks][:2] == kept_names(kept)

    # Run again: every (configuration, seed) is in the study already; nothing trains.
    again = ablate(
        DIGITS, seeds=3, design="add-one-in", monitor="val_macro_f1", out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert again.runs == result.runs
    assert again.overhead[1] == 0.0
    assert "This call trained nothing" in (out / "ablation.md").read_text()


def kept_names(class_paths: list[str]) -> list[str]:
    return [p.rsplit(".", 1)[-1] for p in class_paths]


def test_ablate_refuses_before_any_run(tmp_path: Any) -> None:
    pytest.importorskip("optuna")
    from lightning_recipes.tuning.ablate import ablate

    with pytest.raises(RecipeConfigError, match="Invalid seeds=0"):
        ablate(DIGITS, seeds=0, out_dir=tmp_path)
    with pytest.raises(RecipeConfigError, match="Invalid n_jobs=0"):
        ablate(DIGITS, n_jobs=0, out_dir=tmp_path)
    with pytest.raises(RecipeConfigError, match="Invalid mode="):
        ablate(DIGITS, monitor="val_macro_f1", mode="best", out_dir=tmp_path)  # type: ignore[arg-type]
    bad = {**DIGITS, "trainer": {**DIGITS["trainer"], "max_epochz": 2}}
    with pytest.raises(RecipeConfigError, match="LightningCLI rejected"):
        ablate(bad, monitor="val_macro_f1", out_dir=tmp_path)
    assert not (tmp_path / "ablation").exists()


@pytest.mark.ddp
def test_a_ddp_config_is_ablated_in_subprocesses_with_the_same_ranking(tmp_path: Any) -> None:
    pytest.importorskip("optuna")
    from lightning_recipes.tuning.ablate import ablate

    trainer = {**DIGITS["trainer"], "devices": 2, "strategy": "ddp", "max_epochs": 4}
    trainer["callbacks"] = DIGITS["trainer"]["callbacks"][1:2]  # the harmful penalty only
    ddp = {**DIGITS, "trainer": trainer}
    result = ablate(
        ddp, seeds=1, design="add-one-in", monitor="val_macro_f1", out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert [e.factor for e in result.effects] == ["WeightPenalty"]
    assert result.runs[("WeightPenalty",)][0] < result.runs[()][0] - 0.2  # it hurts, by far
    run_yaml = sorted((tmp_path / "ablation").glob("run_*/run.yaml"))
    assert len(run_yaml) == 2  # each run: `fit -c run.yaml` in its own processes


def test_the_command_line_ablates_a_yaml_config_and_says_what_to_keep(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("optuna")
    from lightning_recipes.cli import main

    path = tmp_path / "imbalanced.yaml"
    path.write_text(yaml.safe_dump(DIGITS))
    args = ["ablate", "-c", str(path), "--seeds", "2", "--design", "add-one-in"]
    args += ["--monitor", "val_macro_f1", "--out", str(tmp_path / "runs"), "--no-progress"]
    assert main([*args, "--keep", "GradientMonitor", "--trainer.max_epochs=5"]) == 0
    printed = capsys.readouterr().out
    assert "WeightPenalty: -" in printed
    assert "hurts" in printed
    assert "GradientMonitor" not in printed  # kept on in every run: not a factor
    out = tmp_path / "runs" / "imbalanced-ablation"
    assert (out / "recommended.yaml").is_file()
    assert main(["ablate", "-c", str(path), "--seeds", "0"]) == 2
    assert "Invalid seeds=0" in capsys.readouterr().err


def test_the_progress_bar_names_the_leading_configuration() -> None:
    from types import SimpleNamespace

    from lightning_recipes.tuning.ablate import _Leader

    def run(configuration: int, value: float) -> Any:
        state = SimpleNamespace(name="COMPLETE")
        return SimpleNamespace(state=state, params={"configuration": configuration}, value=value)

    def study(*trials: Any) -> Any:
        return SimpleNamespace(get_trials=lambda deepcopy: list(trials))

    designs = configurations(["a", "b"], "add-one-in")  # (), (a,), (b,)
    bar = _Leader(3, 0, designs, "max")
    bar(study(run(0, 0.9), run(1, 0.5)), None)
    assert bar.bar.postfix == "leader: none"  # the empty configuration is not "all"
    assert bar.bar.n == 2  # counts every process's runs, not only this one's
    bar(study(run(0, 0.9), run(1, 0.5), run(2, 0.95)), None)
    assert bar.bar.postfix == "leader: b"
    every = _Leader(3, 0, configurations(["a", "b"], "leave-one-out"), "min")
    every(study(run(0, 0.1), run(1, 0.5)), None)
    assert every.bar.postfix == "leader: all"


class NeedsMixUp(Callback):
    """A callback that declares, in the contract, that it cannot work without MixUp."""

    needs_recipes = ("MixUp",)


def test_a_factor_that_cannot_be_switched_off_alone_is_refused_with_the_reason() -> None:
    mix_up = {"class_path": "lightning_recipes.augmentation.MixUp"}
    smoothing = {"class_path": "lightning_recipes.augmentation.LabelSmoothing"}
    linked = {
        "trainer": {
            "callbacks": [mix_up, smoothing],
            "plugins": [{"class_path": "my.Plugin", "init_args": {"after": "MixUp"}}],
        }
    }
    factors = config_factors(linked)
    with pytest.raises(RecipeConfigError, match=r"'MixUp' cannot be switched off alone: "
                       r"trainer.plugins\[0\].init_args.after names it.*--keep MixUp"):  # fmt: skip
        check_switchable(linked, factors)
    kept = config_factors(linked, keep=["MixUp"])
    assert [f.name for f in kept] == ["LabelSmoothing"]
    check_switchable(linked, kept)  # kept on in every run: nothing dangles

    needs = {"trainer": {"callbacks": [
        mix_up, smoothing, {"class_path": "tests.test_tuning_ablation.NeedsMixUp"}]}}  # fmt: skip
    with pytest.raises(RecipeConfigError, match=r"NeedsMixUp \(trainer.callbacks\[2\]\) needs it"):
        check_switchable(needs, config_factors(needs))
    check_switchable(needs, config_factors(needs, keep=[0]))
    # Two MixUps: each one's class_path is not a reference to the other.
    check_switchable({"trainer": {"callbacks": [mix_up, mix_up]}}, config_factors(
        {"trainer": {"callbacks": [mix_up, mix_up]}}))  # fmt: skip
    with pytest.raises(RecipeConfigError, match="Invalid keep='Freezer'"):
        config_factors(linked, keep=["Freezer"])


def test_the_demo_config_trains_what_the_demo_trains(tmp_path: Any) -> None:
    from lightning_recipes.demo import run_demo
    from lightning_recipes.demo_config import demo_config
    from lightning_recipes.tuning.config_parser import ConfigParser
    from lightning_recipes.tuning.in_process import _dumped_sections, _fit_in_process, trial_config

    recipes = ("class-weighting", "freeze", "mixup", "snapshot-ensemble")
    args: dict[str, Any] = {"max_epochs": 3, "imbalance": {3: 0.1}}
    demo = run_demo(recipes=recipes, seed=1, out_dir=tmp_path, progress=False, **args)
    config = demo_config(recipes, seed=1, **args)
    run = trial_config(config, tmp_path / "config")
    parser = ConfigParser()
    full = parser.expand(config, trial_shape=lambda c: trial_config(c, tmp_path / "config"))
    tested, _ = _fit_in_process(
        run, None, "test_acc", parser, _dumped_sections(full, {}),
        trusted=["trainer.default_root_dir", "seed_everything"], test=True,
    )  # fmt: skip
    assert tested == [demo.report.test_metrics["test_acc"]]  # the same run, to the bit
    with pytest.raises(MissingMetricError, match=r"test_accuracy.*test_acc, test_loss"):
        _fit_in_process(
            trial_config(demo_config(seed=1, max_epochs=1), tmp_path / "bare"), None,
            "test_accuracy", parser, _dumped_sections(full, {}), test=True,
        )  # fmt: skip


def test_demo_prints_its_config_for_fit_and_ablate(capsys: pytest.CaptureFixture[str]) -> None:
    from lightning_recipes.cli import main
    from lightning_recipes.demo_config import demo_config

    args = ["demo", "--recipes", "mixup,freeze", "--imbalance", "3:0.1", "--epochs", "4"]
    assert main([*args, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == demo_config(["mixup", "freeze"], max_epochs=4, imbalance={3: 0.1})
    assert printed["data"]["init_args"]["seed"] is None  # the split follows seed_everything
    backbone = printed["model"]["init_args"]["backbone"]
    assert backbone["class_path"] == "lightning_recipes.demo_config.WarmStartedMLP"
    with pytest.raises(RecipeConfigError, match="Invalid model='cnn'"):
        demo_config(model="cnn")  # type: ignore[arg-type]


def test_a_none_seed_follows_seed_everything() -> None:
    from lightning.pytorch import seed_everything

    from lightning_recipes.data import DigitsDataModule

    seed_everything(7, verbose=False)
    assert DigitsDataModule(seed=None).seed == 7
    assert DigitsDataModule(seed=3).seed == 3


def test_parallel_workers_share_the_study_and_train_each_run_once(tmp_path: Any) -> None:
    pytest.importorskip("optuna")
    import optuna

    from lightning_recipes.tuning.ablate import ablate
    from lightning_recipes.tuning.study_setup import default_storage, open_study_storage

    quick = {**DIGITS, "trainer": {**DIGITS["trainer"], "max_epochs": 2}}
    args: dict[str, Any] = {"seeds": 2, "design": "add-one-in", "monitor": "val_macro_f1"}
    alone = ablate(quick, out_dir=tmp_path / "alone", progress=False, **args)
    shared = ablate(quick, out_dir=tmp_path / "shared", progress=False, n_jobs=2, **args)
    assert shared.runs == alone.runs  # the same runs, whichever process trained them
    url = default_storage(tmp_path / "shared", "ablation")
    study = optuna.load_study(
        study_name="ablation", storage=open_study_storage(optuna, url, 10, None)
    )
    assert len(study.trials) == 8  # 4 configurations x 2 seeds, none trained twice
    assert shared.overhead[1] > 0
    assert shared.memory_ratio.keys() == {"ClassWeighting", "WeightPenalty", "GradientMonitor"}
    assert shared.memory_kind in ("host", "host, since start")
    assert "peak memory with / without" in (tmp_path / "shared/ablation/ablation.md").read_text()
