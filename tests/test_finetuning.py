"""Layer groups, discriminative LRs and the Freezer callback in a Trainer."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn
from torch.optim import Optimizer

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.finetuning import (
    Freezer,
    layer_decay_lrs,
    layer_groups,
    select_backbone,
    spread_lrs,
    unfrozen_at,
)
from lightning_recipes.modules import MLP, Classifier, SmallCNN

MakeTrainer = Callable[..., Trainer]


# ------------------------------------------------------------ pure parts


class FakeResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        for i in range(1, 5):
            setattr(self, f"layer{i}", nn.Conv2d(4, 4, 1))
        self.fc = nn.Linear(4, 2)


class FakeViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Linear(4, 4)
        self.blocks = nn.Sequential(*[nn.Linear(4, 4) for _ in range(3)])
        self.norm = nn.LayerNorm(4)


def names(backbone: nn.Module, spec: Any = "auto") -> list[str]:
    return [group.name for group in layer_groups(backbone, spec)]


def test_automatic_groups_for_common_architectures() -> None:
    assert names(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))) == ["0", "2"]
    assert names(FakeResNet()) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert names(FakeViT()) == ["stem", "blocks.0", "blocks.1", "blocks.2", "rest"]


def test_groups_by_names_globs_and_callables() -> None:
    net = FakeResNet()
    assert names(net, ["conv1", "layer[12]", "layer3"]) == ["unmatched", "conv1", "layer[12]",
                                                           "layer3"]  # fmt: skip
    groups = layer_groups(net, lambda m: [m.layer1, m.layer2])
    assert [len(g.params) for g in groups] == [10, 2, 2]  # unmatched first, then the two
    with pytest.raises(RecipeConfigError, match=r"layer9.*Top-level modules: conv1, bn1"):
        layer_groups(net, ["layer9"])
    with pytest.raises(RecipeConfigError, match="two layer groups"):
        layer_groups(net, ["layer1", "layer*"])


def test_equal_valued_parameters_stay_two_parameters() -> None:
    first = nn.Linear(3, 3)
    twin = copy.deepcopy(first)  # same values, different tensors
    groups = layer_groups(nn.Sequential(first, twin))
    assert len(groups) == 2
    assert groups[0].params[0] is first.weight
    assert groups[1].params[0] is twin.weight


def test_lr_helpers() -> None:
    assert layer_decay_lrs(0.1, 3, 0.5) == pytest.approx([0.0125, 0.025, 0.05])
    assert spread_lrs(1e-5, 1e-3, 3) == pytest.approx([1e-5, 1e-4, 1e-3])
    assert unfrozen_at({1: 1, 3: 2}, 2) == 1
    with pytest.raises(RecipeConfigError, match="decay"):
        layer_decay_lrs(0.1, 3, 0.0)


# ------------------------------------------------------------ in a Trainer


class Record(Callback):
    """After the Freezer: trainable flags, LRs and BN stats at each epoch start."""

    def __init__(self) -> None:
        self.trainable: dict[int, list[bool]] = {}
        self.lrs: dict[int, list[float]] = {}
        self.step_lrs: list[list[float]] = []

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        freezer = next(c for c in trainer.callbacks if isinstance(c, Freezer))  # type: ignore[attr-defined]
        self.trainable[trainer.current_epoch] = [
            all(p.requires_grad for p in g.params) for g in freezer.groups
        ]
        self.lrs[trainer.current_epoch] = [g["lr"] for g in trainer.optimizers[0].param_groups]

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        self.step_lrs.append([g["lr"] for g in optimizer.param_groups])


def mlp_classifier(lr: float = 1e-3, **kwargs: Any) -> Classifier:
    seed_everything(0)
    return Classifier(MLP(64, [32, 16]), num_classes=10, lr=lr, **kwargs)


def test_unfreezes_on_schedule_with_discriminative_rates(make_trainer: MakeTrainer) -> None:
    record = Record()
    freezer = Freezer(unfreeze={1: 1, 2: 2}, lr_decay=0.5)
    trainer = make_trainer(
        max_epochs=3, limit_train_batches=2, limit_val_batches=0, callbacks=[freezer, record]
    )
    trainer.fit(mlp_classifier(lr=0.01), DigitsDataModule())
    assert [g.name for g in freezer.groups] == ["0", "2"]  # the two Linear layers of MLP
    assert record.trainable == {0: [False, False], 1: [False, True], 2: [True, True]}
    # Head at 0.01; top backbone group 0.01 * 0.5; bottom 0.01 * 0.25 (bottom first).
    assert record.lrs[0] == pytest.approx([0.01, 0.0025, 0.005])


def test_frozen_backbone_gets_no_gradient_and_does_not_change(make_trainer: MakeTrainer) -> None:
    model = mlp_classifier()
    before = copy.deepcopy(model.backbone.state_dict())
    head_before = model.head.weight.detach().clone()
    freezer = Freezer(unfreeze=None)
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=3, limit_val_batches=0, callbacks=[freezer]
    )
    trainer.fit(model, DigitsDataModule())
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in model.backbone.parameters())
    assert not torch.equal(model.head.weight, head_before)


@pytest.mark.parametrize("train_bn", [False, True])
def test_frozen_batch_norm_keeps_its_statistics_unless_train_bn(
    make_trainer: MakeTrainer, train_bn: bool
) -> None:
    seed_everything(0)
    model = Classifier(SmallCNN(), num_classes=10)
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    before = [n.running_mean.clone() for n in norms]
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=3, callbacks=[Freezer(unfreeze=None, train_bn=train_bn)]
    )
    trainer.fit(model, DigitsDataModule(layout="image"))
    unchanged = all(torch.equal(n.running_mean, b) for n, b in zip(norms, before, strict=True))
    assert unchanged is not train_bn


class Twins(LightningModule):
    """A backbone of two layers with equal values: identity, not value, must decide."""

    def __init__(self) -> None:
        super().__init__()
        first = nn.Linear(64, 64)
        self.backbone = nn.Sequential(first, copy.deepcopy(first))
        self.head = nn.Linear(64, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.head(self.backbone(x)), y)

    def configure_optimizers(self) -> Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_param_groups_are_identified_by_identity(make_trainer: MakeTrainer) -> None:
    model = Twins()
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=2, callbacks=[Freezer(unfreeze={1: 2})]
    )
    trainer.fit(model, DigitsDataModule())
    groups = trainer.optimizers[0].param_groups
    assert len(groups) == 3
    ids = [{id(p) for p in g["params"]} for g in groups]
    assert ids[1] == {id(model.backbone[0].weight), id(model.backbone[0].bias)}
    assert ids[2] == {id(model.backbone[1].weight), id(model.backbone[1].bias)}
    assert not torch.equal(model.backbone[0].weight, model.backbone[1].weight)  # both trained


def test_schedulers_follow_the_new_groups_and_warm_up_ramps(make_trainer: MakeTrainer) -> None:
    record = Record()
    freezer = Freezer(unfreeze={1: 2}, lr_decay=0.5, warmup_steps=3)
    model = mlp_classifier(lr=0.01, scheduler="exponential_decay",
                           scheduler_options={"factor": 0.5})  # fmt: skip
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=4, limit_val_batches=0, callbacks=[freezer, record]
    )
    trainer.fit(model, DigitsDataModule())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([0.01, 0.0025, 0.005])
    # Epoch 1: the schedule halved every group; warm-up ramps the unfrozen ones 1/4, 2/4, 3/4.
    epoch1 = record.step_lrs[4:]
    assert [round(s[0], 6) for s in epoch1] == [0.005] * 4
    assert [round(s[2] / 0.0025, 4) for s in epoch1] == [0.25, 0.5, 0.75, 1.0]
    assert [round(s[1] / 0.00125, 4) for s in epoch1] == [0.25, 0.5, 0.75, 1.0]


class BackboneMoved(Callback):
    """Whether the backbone's weights differ from ``before`` at the end of each epoch."""

    def __init__(self, before: dict[str, torch.Tensor]) -> None:
        self.before = before
        self.moved: dict[int, bool] = {}

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        state = pl_module.backbone.state_dict()  # type: ignore[union-attr,operator]
        self.moved[trainer.current_epoch] = any(
            not torch.equal(state[k], v) for k, v in self.before.items()
        )


