"""K-fold cross-validation: folds in the datamodules, no leakage, cross_validate, cv_objective."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from sklearn.model_selection import StratifiedKFold

from lightning_recipes import ClassWeighting
from lightning_recipes.data import ArrayDataModule, DigitsDataModule, fold_split, make_imbalanced
from lightning_recipes.errors import MissingMetricError, RecipeConfigError
from lightning_recipes.tuning import CVResult, cross_validate, cv_objective

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"


def _config(**data_args: Any) -> dict[str, Any]:
    """The example digits config, made tiny: 1 epoch of 2 batches, nothing written."""
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "limit_train_batches": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    config["model"]["init_args"]["scheduler"] = None
    config["data"]["init_args"].update(data_args)
    return config


# ---------------------------------------------------------------- folds in the datamodules


def test_digits_folds_are_stratified_disjoint_and_leave_the_test_split_alone() -> None:
    plain = DigitsDataModule(seed=3)
    plain.setup()
    assert plain.train_dataset is not None
    assert plain.val_dataset is not None
    pool_labels = torch.cat([plain.train_dataset.targets, plain.val_dataset.targets])
    pool_counts = np.bincount(pool_labels.numpy(), minlength=10)
    pool_rows = {
        tuple(r)
        for r in torch.cat([plain.train_dataset.features, plain.val_dataset.features]).tolist()
    }
    seen_val: list[tuple[float, ...]] = []
    for fold in range(3):
        dm = DigitsDataModule(seed=3, num_folds=3, fold=fold)
        dm.setup()
        assert dm.train_dataset is not None
        assert dm.val_dataset is not None
        assert dm.test_dataset is not None
        assert plain.test_dataset is not None
        val_counts = np.bincount(dm.val_dataset.targets.numpy(), minlength=10)
        # Stratified: every class's share of the fold is its share of the pool, to one sample.
        assert np.all(np.abs(val_counts - pool_counts / 3) <= 1), (val_counts, pool_counts)
        train_rows = {tuple(r) for r in dm.train_dataset.features.tolist()}
        val_rows = [tuple(r) for r in dm.val_dataset.features.tolist()]
        assert train_rows.isdisjoint(val_rows)  # no sample in both
        assert train_rows | set(val_rows) == pool_rows  # together: the whole pool
        seen_val += val_rows
        assert torch.equal(dm.test_dataset.features, plain.test_dataset.features)
    assert sorted(seen_val) == sorted(pool_rows)  # the K validation folds partition the pool


def test_fold_split_is_scikit_learns_stratified_k_fold() -> None:
    labels = np.repeat(np.arange(4), [30, 20, 10, 6])
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=7)
    for fold, (train, val) in enumerate(folds.split(np.zeros((labels.size, 1)), labels)):
        ours = fold_split(labels, 3, fold, seed=7)
        assert np.array_equal(ours[0], np.sort(train))
        assert np.array_equal(ours[1], np.sort(val))


@pytest.mark.parametrize("kind", ["plain", "grouped"])
def test_plain_and_grouped_folds_partition_and_keep_groups_together(kind: str) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=120)
    groups = np.repeat(np.arange(24), 5) if kind == "grouped" else None
    vals = []
    for fold in range(4):
        train, val = fold_split(labels, 4, fold, kind=kind, groups=groups, seed=1)  # type: ignore[arg-type]
        assert np.intersect1d(train, val).size == 0
        assert np.union1d(train, val).size == labels.size
        if groups is not None:
            assert set(groups[train]).isdisjoint(groups[val])
        vals.append(val)
    assert np.array_equal(np.sort(np.concatenate(vals)), np.arange(labels.size))


def test_array_datamodule_grouped_folds() -> None:
    x = torch.arange(60, dtype=torch.float32).reshape(60, 1)
    y = torch.arange(60) % 2
    groups = np.arange(60) // 4
    dm = ArrayDataModule(
        train=(x, y), test=(x[:5], y[:5]), num_folds=3, fold=2, fold_kind="grouped", groups=groups
    )
    assert dm.train_dataset is not None
    assert dm.val_dataset is not None
    train_groups = set((dm.train_dataset.features[:, 0].long() // 4).tolist())
    val_groups = set((dm.val_dataset.features[:, 0].long() // 4).tolist())
    assert train_groups.isdisjoint(val_groups)
    assert len(dm.train_dataset) + len(dm.val_dataset) == 60
    assert dm.test_dataset is not None
    assert len(dm.test_dataset) == 5


def test_folds_are_off_by_default() -> None:
    x, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    default = ArrayDataModule(train=(x, y), val_fraction=0.25)
    assert default.num_folds is None
    assert default.fitted_scaler is None
    assert default.train_dataset is not None
    assert len(default.train_dataset) == 30
    digits = DigitsDataModule()
    digits.setup()
    assert digits.num_folds is None
    assert digits.fitted_scaler is None
    assert digits.train_dataset is not None
    assert float(digits.train_dataset.features.min()) == 0.0


# ---------------------------------------------------------------- no leakage: fitted preprocessing


def test_scaler_is_fitted_on_the_training_folds_only() -> None:
    # Row i has features 10 * i: the pool's statistics differ from every training fold's.
    n = 90
    x = (10.0 * torch.arange(n, dtype=torch.float64)).reshape(n, 1).repeat(1, 2)
    x[:, 1] = x[:, 1] ** 0.5
    y = torch.arange(n) % 3
    test_x = torch.full((6, 2), 123.0, dtype=torch.float64)
    raw = ArrayDataModule(train=(x, y), test=(test_x, y[:6]), num_folds=3, fold=1)
    dm = ArrayDataModule(train=(x, y), test=(test_x, y[:6]), num_folds=3, fold=1, scaler="standard")
    assert raw.train_dataset is not None
    assert raw.val_dataset is not None
    assert dm.train_dataset is not None
    assert dm.val_dataset is not None
    assert dm.test_dataset is not None
    train_x = raw.train_dataset.features.double()
    mean, std = train_x.mean(0), train_x.std(0, correction=0)
    assert dm.fitted_scaler is not None
    assert dm.fitted_scaler.mean is not None
    # Fitted on the training folds: their mean and spread, not the pool's.
    torch.testing.assert_close(dm.fitted_scaler.mean, mean)
    assert not torch.allclose(dm.fitted_scaler.mean, x.double().mean(0))
    torch.testing.assert_close(
        dm.train_dataset.features.double().mean(0),
        torch.zeros(2, dtype=torch.float64),
        atol=1e-5,
        rtol=0,
    )
    # Validation and test only transformed, with the training statistics.
    expected_val = (raw.val_dataset.features.double() - mean) / std
    torch.testing.assert_close(dm.val_dataset.features.double(), expected_val, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        dm.test_dataset.features.double(), (test_x - mean) / std, rtol=1e-5, atol=1e-5
    )
    assert dm.predict_dataset is dm.test_dataset


def test_digits_scaler_uses_the_training_fold_after_imbalance() -> None:
    raw = DigitsDataModule(num_folds=3, fold=0, imbalance={1: 0.2})
    dm = DigitsDataModule(num_folds=3, fold=0, imbalance={1: 0.2}, scaler="standard")
    raw.setup()
    dm.setup()
    assert raw.train_dataset is not None
    assert dm.train_dataset is not None
    assert dm.val_dataset is not None
    assert dm.fitted_scaler is not None
    assert dm.fitted_scaler.mean is not None
    torch.testing.assert_close(dm.fitted_scaler.mean, raw.train_dataset.features.double().mean(0))
    assert float(dm.train_dataset.features.mean(0).abs().max()) < 1e-5
    assert float(dm.val_dataset.features.mean(0).abs().max()) > 1e-3  # not fitted on it


def test_training_labels_are_the_folds_so_class_counts_are_per_fold() -> None:
    plain = DigitsDataModule(seed=0)
    plain.setup()
    assert plain.train_dataset is not None
    assert plain.val_dataset is not None
    pool = torch.cat([plain.train_dataset.targets, plain.val_dataset.targets])
    # The pool is the sorted train+val indices of the digits; rebuild its labels that way.
    from sklearn.datasets import load_digits

    from lightning_recipes.data import stratified_split

    _, labels = load_digits(return_X_y=True)
    train_idx, val_idx, _ = stratified_split(labels, (0.7, 0.15, 0.15), seed=0)
    pool_idx = np.sort(np.concatenate([train_idx, val_idx]))
    assert np.array_equal(np.sort(labels[pool_idx]), np.sort(pool.numpy()))
    counts = []
    for fold in range(3):
        dm = DigitsDataModule(num_folds=3, fold=fold, imbalance={0: 0.1})
        dm.setup()
        assert dm.train_dataset is not None
        fold_train, _ = fold_split(labels[pool_idx], 3, fold, seed=0)
        kept = fold_train[make_imbalanced(labels[pool_idx][fold_train], {0: 0.1}, seed=0)]
        expected = np.bincount(labels[pool_idx][kept], minlength=10)
        got = np.bincount(dm.train_dataset.targets.numpy(), minlength=10)
        assert np.array_equal(got, expected)
        counts.append(got.tolist())
    assert counts[0] != counts[1] or counts[1] != counts[2]  # folds differ


# ---------------------------------------------------------------- cross_validate


class _Probe(Callback):
    """Record what each fold's run started from and trained on."""

    def __init__(self, fold: int, records: list[dict[str, Any]]) -> None:
        self.fold = fold
        self.records = records

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        dm = trainer.datamodule
        self.records.append(
            {
                "fold": self.fold,
                "module": pl_module,
                "datamodule": dm,
                "start": [p.detach().clone() for p in pl_module.parameters()],
                "dm_fold": dm.fold,
                "train_labels": dm.train_dataset.targets.clone(),
            }
        )

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.records[-1]["end"] = [p.detach().clone() for p in pl_module.parameters()]


