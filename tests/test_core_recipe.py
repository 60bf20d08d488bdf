"""`Recipe` (``_core.recipe``): identity to ``state_key``, refused strategies, run summary.

The pinned tables at the end were computed from the callbacks before they moved onto
`Recipe`: every checkpoint key and every refusal message is the same string as before,
so old checkpoints load and the errors read as they did.
"""

# ruff: noqa: E501  (the pinned tables hold each string whole, as Lightning writes it)

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from lightning.pytorch.callbacks import WeightAveraging
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

import lightning_recipes as lr
from lightning_recipes import RecipeConfigError
from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary, run_summaries
from lightning_recipes._core.recipe import Recipe
from tests.registry import REGISTRY, Entry


class Probe(Recipe):
    """A small recipe of the test's own."""

    identity = ("every=every_n_steps", "names", "depth=inner.depth")
    refused_strategies = frozenset({"ddp"})
    refusal_reason = "it probes one process. Use one device."

    def __init__(self, every_n_steps: int = 1, names: list[str] | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.names = names or []
        self.inner = SimpleNamespace(depth=2)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)


class ReportingProbe(Probe):
    @override
    def run_summary(self) -> RecipeSummary:
        return RecipeSummary("Probe", facts={"every": self.every_n_steps})


def _trainer(**kwargs: Any) -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, **kwargs)


def test_state_key_is_lightnings_key_of_the_identity() -> None:
    probe = Probe(5, ["a"])
    assert probe.state_key == "Probe{'every': 5, 'names': ['a'], 'depth': 2}"
    assert probe.state_key == probe._generate_state_key(every=5, names=["a"], depth=2)


def test_state_key_is_kept_yet_follows_every_change() -> None:
    probe = Probe()
    first = probe.state_key
    assert probe.state_key is first  # kept: Lightning reads it on every hook call
    probe.every_n_steps = 3
    assert probe.state_key == "Probe{'every': 3, 'names': [], 'depth': 2}"
    probe.names.append("b")  # a change in place
    assert probe.state_key == "Probe{'every': 3, 'names': ['b'], 'depth': 2}"
    probe.inner.depth = 4  # a dotted path
    assert probe.state_key == "Probe{'every': 3, 'names': ['b'], 'depth': 4}"
    one = type("One", (Recipe,), {"identity": ("x",), "x": 1})()
    assert one.state_key == "One{'x': 1}"


class Plain(Recipe):
    """A recipe without identity."""


class Stop(Recipe, LightningEarlyStopping):
    """Lightning's EarlyStopping on the base, without identity."""


def test_without_identity_the_key_is_the_base_classs() -> None:
    assert Plain().state_key == "Plain"
    assert Stop("val_loss", mode="max").state_key == "Stop{'monitor': 'val_loss', 'mode': 'max'}"


def test_a_refused_strategy_fails_at_setup_with_the_house_message() -> None:
    Probe().setup(_trainer(), LightningModule(), "fit")  # one device: not refused
    ddp = _trainer(devices=2, strategy="ddp")
    with pytest.raises(RecipeConfigError) as caught:
        Probe().setup(ddp, LightningModule(), "fit")
    assert str(caught.value) == (
        "Probe does not support strategy DDPStrategy (ddp): it probes one process. Use one device."
    )

    class MyProbe(Probe):  # a user's subclass: the message still names the recipe
        pass

    with pytest.raises(RecipeConfigError, match=r"^Probe does not support"):
        MyProbe().setup(ddp, LightningModule(), "fit")
    with pytest.raises(RecipeConfigError, match=r"^Probe\(every=1\) does not support"):
        Probe().check_strategy(ddp, recipe="Probe(every=1)")


class PatientStop(Recipe, LightningEarlyStopping):
    """Lightning's EarlyStopping with the patience in its key, on the base."""

    identity = ("monitor", "mode", "patience")
    refused_strategies = helpers.SHARDED
    refusal_reason = "the test says so."

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.check_strategy(trainer)