def test_the_default_trains_the_head_for_one_epoch_then_everything(
    make_trainer: MakeTrainer,
) -> None:
    """The default chosen by benchmarks/peers_transfer.py: head alone, then full fine-tuning."""
    model = mlp_classifier(lr=0.01)
    record, freezer = Record(), Freezer()
    moved = BackboneMoved(copy.deepcopy(model.backbone.state_dict()))
    trainer = make_trainer(
        max_epochs=3,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[freezer, record, moved],
    )
    trainer.fit(model, DigitsDataModule())
    assert record.trainable == {0: [False, False], 1: [True, True], 2: [True, True]}
    assert moved.moved == {0: False, 1: True, 2: True}
    # No discriminative decay and no warm-up: every group at the head's rate at every step.
    assert all(lrs == pytest.approx([0.01, 0.01, 0.01]) for lrs in record.step_lrs)
    assert freezer.unfrozen_at == {"0": 1, "2": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_decay": 0.0}, "lr_decay"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"unfreeze": {1: 2, 3: 1}}, "backwards"),
        ({"unfreeze": "sometimes"}, "unfreeze"),
        ({"unfreeze": -1}, "unfreeze"),
        ({"unfreeze": True}, "unfreeze"),
        ({"unfreeze": 1.5}, "unfreeze"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"warmup_steps": -1}, "warmup_steps"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeConfigError, match=message):
        Freezer(**kwargs)


