"""Bad inputs fail early, with a RecipeConfigError that names the argument (issue 21).

One row per bad input: what is built, with which arguments, and the argument the message
must name (``Invalid <argument>...``, the house format). ``FIXED`` rows were silently
accepted, failed with a raw Python/torch error, named another argument, or failed only
after training before this file existed; ``GUARDS`` rows were already clear and keep them
so. Constructors only, except the checks that need the model or a batch, which run a tiny
Trainer and must fail before the first epoch ends.
"""

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import (
    MLP,
    ActivationMonitor,
    AdversarialTraining,
    ArrayDataModule,
    Attribution,
    BatchMixingCheck,
    DigitsDataModule,
    EarlyStopping,
    EnsembleModule,
    FocalLoss,
    Freezer,
    GradientMonitor,
    ImbalanceReport,
    MetricHistory,
    RobustnessEvaluation,
    SmallCNN,
    WeightInit,
    WeightPenalty,
    make_imbalanced,
    no_decay_param_groups,
    stratified_split,
)
from lightning_recipes.data import TabularDataModule
from lightning_recipes.errors import MissingMetricError, RecipeConfigError
from lightning_recipes.gradients.check import batch_mixing
from lightning_recipes.imbalance.samplers import ClassBalancedSampler
from lightning_recipes.tuning import TrialReporter, load_config, load_space

NAN, INF = math.nan, math.inf
X = np.zeros((40, 4), dtype=np.float32)
Y = np.arange(40) % 2
STORE = {"storage": "sqlite:///study.db", "study_name": "s", "trial_id": 0}
DECAY = {"module": nn.Linear(2, 2), "weight_decay": 0.1}
QUICK = {"steps": 1, "plot": False}


def _shown(kwargs: dict[str, Any]) -> str:
    """A short test id: simple values in full, arrays and modules by their type."""

    def short(value: Any) -> str:
        if isinstance(value, tuple | list):
            return "(" + ",".join(short(v) for v in value) + ")"
        if isinstance(value, str | int | float | dict | None):
            return repr(value)
        return f"<{type(value).__name__}{list(getattr(value, 'shape', []))}>"

    return ",".join(f"{k}={short(v)}" for k, v in kwargs.items())


def _row(build: Callable[..., Any], argument: str, **kwargs: Any) -> Any:
    return pytest.param(build, kwargs, argument, id=f"{build.__name__}-{_shown(kwargs)}")


def _history_series(name: str) -> Any:
    history = MetricHistory()
    history.records = [{"epoch": 0.0, "val_loss": 0.5}]
    return history.series(name)