def test_cross_validate_runs_a_fresh_module_per_fold_and_weights_classes_per_fold(
    tmp_path: Path,
) -> None:
    log: list[dict[str, Any]] = []
    weightings: list[ClassWeighting] = []

    def callbacks(fold: int) -> list[Callback]:
        weightings.append(ClassWeighting("balanced", log=False))
        return [weightings[-1], _Probe(fold, log)]

    result = cross_validate(
        _config(imbalance={0: 0.1}, seed=0),
        k=3,
        monitor="val_acc",  # mode "auto": max, read from the name
        callbacks_factory=callbacks,
        out_dir=tmp_path,
    )
    assert [entry["dm_fold"] for entry in log] == [0, 1, 2]
    # A fresh module and datamodule per fold, each starting from the same seeded weights,
    # not from the previous fold's trained ones.
    assert len({id(entry["module"]) for entry in log}) == 3
    assert len({id(entry["datamodule"]) for entry in log}) == 3
    for entry in log[1:]:
        assert all(torch.equal(a, b) for a, b in zip(entry["start"], log[0]["start"], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(log[0]["end"], log[1]["start"], strict=True))
    # ClassWeighting counted each fold's own training labels (fresh instance per fold).
    for weighting, entry in zip(weightings, log, strict=True):
        assert weighting.counts == np.bincount(entry["train_labels"].numpy(), minlength=10).tolist()
    assert weightings[0].counts != weightings[1].counts
    assert weightings[0].counts is not None
    assert weightings[0].counts[0] < weightings[0].counts[1] / 5
    # Results: per fold and summarised.
    assert isinstance(result, CVResult)
    assert result.mode == "max"
    assert [f.fold for f in result.folds] == [0, 1, 2]
    assert result.values == [f.metrics["val_acc"] for f in result.folds]
    assert result.mean == pytest.approx(np.mean(result.values))
    assert result.std == pytest.approx(np.std(result.values, ddof=1))
    assert result.summary()["val_acc"] == (pytest.approx(result.mean), pytest.approx(result.std))
    for f, entry in zip(result.folds, log, strict=True):
        assert f.train_size == len(entry["train_labels"])
        assert f.val_size is not None
        assert f.train_size is not None
    assert sum(f.val_size or 0 for f in result.folds) == 1529  # the validation folds cover the pool
    table = result.table()
    lines = table.strip().splitlines()
    assert len(lines) == 2 + 3 + 1
    assert "val_acc" in lines[0]
    assert "val_loss" in lines[0]
    assert lines[-1].startswith("| mean ± std |")
    assert f"{result.mean:.4f} ± {result.std:.4f}" in lines[-1]
    assert "3-fold stratified CV: val_acc" in str(result)
    assert (tmp_path / "fold_2" / "config.yaml").is_file()
    saved = yaml.safe_load((tmp_path / "fold_2" / "config.yaml").read_text())
    assert saved["data"]["init_args"]["fold"] == 2


def test_cross_validate_reads_a_yaml_file_with_overrides_and_picks_the_best_epoch(
    tmp_path: Path,
) -> None:
    config = tmp_path / "digits.yaml"
    config.write_text(yaml.safe_dump(_config()))
    result = cross_validate(
        config,
        k=2,
        kind="plain",
        overrides=["--trainer.max_epochs=2", "--data.init_args.batch_size=32"],
        out_dir=tmp_path / "runs",
    )
    for f in result.folds:
        assert len(f.history) == 2
        assert f.value == min(f.history)
        assert f.epoch == int(np.argmin(f.history))
    last = cross_validate(
        config,
        k=2,
        kind="plain",
        use="last",
        overrides=["--trainer.max_epochs=2"],
        out_dir=tmp_path / "r2",
    )
    assert [f.epoch for f in last.folds] == [1, 1]
    assert last.values == [f.history[-1] for f in last.folds]


def test_cv_objective_returns_the_mean_and_prunes_between_folds(tmp_path: Path) -> None:
    study = optuna.create_study(direction="minimize")
    value = study.optimize(
        lambda trial: cv_objective(trial, _config(), k=2, out_dir=tmp_path / "a"), n_trials=1
    )
    assert value is None
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == pytest.approx(np.mean(trial.user_attrs["cv_values"]))
    assert set(trial.intermediate_values) == {0, 1}
    assert trial.intermediate_values[0] == pytest.approx(trial.user_attrs["cv_values"][0])

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return True

    folds_run: list[int] = []

    def reporter(fold: int) -> Callback | None:
        folds_run.append(fold)
        return None

    pruned = optuna.create_study(pruner=AlwaysPrune())
    pruned.optimize(
        lambda trial: cv_objective(
            trial, _config(), 3, "val_loss", "min", reporter, out_dir=tmp_path / "b"
        ),
        n_trials=1,
    )
    assert pruned.trials[0].state == optuna.trial.TrialState.PRUNED
    assert folds_run == [0]  # stopped after the first fold, before the second trained
    assert list(pruned.trials[0].intermediate_values) == [0]


def test_cv_objective_prunes_when_a_fold_reporter_pruned(tmp_path: Path) -> None:
    class Reporter(Callback):
        pruned = True

    study = optuna.create_study()
    study.optimize(
        lambda trial: cv_objective(
            trial, _config(), k=2, reporter_factory=lambda fold: Reporter(), out_dir=tmp_path
        ),
        n_trials=1,
    )
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED


# ---------------------------------------------------------------- bad input


class NoFolds(LightningDataModule):
    """A datamodule without fold support."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.batch_size = batch_size


def _with(**changes: Any) -> dict[str, Any]:
    config = _config()
    for dotted, value in changes.items():
        node = config
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    return config


BAD_CV: list[tuple[Callable[[], Any], str]] = [
    (lambda: cross_validate(_config(), k=1), "k"),
    (lambda: cross_validate(_config(), k=2.5), "k"),  # type: ignore[arg-type]
    (lambda: cross_validate(_config(), k=True), "k"),
    (lambda: cross_validate(_config(), k=3, kind="loo"), "kind"),  # type: ignore[arg-type]
    (lambda: cross_validate(_config(), k=3, monitor=""), "monitor"),
    (lambda: cross_validate(_config(), k=3, mode="avg"), "mode"),  # type: ignore[arg-type]
    (lambda: cross_validate(_config(), k=3, monitor="val_score"), "mode"),  # up or down?
    (lambda: cross_validate(_config(), k=3, use="mean"), "use"),  # type: ignore[arg-type]
    (lambda: cross_validate(_config(), k=3, seed="0"), "seed"),  # type: ignore[arg-type]
    (lambda: cross_validate(_config(), k=3, overrides="--trainer.max_epochs=1"), "overrides"),
    (lambda: cross_validate(_config(), k=3, overrides=["trainer.max_epochs=1"]), "overrides"),
    (lambda: cross_validate(42, k=3), "config"),  # type: ignore[arg-type]
    (lambda: cross_validate("no/such/config.yaml", k=3), "config"),
    (lambda: cross_validate({"trainer": {}, "model": {}}, k=3), "data"),
    (
        lambda: cross_validate(_with(data={"class_path": f"{__name__}.NoFolds"}), k=3),
        "data.class_path",
    ),
    (
        lambda: cross_validate(
            _with(data={"class_path": "lightning_recipes.imbalance.ResampledDataModule"}), k=3
        ),
        "data.class_path",
    ),
    (lambda: cross_validate(_with(data={"class_path": "no.such.Module"}), k=3), "data.class_path"),
    (
        lambda: cross_validate(_with(trainer__devices=2, trainer__strategy="ddp"), k=2),
        "trainer.devices",
    ),
    (lambda: cross_validate(_config(), k=3, kind="grouped"), "kind"),  # digits: no groups
    (lambda: cross_validate(_config(), k=2, overrides=["--trainer.max_epochz=2"]), "config"),
    (
        lambda: cross_validate(_config(), k=2, overrides=["--data.init_args.scaler=minmax"]),
        "config",
    ),
    (lambda: cross_validate(_config(), k=3, callbacks_factory=5), "callbacks_factory"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("call", "argument"), BAD_CV, ids=[f"{a}-{i}" for i, (_, a) in enumerate(BAD_CV)]
)
def test_cross_validate_refuses_bad_input_before_training(
    call: Callable[[], Any], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=rf"Invalid {argument}="):
        call()


def test_cv_objective_refuses_bad_input() -> None:
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(RecipeConfigError, match="Invalid reporter_factory="):
        cv_objective(trial, _config(), k=2, reporter_factory=3)  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="Invalid k="):
        cv_objective(trial, _config(), k=0)
    with pytest.raises(RecipeConfigError, match=r"Invalid mode='auto'.*'val_score'"):
        cv_objective(trial, _config(), k=2, monitor="val_score")


def test_a_monitor_that_is_never_logged_names_the_logged_metrics(tmp_path: Path) -> None:
    epochs: list[int] = []

    class Epochs(Callback):
        def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
            epochs.append(trainer.current_epoch)

    with pytest.raises(MissingMetricError, match=r"val_f2.*val_acc"):
        cross_validate(
            _with(trainer__max_epochs=3),
            k=2,
            monitor="val_f2",
            mode="max",
            out_dir=tmp_path,
            callbacks_factory=lambda fold: [Epochs()],
        )
    assert epochs == [0]  # at the first validation, not after the fold trained
    with pytest.raises(MissingMetricError, match="no validation ran"):
        cross_validate(_with(trainer__limit_val_batches=0), k=2, out_dir=tmp_path)


X4, Y4 = np.zeros((12, 2)), np.arange(12) % 2

BAD_DATA: list[tuple[Callable[[], Any], str]] = [
    (lambda: DigitsDataModule(num_folds=1), "num_folds"),
    (lambda: DigitsDataModule(num_folds=2.0), "num_folds"),  # type: ignore[arg-type]
    (lambda: DigitsDataModule(num_folds=3, fold=3), "fold"),
    (lambda: DigitsDataModule(num_folds=3, fold=-1), "fold"),
    (lambda: DigitsDataModule(fold=1), "fold"),
    (lambda: DigitsDataModule(num_folds=3, fold_kind="loo"), "fold_kind"),  # type: ignore[arg-type]
    (lambda: DigitsDataModule(num_folds=3, fold_kind="grouped"), "fold_kind"),
    (lambda: DigitsDataModule(scaler="minmax"), "scaler"),  # type: ignore[arg-type]
    (lambda: ArrayDataModule(train=(X4, Y4), num_folds=0), "num_folds"),
    (lambda: ArrayDataModule(train=(X4, Y4), num_folds=13, fold_kind="plain"), "num_folds"),
    (lambda: ArrayDataModule(train=(X4, Y4), num_folds=7), "num_folds"),  # 6 per class
    (lambda: ArrayDataModule(train=(X4, Y4), num_folds=3, fold_kind="grouped"), "groups"),
    (lambda: ArrayDataModule(train=(X4, Y4), num_folds=3, groups=np.arange(12)), "groups"),
    (lambda: ArrayDataModule(train=(X4, Y4), groups=np.arange(12)), "groups"),
    (
        lambda: ArrayDataModule(
            train=(X4, Y4), num_folds=3, fold_kind="grouped", groups=np.arange(5)
        ),
        "groups",
    ),
    (
        lambda: ArrayDataModule(
            train=(X4, Y4), num_folds=3, fold_kind="grouped", groups=np.arange(12) % 2
        ),
        "num_folds",
    ),
    (lambda: ArrayDataModule(train=(X4, Y4), val=(X4, Y4), num_folds=3), "val"),
    (lambda: ArrayDataModule(train=(X4, Y4), scaler="robust"), "scaler"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("build", "argument"), BAD_DATA, ids=[f"{a}-{i}" for i, (_, a) in enumerate(BAD_DATA)]
)
def test_datamodules_refuse_bad_fold_arguments(build: Callable[[], Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"Invalid {argument}="):
        build()


def test_fold_config_does_not_change_the_callers_config(tmp_path: Path) -> None:
    config = _config()
    before = copy.deepcopy(config)
    cross_validate(config, k=2, out_dir=tmp_path)
    assert config == before


def test_the_folds_checkpoints_make_a_k_fold_ensemble(tmp_path: Path) -> None:
    from lightning_recipes.ensembles import EnsembleModule
    from lightning_recipes.modules import MLP, Classifier

    config = _config()
    config["trainer"]["enable_checkpointing"] = True  # the example's ModelCheckpoint
    config["trainer"]["callbacks"] = [{
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"monitor": "val_loss", "mode": "min"},
    }]  # fmt: skip
    result = cross_validate(config, k=2, out_dir=tmp_path / "runs")
    paths = result.checkpoints
    assert [Path(p).parent.parent.name for p in paths] == ["fold_0", "fold_1"]
    # A LightningCLI-built Classifier cannot rebuild its backbone from the hyperparameters:
    # a template takes each checkpoint's weights.
    template = Classifier(MLP(64, hidden=(128, 64), dropout=0.1), num_classes=10)
    ensemble = EnsembleModule.from_checkpoints(template, paths)
    x = torch.rand(5, 64)
    members = [torch.load(p, weights_only=True)["state_dict"] for p in paths]
    probabilities = []
    for state in members:
        template.load_state_dict(state)
        probabilities.append(template.eval()(x).softmax(-1))
    torch.testing.assert_close(ensemble.eval()(x), torch.stack(probabilities).mean(0))
    with pytest.raises(RecipeConfigError, match="out_dir"):
        _ = cross_validate(_config(), k=2).checkpoints


def test_cross_validate_without_out_dir_writes_nothing_into_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config()
    config["trainer"]["logger"] = True  # a TensorBoard logger and a checkpoint, too
    config["trainer"]["enable_checkpointing"] = True
    result = cross_validate(config, k=2)
    assert len(result.folds) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # A folder the config names is the user's choice, and is kept.
    config["trainer"]["default_root_dir"] = str(tmp_path / "mine")
    cross_validate(config, k=2)
    assert len(list((tmp_path / "mine").rglob("config.yaml"))) == 2  # one per fold
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_folds_share_one_parser_and_build_what_a_fresh_cli_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One LightningCLI parser and one config dump serve every fold, with no change to a run.

    Each fold's module and datamodule get the hyperparameters (what ``load_from_checkpoint``
    rebuilds from) and the initial weights that a CLI built from scratch for that fold
    gives them; the config is saved next to the logs only where the files are kept.
    """
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    from lightning_recipes.runner import RecipesCLI
    from lightning_recipes.tuning import config_parser

    counts = {"parser": 0, "saved": 0}
    setup_parser, save = LightningCLI.setup_parser, SaveConfigCallback.setup

    def counting_parser(self: Any, *args: Any) -> None:
        counts["parser"] += 1
        setup_parser(self, *args)

    def counting_save(self: Any, *args: Any, **kwargs: Any) -> None:
        counts["saved"] += 1
        save(self, *args, **kwargs)

    monkeypatch.setattr(LightningCLI, "setup_parser", counting_parser)
    monkeypatch.setattr(SaveConfigCallback, "setup", counting_save)
    monkeypatch.setattr(config_parser, "_BUILT", {})  # as in a fresh process
    log: list[dict[str, Any]] = []
    cross_validate(
        _config(seed=3),
        k=3,
        callbacks_factory=lambda fold: [_Probe(fold, log)],
        out_dir=tmp_path,
    )
    assert counts == {"parser": 1, "saved": 3}
    for fold, entry in enumerate(log):
        fresh = RecipesCLI(
            args=["-c", str(tmp_path / f"fold_{fold}" / "config.yaml")],
            run=False,
            save_config=False,
        )
        assert dict(entry["module"].hparams) == dict(fresh.model.hparams)
        assert dict(entry["datamodule"].hparams) == dict(fresh.datamodule.hparams)
        assert entry["datamodule"].hparams["fold"] == fold
        start = [p.detach() for p in fresh.model.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(entry["start"], start, strict=True))
    counts.update(parser=0, saved=0)
    cross_validate(_config(), k=2)  # a scratch folder, deleted at the end: nothing to save
    assert counts == {"parser": 0, "saved": 0}  # the parser this process built serves again