def test_unknown_backbone_lists_the_modules(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(callbacks=[Freezer(backbone="encoder")])
    with pytest.raises(RecipeConfigError, match=r"encoder.*Top-level modules: backbone, head"):
        trainer.fit(mlp_classifier(), DigitsDataModule())


def test_plan_lists_the_rates_of_trainable_groups() -> None:
    freezer = Freezer(unfreeze={1: 1, 3: 3}, lr_decay=0.5)
    freezer.groups = layer_groups(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)))
    plan = freezer.plan(4, 1.0)
    assert plan[0] == [None, None, None]
    assert plan[1] == [None, None, 0.5]
    assert plan[2] == [None, None, 0.5]
    assert plan[3] == [0.125, 0.25, 0.5]
    assert freezer.plot_plan(4, 1.0).axes  # draws


# ------------------------------------------------------------ a module the library did not write


class UserNet(LightningModule):
    """A user's module: stem, two blocks with BatchNorm, a head, and a parameterless loss."""

    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.lr = lr
        self.stem = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.block1 = nn.Sequential(nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.block2 = nn.Sequential(nn.Linear(32, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, 10)
        self.loss_fn = nn.CrossEntropyLoss()  # last child, no parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2(self.block1(self.stem(x))))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self.loss_fn(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", self.loss_fn(self(x), y))

    def configure_optimizers(self) -> Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TrainAfterValidation(UserNet):
    """Overrides the hook, so Lightning calls ``trainer.model.train()`` after validation."""

    def on_validation_model_train(self) -> None:
        super().on_validation_model_train()


BLOCKS = ["stem", "block1", "block2"]


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def moved(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_list_backbone_leaves_the_head_training(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model = UserNet()
    before = snapshot(model)
    freezer = Freezer(backbone=BLOCKS, unfreeze={1: 1})
    trainer = make_trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=0,
                           callbacks=[freezer])  # fmt: skip
    trainer.fit(model, DigitsDataModule())  # fails on backward if the head is frozen
    assert [g.name for g in freezer.groups] == BLOCKS  # no "unmatched" group for the head
    changed = moved(before, model)
    assert {"head.weight", "head.bias", "block2.0.weight"} <= changed
    assert not any(k.startswith(("stem.", "block1.")) for k in changed)
    # The head is not a group: its parameters stay in the optimizer's first param group.
    assert {id(p) for p in trainer.optimizers[0].param_groups[0]["params"]} == {
        id(model.head.weight),
        id(model.head.bias),
    }


def yaml_freezer(tmp_path: Path, init_args: dict[str, Any]) -> Freezer:
    """Build a Freezer as LightningCLI does, from a YAML config (class_path / init_args)."""
    import yaml
    from lightning.pytorch.cli import LightningCLI

    config = {
        "trainer": {
            "callbacks": [{"class_path": "lightning_recipes.Freezer", "init_args": init_args}],
            "logger": False,
            "enable_checkpointing": False,
            "default_root_dir": str(tmp_path),
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with mock.patch("sys.argv", ["fit"]):  # pytest's own arguments are not for the CLI
        cli = LightningCLI(UserNet, DigitsDataModule, run=False, args=["-c", str(path)],
                           save_config_callback=None)  # fmt: skip
    return next(c for c in cli.trainer.callbacks if isinstance(c, Freezer))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "init_args",
    [
        {"backbone": ["stem", "block1", "block2"]},
        {"backbone": ["stem", "block*"]},
        {"backbone_regex": r"stem|block\d"},
        {"all_but_last": 1},
    ],
    ids=["names", "globs", "regex", "all_but_last"],
)
def test_backbone_forms_from_lightning_cli_yaml(
    make_trainer: MakeTrainer, tmp_path: Path, init_args: dict[str, Any]
) -> None:
    freezer = yaml_freezer(tmp_path, {**init_args, "unfreeze": {1: 1}, "lr_decay": 0.5})
    assert freezer.unfreeze == {1: 1}
    seed_everything(0)
    model = UserNet()
    before = snapshot(model)
    trainer = make_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0,
                           callbacks=[freezer])  # fmt: skip
    trainer.fit(model, DigitsDataModule())
    expected = ["stem", "block*"] if "block*" in str(init_args) else BLOCKS
    assert [g.name for g in freezer.groups] == expected
    changed = moved(before, model)
    assert {"head.weight", "block2.0.weight"} <= changed
    assert not any(k.startswith("stem.") for k in changed)


class RecordNorms(Callback):
    """BatchNorm modes seen in training and validation, and running means at epoch ends."""

    def __init__(self, model: UserNet) -> None:
        self.norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm1d)}
        self.train_modes: dict[int, set[tuple[str, bool]]] = {}
        self.val_modes: set[tuple[str, bool]] = set()
        self.means: list[dict[str, torch.Tensor]] = []

    def _modes(self) -> set[tuple[str, bool]]:
        return {(n, m.training) for n, m in self.norms.items()}

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.means.append({n: m.running_mean.clone() for n, m in self.norms.items()})

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        self.train_modes.setdefault(trainer.current_epoch, set()).update(self._modes())

    def on_validation_batch_start(self, trainer: Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self.val_modes |= self._modes()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.means.append({n: m.running_mean.clone() for n, m in self.norms.items()})


def test_unfrozen_batch_norm_trains_as_if_never_frozen(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model = UserNet()
    record = RecordNorms(model)
    freezer = Freezer(backbone=BLOCKS, unfreeze={1: 1, 2: 3})
    trainer = make_trainer(max_epochs=3, limit_train_batches=3, limit_val_batches=1,
                           callbacks=[freezer, record])  # fmt: skip
    trainer.fit(model, DigitsDataModule())
    names = ["stem.1", "block1.1", "block2.1"]
    # Frozen: eval mode in training; unfrozen: train mode, from the epoch of unfreezing.
    assert record.train_modes[0] == {(n, False) for n in names}
    assert record.train_modes[1] == {("stem.1", False), ("block1.1", False), ("block2.1", True)}
    assert record.train_modes[2] == {(n, True) for n in names}
    assert record.val_modes == {(n, False) for n in names}  # and eval in validation
    # Running statistics move exactly in the epochs where the group trains.
    for epoch, trained in enumerate([[], ["block2.1"], names]):
        start, end = record.means[epoch], record.means[epoch + 1]
        assert [n for n in names if not torch.equal(start[n], end[n])] == trained, epoch


class CallsTrain(Callback):
    """A callback that puts the whole model in train mode at each epoch start."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module.train()


@pytest.mark.parametrize("who", ["callback", "lightning"])
def test_model_train_calls_do_not_unfreeze_batch_norm(make_trainer: MakeTrainer, who: str) -> None:
    """Frozen statistics stay put whoever calls ``.train()``: a callback running after the
    Freezer, or Lightning itself after a mid-epoch validation (hook overridden)."""
    seed_everything(0)
    model = UserNet() if who == "callback" else TrainAfterValidation()
    record = RecordNorms(model)
    callbacks: list[Callback] = [Freezer(backbone=BLOCKS, unfreeze=None), record]
    if who == "callback":
        callbacks.insert(1, CallsTrain())  # after the Freezer's own epoch-start hook
    trainer = make_trainer(max_epochs=2, limit_train_batches=4, limit_val_batches=1,
                           val_check_interval=2, callbacks=callbacks)  # fmt: skip
    before = snapshot(model)
    trainer.fit(model, DigitsDataModule())
    assert not {k for k in moved(before, model) if not k.startswith("head.")}
    assert all(not training for epoch in record.train_modes.values() for _, training in epoch)


class TwoEncoders(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.enc_a = nn.Linear(64, 16)
        self.enc_b = nn.Linear(64, 16)
        self.head = nn.Linear(32, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        features = torch.cat([self.enc_a(x), self.enc_b(x)], dim=1)
        return nn.functional.cross_entropy(self.head(features), y)

    def configure_optimizers(self) -> Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_two_freezers_keep_separate_checkpoint_state(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    def freezers() -> list[Freezer]:
        return [Freezer(backbone="enc_a", unfreeze={1: 1}),
                Freezer(backbone="enc_b", unfreeze={5: 1})]  # fmt: skip

    first = freezers()
    trainer = make_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0,
                           callbacks=first)  # fmt: skip
    trainer.fit(TwoEncoders(), DigitsDataModule())
    assert [f.unfrozen for f in first] == [1, 0]
    ckpt = tmp_path / "two.ckpt"
    trainer.save_checkpoint(ckpt)
    states = torch.load(ckpt, weights_only=False)["callbacks"]
    assert {k: v["unfrozen"] for k, v in states.items()} == {f.state_key: f.unfrozen for f in first}
    assert len(states) == 2
    resumed = freezers()
    trainer = make_trainer(
        max_epochs=3, limit_train_batches=2, limit_val_batches=0, callbacks=resumed[::-1]
    )  # fmt: skip  (order must not matter)
    trainer.fit(TwoEncoders(), DigitsDataModule(), ckpt_path=ckpt)
    assert [f._restored for f in resumed] == [1, 0]


def test_checkpoint_keyed_by_class_name_still_resumes(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    """Checkpoints written before the state_key held the backbone used the class name."""
    trainer = make_trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0,
                           callbacks=[Freezer(backbone="enc_a", unfreeze={1: 1})])  # fmt: skip
    trainer.fit(TwoEncoders(), DigitsDataModule())
    ckpt = tmp_path / "old.ckpt"
    trainer.save_checkpoint(ckpt)
    checkpoint = torch.load(ckpt, weights_only=False)
    checkpoint["callbacks"] = {"Freezer": next(iter(checkpoint["callbacks"].values()))}
    torch.save(checkpoint, ckpt)
    resumed = Freezer(backbone="enc_a", unfreeze={1: 1})
    trainer = make_trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=0,
                           callbacks=[resumed])  # fmt: skip
    trainer.fit(TwoEncoders(), DigitsDataModule(), ckpt_path=ckpt)
    assert resumed._restored == 1


# ------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"backbone": 42}, "backbone"),
        ({"backbone": []}, "backbone"),
        ({"backbone": ["stem", 3]}, "backbone"),
        ({"backbone": ""}, "backbone"),
        ({"backbone": nn.Linear(2, 2)}, "backbone"),
        ({"unfreeze": "grad"}, "unfreeze"),
        ({"unfreeze": {-1: 1}}, "unfreeze"),
        ({"unfreeze": {1: 2, 3: 1}}, "unfreeze"),
        ({"unfreeze": {}}, "unfreeze"),
        ({"unfreeze": {1: 1.5}}, "unfreeze"),
        ({"unfreeze": 3.0}, "unfreeze"),  # an epoch is an integer (3 is valid)
        ({"unfreeze": -3}, "unfreeze"),
        ({"unfreeze": False}, "unfreeze"),
        ({"lr_decay": 0}, "lr_decay"),
        ({"lr_decay": 2}, "lr_decay"),
        ({"lr_decay": True}, "lr_decay"),
        ({"lr_decay": float("nan")}, "lr_decay"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"warmup_steps": 2.5}, "warmup_steps"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"every_n_epochs": 2, "unfreeze": {1: 1}}, "every_n_epochs"),
        ({"train_bn": "yes"}, "train_bn"),
        ({"groups": "bogus"}, "groups"),
        ({"groups": []}, "groups"),
        ({"groups": ["a", 1]}, "groups"),
        ({"backbone": ["stem"], "groups": ["stem.0"]}, "groups"),
        ({"backbone_regex": "stem", "groups": "children"}, "groups"),
        ({"all_but_last": 1, "groups": ["stem.0"]}, "groups"),
        ({"backbone_regex": "("}, "backbone_regex"),
        ({"backbone_regex": ""}, "backbone_regex"),
        ({"all_but_last": 0}, "all_but_last"),
        ({"all_but_last": True}, "all_but_last"),
        ({"backbone": "enc", "backbone_regex": "enc.*"}, "backbone_regex"),
    ],
)
def test_bad_freezer_arguments_fail_at_construction(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"^Invalid {argument}="):
        Freezer(**kwargs)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: layer_groups(42), "backbone"),  # type: ignore[arg-type]
        (lambda: layer_groups(FakeResNet(), "bogus"), "groups"),  # type: ignore[arg-type]
        (lambda: layer_groups(FakeResNet(), []), "groups"),
        (lambda: layer_groups(FakeResNet(), ["layer9"]), "groups"),
        (lambda: layer_groups(FakeResNet(), [3]), "groups"),  # type: ignore[list-item]
        (lambda: layer_groups(FakeResNet(), 42), "groups"),  # type: ignore[arg-type]
        (lambda: layer_groups(FakeResNet(), lambda m: [42]), "groups"),  # type: ignore[list-item]
        (lambda: select_backbone(UserNet(), names=["nope"]), "backbone"),
        (lambda: select_backbone(UserNet(), regex="nope.*"), "backbone_regex"),
        (lambda: select_backbone(UserNet(), all_but_last=4), "all_but_last"),
        (lambda: layer_decay_lrs(0.1, 3, 0), "decay"),
        (lambda: layer_decay_lrs(0.1, 3, 1.5), "decay"),
        (lambda: layer_decay_lrs(-1.0, 3, 0.5), "base_lr"),
        (lambda: layer_decay_lrs(0.1, 0, 0.5), "n_groups"),
        (lambda: layer_decay_lrs(0.1, 2.5, 0.5), "n_groups"),  # type: ignore[arg-type]
        (lambda: spread_lrs(0.0, 1e-2, 3), "low"),
        (lambda: spread_lrs(1e-2, 1e-4, 3), "low"),
        (lambda: spread_lrs(1e-4, float("inf"), 3), "high"),
        (lambda: spread_lrs(1e-4, 1e-2, 0), "n_groups"),
        (lambda: unfrozen_at([1, 2], 1), "schedule"),  # type: ignore[arg-type]
        (lambda: unfrozen_at({1: 1}, 1.5), "epoch"),  # type: ignore[arg-type]
        (lambda: Freezer(unfreeze="gradual").unfreeze_epochs(-1), "n_groups"),
    ],
)
def test_bad_group_helper_arguments(call: Callable[[], Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"^Invalid {argument}="):
        call()


@pytest.mark.parametrize(
    ("kwargs", "argument", "detail"),
    [
        ({"backbone": "encoder"}, "backbone", "Top-level modules: stem, block1"),
        ({"backbone": "stem.9"}, "backbone", "No such module"),
        ({"backbone": ["stem", "blok1"]}, "backbone", "Top-level modules: stem, block1"),
        ({"backbone_regex": "blok.*"}, "backbone_regex", "matches it entirely"),
        ({"all_but_last": 4}, "all_but_last", "4 top-level modules with parameters"),
        ({"backbone": [*BLOCKS, "head"]}, "backbone", "nothing would train in epoch 0"),
        ({"backbone": lambda m: m}, "backbone", "nothing would train"),
    ],
)
def test_bad_backbones_fail_at_setup(
    make_trainer: MakeTrainer, kwargs: dict[str, Any], argument: str, detail: str
) -> None:
    model = UserNet()
    before = snapshot(model)
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0,
                           callbacks=[Freezer(**kwargs)])  # fmt: skip
    with pytest.raises(RecipeConfigError, match=rf"^Invalid {argument}=.*{detail}"):
        trainer.fit(model, DigitsDataModule())
    assert not moved(before, model)  # refused before any training


def test_two_freezers_on_one_backbone_are_refused(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(callbacks=[Freezer(backbone="enc_a"), Freezer(backbone=["enc_*"])])
    with pytest.raises(RecipeConfigError, match="freeze the same parameters"):
        trainer.fit(TwoEncoders(), DigitsDataModule())


# ------------------------------------------------------------ the plan, for other recipes


def test_unfreeze_epochs_is_a_pure_plan() -> None:
    assert Freezer(unfreeze=None).unfreeze_epochs(2) == [None, None]
    assert Freezer().unfreeze_epochs(3) == [1, 1, 1]  # the default: everything at epoch 1
    assert Freezer(unfreeze=0).unfreeze_epochs(2) == [0, 0]
    assert Freezer(unfreeze=4).unfreeze_epochs(2) == [4, 4]
    assert Freezer(unfreeze={1: 1, 3: 3}).unfreeze_epochs(4) == [None, 3, 3, 1]
    assert Freezer(unfreeze="gradual", every_n_epochs=2).unfreeze_epochs(3) == [6, 4, 2]
    freezer = Freezer(unfreeze={0: 1, 2: 5})
    freezer.groups = layer_groups(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    epochs = freezer.unfreeze_epochs()
    assert epochs == [2, 0]
    # Consistent with what the callback does, epoch by epoch.
    for epoch in range(4):
        assert freezer.target(epoch) == sum(e is not None and e <= epoch for e in epochs)


class Trunk(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(64)  # in no named group: the "unmatched" one
        self.layer1 = nn.Linear(64, 32)
        self.layer2 = nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(self.norm(x)))


def test_unmatched_group_freezes_its_batch_norm_too(make_trainer: MakeTrainer) -> None:
    groups = layer_groups(FakeResNet(), ["layer1", "layer2"])
    assert groups[0].name == "unmatched"
    assert [type(m).__name__ for m in groups[0].modules] == [
        "Conv2d", "BatchNorm2d", "Conv2d", "Conv2d", "Linear"]  # fmt: skip
    seed_everything(0)
    model = Classifier(Trunk(), num_classes=10, in_features=16)
    before = snapshot(model.backbone)
    freezer = Freezer(groups=["layer1", "layer2"], unfreeze={1: 2})
    trainer = make_trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=0,
                           callbacks=[freezer])  # fmt: skip
    trainer.fit(model, DigitsDataModule())
    assert [g.name for g in freezer.groups] == ["unmatched", "layer1", "layer2"]
    assert moved(before, model.backbone) == {
        "layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"}  # fmt: skip


def test_groups_split_a_backbone_named_by_one_module_or_a_callable() -> None:
    assert Freezer(backbone="stem", groups="children").group_spec == "children"
    pick = Freezer(backbone=lambda m: m.stem, groups=["0", "1"])  # type: ignore[attr-defined]
    assert pick.group_spec == ["0", "1"]