FIXED = [
    # layer widths: a bare int or a float width was a raw TypeError from torch
    _row(lambda **kw: MLP(64, **kw), "hidden", hidden=64),
    _row(lambda **kw: MLP(64, **kw), "hidden", hidden=[64.5]),
    _row(SmallCNN, "channels", channels=16),
    # a list of class names / globs: case, duplicates, empty
    _row(ActivationMonitor, "types", types=["linear"]),
    _row(ActivationMonitor, "types", types=["ReLU", "ReLU"]),
    _row(ActivationMonitor, "names", names=[]),
    _row(ActivationMonitor, "names", names=["fc", "fc"]),
    _row(ActivationMonitor, "exclude", exclude=["fc", "fc"]),
    _row(WeightInit, "types", types=["linear"]),
    _row(WeightInit, "names", names=[]),
    _row(WeightPenalty, "types", l2=1e-4, types=["conv2d"]),
    _row(WeightPenalty, "names", l2=1e-4, names=[]),
    _row(no_decay_param_groups, "no_decay_types", **DECAY, no_decay_types=["layernorm"]),
    _row(no_decay_param_groups, "no_decay_names", **DECAY, no_decay_names=[1]),
    _row(BatchMixingCheck, "samples", samples=(0, 0)),
    _row(Freezer, "backbone", backbone=["encoder", "encoder"]),
    _row(Freezer, "groups", groups=["0", "0"]),
    # radii, ranges and batch keys of the robustness recipes
    _row(RobustnessEvaluation, "epsilons", epsilons=[INF]),
    _row(RobustnessEvaluation, "epsilons", epsilons=[0.1, 0.1]),
    _row(RobustnessEvaluation, "clip", clip=("a", "b")),
    _row(RobustnessEvaluation, "input_key", input_key=-1),
    _row(RobustnessEvaluation, "input_key", input_key=""),
    _row(RobustnessEvaluation, "input_key", input_key=[0]),
    _row(RobustnessEvaluation, "label_key", input_key="x", label_key="x"),
    _row(AdversarialTraining, "eps", eps=INF),
    _row(AdversarialTraining, "clip", eps=0.1, clip=("a", "b")),
    _row(AdversarialTraining, "input_key", eps=0.1, input_key=-1),
    _row(AdversarialTraining, "label_key", eps=0.1, input_key=0, label_key=0),
    # data
    _row(ArrayDataModule, "train", train=(X, Y[:10])),
    _row(ArrayDataModule, "imbalance", train=(X, Y), imbalance=[0.5]),
    _row(DigitsDataModule, "imbalance", imbalance=[0.5]),
    _row(DigitsDataModule, "imbalance", imbalance={"0": 0.5}),
    _row(stratified_split, "fractions", labels=Y, fractions=0.5),
    _row(make_imbalanced, "fractions", labels=Y, fractions={0: 2.0}),
    _row(make_imbalanced, "fractions", labels=Y, fractions={5: 0.5}),
    _row(make_imbalanced, "fractions", labels=Y, fractions=[0.5]),
    # a string where a list of overrides is expected was read letter by letter
    _row(load_config, "overrides='model.lr=1'", source={"model": {}}, overrides="model.lr=1"),
    _row(load_config, "overrides", source={"model": {}}, overrides=[5]),
    # a metric name that was never recorded gave an empty series
    _row(_history_series, "name", name="val_los"),
    # losses and attribution
    _row(FocalLoss, "alpha", alpha=[]),
    _row(FocalLoss, "weight", weight=[]),
    _row(Attribution, "output", output=""),
    _row(Attribution, "method_kwargs", method_kwargs={"n_step": 10}),
]

