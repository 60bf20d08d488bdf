"""Layer groups, discriminative LRs and the Freezer callback in a Trainer."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    spread_lrs,
    unfrozen_at,
)
from lightning_recipes.modules import Classifier, mlp, small_cnn

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
    return Classifier(mlp(64, [32, 16]), num_classes=10, lr=lr, **kwargs)


def test_unfreezes_on_schedule_with_discriminative_rates(make_trainer: MakeTrainer) -> None:
    record = Record()
    freezer = Freezer(unfreeze={1: 1, 2: 2}, lr_decay=0.5)
    trainer = make_trainer(
        max_epochs=3, limit_train_batches=2, limit_val_batches=0, callbacks=[freezer, record]
    )
    trainer.fit(mlp_classifier(lr=0.01), DigitsDataModule())
    assert [g.name for g in freezer.groups] == ["0", "2"]  # the two Linear layers of mlp
    assert record.trainable == {0: [False, False], 1: [False, True], 2: [True, True]}
    # Head at 0.01; top backbone group 0.01 * 0.5; bottom 0.01 * 0.25 (bottom first).
    assert record.lrs[0] == pytest.approx([0.01, 0.0025, 0.005])


def test_frozen_backbone_gets_no_gradient_and_does_not_change(make_trainer: MakeTrainer) -> None:
    model = mlp_classifier()
    before = copy.deepcopy(model.backbone.state_dict())
    head_before = model.head.weight.detach().clone()
    trainer = make_trainer(limit_train_batches=3, limit_val_batches=0, callbacks=[Freezer()])
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
    model = Classifier(small_cnn(), num_classes=10)
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    before = [n.running_mean.clone() for n in norms]
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=3, callbacks=[Freezer(train_bn=train_bn)]
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


def test_resume_mid_schedule_equals_an_uninterrupted_run(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    def run(epochs: int, ckpt: Path | None = None) -> tuple[Trainer, Classifier]:
        model = mlp_classifier(lr=0.01)
        freezer = Freezer(unfreeze={1: 1, 3: 2}, lr_decay=0.5)
        trainer = make_trainer(
            max_epochs=epochs, limit_train_batches=3, limit_val_batches=0, callbacks=[freezer]
        )
        trainer.fit(model, DigitsDataModule(batch_size=32), ckpt_path=ckpt)
        return trainer, model

    _, full = run(4)
    interrupted, _ = run(2)
    ckpt = tmp_path / "mid.ckpt"
    interrupted.save_checkpoint(ckpt)
    resumed_trainer, resumed = run(4, ckpt)
    for key, value in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    assert len(resumed_trainer.optimizers[0].param_groups) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_decay": 0.0}, "lr_decay"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"unfreeze": {1: 2, 3: 1}}, "backwards"),
        ({"unfreeze": "sometimes"}, "unfreeze"),
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