class Average(Recipe, WeightAveraging):
    """Lightning's WeightAveraging on the base."""

    identity = ("use_buffers=_use_buffers",)


class _Net(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", 1.0 + 0 * self.training_step(batch, batch_idx))  # never improves

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_the_base_works_beside_lightnings_early_stopping_and_weight_averaging(
    tmp_path: Path,
) -> None:
    stop = PatientStop(monitor="val_loss", patience=1)  # Lightning's __init__, untouched
    assert stop.state_key == "PatientStop{'monitor': 'val_loss', 'mode': 'min', 'patience': 1}"
    data = TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    trainer = _trainer(max_epochs=10, callbacks=[stop], default_root_dir=tmp_path)
    trainer.fit(_Net(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert stop.stopped_epoch == 1  # the best at epoch 0, patience 1
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    states = torch.load(tmp_path / "last.ckpt", weights_only=False)["callbacks"]
    assert states[stop.state_key]["stopped_epoch"] == 1

    average = Average(use_buffers=False)  # WeightAveraging's __init__, untouched
    assert average.state_key == "Average{'use_buffers': False}"


def test_run_summary_is_the_contracts_hook() -> None:
    assert Probe().run_summary() is None  # nothing to report: left out of the report
    reporting = ReportingProbe(every_n_steps=2)
    assert run_summaries([Probe(), reporting, Callback()]) == [RecipeSummary("Probe", {"every": 2})]


# ---------------------------------------------------------------- unchanged by the move

STATE_KEYS = {
    "EarlyStopping": "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}",
    "LRFinder": "LRFinder{'min_lr': 1e-05, 'max_lr': 10.0, 'num_steps': 30, 'mode': 'exponential', 'suggestion': 'minimum', 'at_start': True, 'milestones': []}",
    "ClassWeighting": "ClassWeighting{'scheme': 'balanced', 'beta': 0.999, 'loss_attr': None, 'label_key': None}",
    "Freezer": "Freezer{'backbone': 'backbone', 'backbone_regex': None, 'all_but_last': None, 'groups': 'auto'}",
    "GradientMonitor": "GradientMonitor{'groups': 'layer', 'clip': 'norm', 'max_norm': 1.0, 'p': 2.0, 'every': 2, 'vanish': 1e-08, 'explode': None, 'mode': 'absolute', 'patience': 3}",
    "GradientMonitor-observe": "GradientMonitor{'groups': 'layer', 'clip': None, 'max_norm': None, 'p': 2.0, 'every': 1, 'vanish': 1e-08, 'explode': None, 'mode': 'absolute', 'patience': 3}",
    "BatchMixingCheck": "BatchMixingCheck{'on_mixing': 'raise', 'samples': (0, -1)}",
    "Attribution": "Attribution{'method': 'gradient_shap', 'num_samples': 4, 'baselines': 'zeros', 'every_n_epochs': 1, 'output': None}",
    "MetricHistory": "MetricHistory",
    "WeightPenalty": "WeightPenalty{'l1': 0.0001, 'l2': 0.001, 'types': ('Linear', 'Bilinear', 'Conv1d', 'Conv2d', 'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d'), 'names': None, 'exclude': (), 'biases': False, 'per_layer': []}",
    "WeightInit": "WeightInit{'scheme': 'lsuv', 'types': ('Linear', 'Bilinear', 'Conv1d', 'Conv2d', 'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d'), 'names': None, 'exclude': ()}",
    "MixUp": "MixUp{'alpha': 0.4, 'p': 1.0, 'seed': None, 'stop_at_epoch': 2}",
    "SnapshotEnsemble": "SnapshotEnsemble{'cycle_epochs': 1, 'max_snapshots': None, 'skip_cycles': 0}",
    "WeightAverage": "WeightAverage{'kind': 'ema', 'decay': 0.5, 'start_epoch': 1}",
    "AdversarialTraining": "AdversarialTraining{'eps': 0.05, 'method': 'fgsm', 'norm': 'linf'}",
    "Distillation": "Distillation{'temperature': 2.0, 'alpha': 0.5, 'loss_attr': None, 'label_key': None}",
    "RobustnessEvaluation": "RobustnessEvaluation{'attack': 'pgd', 'norm': 'linf', 'epsilons': (0.0, 0.05), 'steps': 2}",
    "CutMix": "CutMix{'alpha': 1.0, 'p': 1.0, 'seed': None, 'stop_at_epoch': None}",
    "LabelSmoothing": "LabelSmoothing{'smoothing': 0.1, 'stop_at_epoch': None}",
    "ImageAugmentation": "ImageAugmentation{'rotation': 10.0, 'translate': (0.1, 0.1), 'scale': (0.9, 1.1), 'shear': 0.0, 'flips': (False, False), 'seed': None}",
    "ActivationMonitor": "ActivationMonitor{'every': 2, 'types': ('ReLU', 'ReLU6', 'LeakyReLU', 'PReLU', 'ELU', 'SELU', 'CELU', 'GELU', 'SiLU', 'Mish', 'Softplus', 'Sigmoid', 'Hardsigmoid', 'Tanh', 'Hardtanh', 'Softsign'), 'names': None, 'exclude': ()}",
    "ImbalanceReport": "ImbalanceReport",
    # Added after the move (issue 25): their first keys, pinned from here on.
    "LogitAdjustment": "LogitAdjustment{'tau': 0.5, 'mode': 'both', 'label_key': None}",
    "GradientNoiseScale": "GradientNoiseScale{'every': 2, 'beta': 0.95, 'method': 'auto'}",
    "BatchSizeFinder": "BatchSizeFinder",
}  # fmt: skip
"""The state key of every registry entry, computed before the callbacks moved onto `Recipe`."""


def test_every_registry_entry_has_a_pinned_state_key() -> None:
    assert sorted(STATE_KEYS) == sorted(entry.name for entry in REGISTRY)


@pytest.mark.parametrize("entry", REGISTRY, ids=[entry.name for entry in REGISTRY])
def test_registry_state_keys_are_unchanged(entry: Entry) -> None:
    assert entry.build().state_key == STATE_KEYS[entry.name]


def _pick_backbone(module: nn.Module) -> nn.Module:
    return module


def _split(backbone: nn.Module) -> list[nn.Module]:
    return list(backbone.children())


def _attribution(**kwargs: Any) -> Callback:
    from lightning_recipes.attribution import Attribution

    return Attribution(**kwargs)


def _integrated_gradients() -> Callback:
    from captum.attr import IntegratedGradients

    return _attribution(method=IntegratedGradients, num_samples=2, baselines="mean")


def _trial_reporter() -> Callback:
    from lightning_recipes.tuning.pruning import TrialReporter

    return TrialReporter("sqlite:///x.db", "s", trial_id=3, step_offset=5)


OTHER_KEYS: dict[str, tuple[Callable[[], Callback], str]] = {
    "EarlyStopping-max": (lambda: lr.EarlyStopping("val_acc", mode="max"), "EarlyStopping{'monitor': 'val_acc', 'mode': 'max'}"),
    "ClassWeighting-mapping": (lambda: lr.ClassWeighting({0: 2.0, 1: 1.0}, beta=0.9, label_key="y", loss_attr="criterion"), "ClassWeighting{'scheme': {0: 2.0, 1: 1.0}, 'beta': 0.9, 'loss_attr': 'criterion', 'label_key': 'y'}"),
    "ClassWeighting-ordered": (lambda: lr.ClassWeighting(OrderedDict({1: 3.0, 0: 1.0})), "ClassWeighting{'scheme': {1: 3.0, 0: 1.0}, 'beta': 0.999, 'loss_attr': None, 'label_key': None}"),
    "Freezer-regex": (lambda: lr.Freezer(backbone_regex=r"^backbone\."), "Freezer{'backbone': None, 'backbone_regex': '^backbone\\\\.', 'all_but_last': None, 'groups': 'auto'}"),
    "Freezer-all_but_last": (lambda: lr.Freezer(all_but_last=1), "Freezer{'backbone': None, 'backbone_regex': None, 'all_but_last': 1, 'groups': 'auto'}"),
    "Freezer-callables": (lambda: lr.Freezer(backbone=_pick_backbone, groups=_split), "Freezer{'backbone': '_pick_backbone', 'backbone_regex': None, 'all_but_last': None, 'groups': '_split'}"),
    "Freezer-lists": (lambda: lr.Freezer(backbone="backbone", groups=["backbone.0", "backbone.1"]), "Freezer{'backbone': 'backbone', 'backbone_regex': None, 'all_but_last': None, 'groups': ['backbone.0', 'backbone.1']}"),
    "GradientMonitor-dict": (lambda: lr.GradientMonitor(groups={"a": ["backbone.*"], "b": ["head.*"]}, norm_type=1.0, explode_threshold=10.0, threshold_mode="relative"), "GradientMonitor{'groups': \"{'a': ['backbone.*'], 'b': ['head.*']}\", 'clip': None, 'max_norm': None, 'p': 1.0, 'every': None, 'vanish': 1e-08, 'explode': 10.0, 'mode': 'relative', 'patience': 3}"),
    "WeightPenalty-per_layer": (lambda: lr.WeightPenalty(l2=1e-3, per_layer={"head.*": {"l2": 0.0}, "backbone.0": {"l1": 1e-5, "l2": 1e-2}}, biases=True), "WeightPenalty{'l1': 0.0, 'l2': 0.001, 'types': ('Linear', 'Bilinear', 'Conv1d', 'Conv2d', 'Conv3d', 'ConvTranspose1d', 'ConvTranspose2d', 'ConvTranspose3d'), 'names': None, 'exclude': (), 'biases': True, 'per_layer': [('backbone.0', [('l1', 1e-05), ('l2', 0.01)]), ('head.*', [('l2', 0.0)])]}"),
    "Attribution-tensor": (lambda: _attribution(method="integrated_gradients", num_samples=2, baselines=torch.zeros(1, 4), output=1), "Attribution{'method': 'integrated_gradients', 'num_samples': 2, 'baselines': 'tensor', 'every_n_epochs': None, 'output': 1}"),
    "Attribution-class": (_integrated_gradients, "Attribution{'method': 'IntegratedGradients', 'num_samples': 2, 'baselines': 'mean', 'every_n_epochs': None, 'output': None}"),
    "TrialReporter": (_trial_reporter, "TrialReporter{'study_name': 's', 'trial_id': 3, 'monitor': 'val_loss', 'step_offset': 5}"),
    "ActivationMonitor-names": (lambda: lr.ActivationMonitor(types=["ReLU"], names=["backbone.*"], exclude=["head"]), "ActivationMonitor{'every': None, 'types': ('ReLU',), 'names': ('backbone.*',), 'exclude': ('head',)}"),
    "WeightAverage-swa": (lambda: lr.WeightAverage("swa"), "WeightAverage{'kind': 'swa', 'decay': None, 'start_epoch': 0}"),
    "SnapshotEnsemble-max": (lambda: lr.SnapshotEnsemble(cycle_epochs=2, max_snapshots=3, skip_cycles=1), "SnapshotEnsemble{'cycle_epochs': 2, 'max_snapshots': 3, 'skip_cycles': 1}"),
    "AdversarialTraining-pgd": (lambda: lr.AdversarialTraining(eps=0.5, attack="pgd", norm="l2"), "AdversarialTraining{'eps': 0.5, 'method': 'pgd', 'norm': 'l2'}"),
    "MixUp-seed": (lambda: lr.MixUp(0.2, p=0.5, seed=7), "MixUp{'alpha': 0.2, 'p': 0.5, 'seed': 7, 'stop_at_epoch': None}"),
    "BatchMixingCheck-warn": (lambda: lr.BatchMixingCheck("warn", samples=[0, 1, 2]), "BatchMixingCheck{'on_mixing': 'warn', 'samples': (0, 1, 2)}"),
    "LRFinder-milestones": (lambda: lr.LRFinder(at_start=False, milestones=[2, 4]), "LRFinder{'min_lr': 1e-06, 'max_lr': 10.0, 'num_steps': 100, 'mode': 'exponential', 'suggestion': 'minimum', 'at_start': False, 'milestones': [2, 4]}"),
}  # fmt: skip
"""Keys of configurations whose arguments are transformed on the way into the key."""


@pytest.mark.parametrize("name", sorted(OTHER_KEYS))
def test_other_state_keys_are_unchanged(name: str) -> None:
    build, key = OTHER_KEYS[name]
    assert build().state_key == key


REFUSALS: dict[str, tuple[Callable[[], Callback], helpers.StrategyFamily, str]] = {
    "EarlyStopping": (lambda: lr.EarlyStopping("val_loss", restore_best_weights=True), "fsdp", "EarlyStopping(restore_best_weights=...) does not support strategy SingleDeviceStrategy (fsdp): the weights are sharded across ranks. Use restore_best_weights=False with a ModelCheckpoint(monitor=...) and load its best_model_path after fit."),
    "LRFinder": (lambda: lr.LRFinder(), "fsdp", "LRFinder does not support strategy SingleDeviceStrategy (fsdp): the sweep trains a full copy of the module, which sharded strategies do not hold on one rank. Run the finder on a single device or under DDP with a smaller model, then set the learning rate by hand."),
    "Freezer": (lambda: lr.Freezer(), "fsdp", "Freezer does not support strategy SingleDeviceStrategy (fsdp): sharded parameters cannot be frozen group by group here. Freeze in configure_model, or use DDP."),
    "GradientMonitor": (lambda: lr.GradientMonitor(), "deepspeed", "GradientMonitor does not support strategy SingleDeviceStrategy (deepspeed): DeepSpeed keeps gradients in its own partitioned buffers and clips them itself: use its gradient_clipping config and its own gradient norm logging."),
    "Attribution": (lambda: _attribution(), "model_parallel", "Attribution does not support strategy SingleDeviceStrategy (model_parallel): rank zero alone would run a forward pass of a sharded model and hang. Explain a single-device copy of the trained model with explain() instead."),
    "WeightPenalty": (lambda: lr.WeightPenalty(l2=1e-3), "fsdp", "WeightPenalty does not support strategy SingleDeviceStrategy (fsdp): under sharding the gradients are split differently from the parameters. Add the penalty to your loss instead (penalty_value in lightning_recipes.regularization)."),
    "WeightInit": (lambda: lr.WeightInit(), "deepspeed", "WeightInit does not support strategy SingleDeviceStrategy (deepspeed): sharded parameters cannot be initialised whole here. Initialise the layers in configure_model with lightning_recipes.initialization.init_modules_."),
    "SnapshotEnsemble": (lambda: lr.SnapshotEnsemble(cycle_epochs=1), "fsdp", "SnapshotEnsemble does not support strategy SingleDeviceStrategy (fsdp): each rank holds only a shard of the weights; use DDP or one device."),
    "WeightAverage": (lambda: lr.WeightAverage(), "fsdp", "WeightAverage does not support strategy SingleDeviceStrategy (fsdp): it keeps a full copy of the model on every rank; use DDP."),
}  # fmt: skip
"""The refusal at ``setup("fit")`` of every callback that refuses a family, as it was."""


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusal_messages_are_unchanged(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build, family, message = REFUSALS[name]
    monkeypatch.setattr(helpers, "strategy_family", lambda trainer: family)
    with pytest.raises(RecipeConfigError) as caught:
        build().setup(_trainer(), LightningModule(), "fit")
    assert str(caught.value) == message