GUARDS = [
    _row(ActivationMonitor, "types", types="ReLU"),
    _row(ActivationMonitor, "types", types=[]),
    _row(ActivationMonitor, "types", types=[nn.ReLU]),
    _row(ActivationMonitor, "names", names="fc"),
    _row(ActivationMonitor, "exclude", exclude=[3]),
    _row(ActivationMonitor, "hist_max", hist_max=NAN),
    _row(WeightInit, "types", types="Linear"),
    _row(WeightInit, "exclude", exclude=[1]),
    _row(WeightPenalty, "names", l2=1e-4, names="fc"),
    _row(WeightPenalty, "per_layer", l2=1e-4, per_layer={"fc": {"l3": 0.1}}),
    _row(WeightPenalty, "per_layer", l2=1e-4, per_layer={"fc": {"l2": NAN}}),
    _row(WeightPenalty, "per_layer", l2=1e-4, per_layer={"fc": 0.1}),
    _row(no_decay_param_groups, "no_decay_types", **DECAY, no_decay_types="LayerNorm"),
    _row(BatchMixingCheck, "samples", samples=0),
    _row(BatchMixingCheck, "samples", samples=[]),
    _row(BatchMixingCheck, "samples", samples=(0.5,)),
    _row(BatchMixingCheck, "on_mixing", on_mixing="Raise"),
    _row(Freezer, "backbone", backbone=""),
    _row(Freezer, "backbone", backbone=[]),
    _row(Freezer, "backbone", backbone=[1]),
    _row(Freezer, "groups", groups="Auto"),
    _row(Freezer, "groups", groups=[]),
    _row(Freezer, "unfreeze", unfreeze="Gradual"),
    _row(Freezer, "unfreeze", unfreeze={-1: 1}),
    _row(Freezer, "unfreeze", unfreeze=-1),
    _row(Freezer, "backbone_regex", backbone_regex="("),
    _row(ImbalanceReport, "class_names", num_classes=3, class_names="abc"),
    _row(ImbalanceReport, "class_names", num_classes=3, class_names=["a", "b"]),
    _row(ImbalanceReport, "class_names", num_classes=3, class_names=["a", "a", "b"]),
    _row(RobustnessEvaluation, "epsilons", epsilons=0.1),
    _row(RobustnessEvaluation, "epsilons", epsilons=[]),
    _row(RobustnessEvaluation, "epsilons", epsilons=[-0.1]),
    _row(RobustnessEvaluation, "epsilons", epsilons=[NAN]),
    _row(RobustnessEvaluation, "epsilons", epsilons=["0.1"]),
    _row(RobustnessEvaluation, "clip", clip=(0.0,)),
    _row(RobustnessEvaluation, "clip", clip=(1.0, 0.0)),
    _row(RobustnessEvaluation, "clip", clip="0,1"),
    _row(RobustnessEvaluation, "attack", attack="PGD"),
    _row(RobustnessEvaluation, "norm", norm="L2"),
    _row(AdversarialTraining, "eps", eps=NAN),
    _row(AdversarialTraining, "attack", eps=0.1, attack="PGD"),
    _row(EnsembleModule, "members", members=[]),
    _row(EnsembleModule, "weights", members=[nn.Linear(2, 2)] * 2, weights=[1.0]),
    _row(EnsembleModule, "weights", members=[nn.Linear(2, 2)] * 2, weights=[NAN, 1.0]),
    _row(ArrayDataModule, "train", train=(X,)),
    _row(ArrayDataModule, "imbalance", train=(X, Y), imbalance={9: 0.5}),
    _row(ArrayDataModule, "fold_kind", train=(X, Y), fold_kind="Stratified"),
    _row(DigitsDataModule, "layout", layout="Image"),
    _row(DigitsDataModule, "imbalance", imbalance={0: NAN}),
    _row(DigitsDataModule, "imbalance", imbalance={10: 0.5}),
    _row(TabularDataModule, "dataset", dataset="iris"),
    _row(stratified_split, "fractions", labels=Y, fractions=[0.5, -0.5, 1.0]),
    _row(FocalLoss, "alpha", alpha=[NAN, 1.0]),
    _row(FocalLoss, "weight", weight="balanced"),
    _row(FocalLoss, "reduction", reduction="Mean"),
    _row(ClassBalancedSampler, "weights", labels=Y, weights="Balanced"),
    _row(ClassBalancedSampler, "weights", labels=Y, weights=[1.0]),
    _row(TrialReporter, "monitor", **STORE, monitor=""),
    _row(TrialReporter, "mode", **STORE, mode="Min"),
    _row(TrialReporter, "pruner_args", **STORE, pruner_args={"foo": 1}),
    _row(load_space, "space", source="/nonexistent/space.yaml"),
    _row(load_space, "space['lr'].choices", source={"lr": {"type": "categorical", "choices": []}}),
    _row(load_config, "config", source="/nonexistent/config.yaml"),
    _row(load_config, "overrides", source={"model": {}}, overrides=["model.lr"]),
    _row(EarlyStopping, "monitor", monitor=""),
    _row(EarlyStopping, "monitor", monitor=["val_loss"]),
    _row(EarlyStopping, "mode", monitor="val_loss", mode="Min"),
    _row(EarlyStopping, "min_delta", monitor="val_loss", min_delta=NAN),
    _row(Attribution, "method", method="GradientShap"),
    _row(Attribution, "baselines", baselines="Zeros"),
    _row(Attribution, "feature_names", feature_names="abc"),
    _row(Attribution, "feature_names", feature_names=["a", "a"]),
]


@pytest.mark.parametrize(("build", "kwargs", "argument"), FIXED + GUARDS)
def test_a_bad_argument_is_refused_at_construction(
    build: Callable[..., Any], kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=rf"^Invalid {re.escape(argument)}(?![A-Za-z_])"):
        build(**kwargs)


def test_a_sample_index_outside_the_batch_is_refused() -> None:
    with pytest.raises(RecipeConfigError, match=r"^Invalid samples=.*outside the batch of 4"):
        batch_mixing(nn.Linear(3, 2), torch.randn(4, 3), samples=(0, 9))


def test_the_same_checkpoint_twice_is_refused(tmp_path: Path) -> None:
    """It made an ensemble that counts one model twice."""
    path = tmp_path / "fold0.ckpt"
    path.touch()
    with pytest.raises(RecipeConfigError, match=r"^Invalid paths=.*appears twice"):
        EnsembleModule.from_checkpoints(LightningModule, [path, tmp_path / "." / "fold0.ckpt"])


# ---------------------------------------------------------------- checks against the model


class _Net(LightningModule):
    """backbone = Sequential(Linear, ReLU), head = Sequential(Linear); logs val_loss."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.backbone(x))
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(16, 4, generator=g), torch.arange(16) % 2)
    return DataLoader(data, batch_size=8)


def _setup_row(build: Callable[..., Any], argument: str, listed: str, **kwargs: Any) -> Any:
    return pytest.param(build, kwargs, argument, listed, id=f"{build.__name__}-{_shown(kwargs)}")


SETUP_FIXED = [
    # a name that matches nothing was ignored, or the message named `types`
    _setup_row(WeightPenalty, "names", "'backbone.0', 'head.0'", l2=1e-3, names=["head"]),
    _setup_row(WeightPenalty, "types", "'Linear'", l2=1e-3, types=["MyBlock"]),
    _setup_row(WeightPenalty, "exclude", "'head.0'", l2=1e-3, exclude=["heda.*"]),
    _setup_row(WeightPenalty, "per_layer", "'head.0'", l2=1e-3, per_layer={"heda.*": {"l2": 0.1}}),
    _setup_row(WeightInit, "names", "'backbone.0', 'head.0'", names=["backbone.9"]),
    _setup_row(WeightInit, "types", "'Linear'", types=["MyBlock"]),
    _setup_row(ActivationMonitor, "names", "'backbone.1'", names=["backbone.2"], plot=False),
    _setup_row(ActivationMonitor, "types", "'ReLU'", types=["GELU"], plot=False),
    _setup_row(GradientMonitor, "groups", "backbone.0.weight", groups={"head": ["heda.*"]}),
    # a batch key that is not in the batch: an IndexError, or nothing at all
    _setup_row(AdversarialTraining, "label_key", "list", eps=0.1, label_key=5),
    _setup_row(RobustnessEvaluation, "label_key", "list", label_key=5, num_samples=8, **QUICK),
    _setup_row(BatchMixingCheck, "samples", "batch of 8", samples=(0, 99)),
]

SETUP_GUARDS = [
    _setup_row(Freezer, "backbone", "backbone, head", backbone="encoder"),
    _setup_row(Attribution, "output", "leave output=None", output="logit", plot=False),
]


@pytest.mark.parametrize(("build", "kwargs", "argument", "listed"), SETUP_FIXED + SETUP_GUARDS)
def test_a_name_the_model_or_batch_lacks_is_refused_before_training(
    build: Callable[..., Any],
    kwargs: dict[str, Any],
    argument: str,
    listed: str,
    make_trainer: Callable[..., Trainer],
) -> None:
    trainer = make_trainer(max_epochs=2, callbacks=[build(**kwargs)], num_sanity_val_steps=0)
    with pytest.raises(
        RecipeConfigError, match=rf"^Invalid {re.escape(argument)}(?![A-Za-z_])"
    ) as info:
        trainer.fit(_Net(), _loader(), _loader())
    assert listed in str(info.value)
    assert trainer.current_epoch == 0  # within the first epoch, not after training


def test_a_monitored_metric_that_is_never_logged_fails_in_the_first_epoch(
    make_trainer: Callable[..., Trainer],
) -> None:
    trainer = make_trainer(max_epochs=3, callbacks=[EarlyStopping("val_los")])
    with pytest.raises(MissingMetricError, match=r"'val_los'.*Logged metrics: .*'val_loss'"):
        trainer.fit(_Net(), _loader(), _loader())
    assert trainer.current_epoch == 0
