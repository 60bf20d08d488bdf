"""SnapshotEnsemble and EnsembleModule with a real Trainer; resume; bad inputs."""

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn

from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.ensembles import (
    EnsembleModule,
    SnapshotEnsemble,
    average_probabilities,
)
from lightning_recipes.errors import RecipeConfigError, RecipeWarning
from lightning_recipes.lr import snapshot_schedule

MAX_EPOCHS = 6
CYCLE = 2


class SnapNet(LightningModule):
    """A user's digits classifier trained with the snapshot schedule."""

    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.lr = lr
        self.backbone = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        steps = self.trainer.estimated_stepping_batches // (self.trainer.max_epochs or 1)
        schedule = snapshot_schedule(optimizer, CYCLE, steps_per_epoch=int(steps))
        return {"optimizer": optimizer, "lr_scheduler": schedule}


class Recorder(Callback):
    """Records the LR and a copy of the weights at the end of every training epoch."""

    def __init__(self) -> None:
        self.lrs: list[float] = []
        self.weights: list[dict[str, Tensor]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.weights.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def _accuracy(model: nn.Module, data: DigitsDataModule) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in data.test_dataloader():
            correct += int((model(x).argmax(-1) == y).sum())
            total += len(y)
    return correct / total


def _fit(make_trainer: Callable[..., Trainer], **kwargs: Any) -> tuple[SnapNet, SnapshotEnsemble]:
    seed_everything(0)
    model, snap = SnapNet(), SnapshotEnsemble(cycle_epochs=CYCLE)
    callbacks = [snap, *kwargs.pop("callbacks", [])]
    trainer = make_trainer(max_epochs=MAX_EPOCHS, callbacks=callbacks, **kwargs)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    return model, snap


def test_snapshots_at_cycle_ends_and_ensemble_beats_worst_member(
    make_trainer: Callable[..., Trainer],
) -> None:
    recorder = Recorder()
    model, snap = _fit(make_trainer, callbacks=[recorder])
    assert snap.snapshot_epochs == [1, 3, 5]
    for snapshot, epoch in zip(snap.snapshots, snap.snapshot_epochs, strict=True):
        assert snapshot.keys() == model.state_dict().keys()  # BatchNorm buffers included
        for name, value in snapshot.items():
            assert value.device.type == "cpu"
            torch.testing.assert_close(value, recorder.weights[epoch][name], rtol=0, atol=0)
    # Snapshots are taken after the cycle's last (lowest-rate) step: the schedule has just
    # restarted at the peak; halfway through a cycle the cosine is at half the peak.
    assert [recorder.lrs[e] for e in snap.snapshot_epochs] == pytest.approx([0.1] * 3)
    assert [recorder.lrs[e] for e in (0, 2, 4)] == pytest.approx([0.05] * 3)
    # Snapshots are copies: the live weights moved on after the first.
    assert not torch.equal(snap.snapshots[0]["head.weight"], snap.snapshots[1]["head.weight"])

    data = DigitsDataModule(batch_size=64)
    data.setup("test")
    ensemble = snap.ensemble(model)
    member_accs = [_accuracy(m, data) for m in ensemble.members]
    result = make_trainer().test(ensemble, datamodule=data, verbose=False)[0]
    assert result["test_acc"] >= min(member_accs)
    assert result["test_acc"] > 0.85
    assert result["test_nll"] > 0
    # predict returns the averaged probabilities of the members.
    x, _ = next(iter(data.test_dataloader()))
    with torch.no_grad():
        expected = average_probabilities([m(x) for m in ensemble.members])
        torch.testing.assert_close(ensemble(x), expected)

    summary = snap.run_summary()
    assert isinstance(summary, RecipeSummary)
    assert summary.facts["snapshots"] == 3
    assert summary.facts["snapshot epochs"] == [1, 3, 5]


def test_resume_ends_with_the_same_snapshots(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    _, full = _fit(make_trainer, callbacks=[checkpoint], enable_checkpointing=True)
    # Interrupted after epoch 2 (0-based; one snapshot taken), resumed to the end.
    ckpt = tmp_path / "ckpt" / "epoch=2-step=60.ckpt"
    assert ckpt.is_file(), sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    seed_everything(0)
    model, resumed = SnapNet(), SnapshotEnsemble(cycle_epochs=CYCLE)
    trainer = make_trainer(max_epochs=MAX_EPOCHS, callbacks=[resumed])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    assert resumed.snapshot_epochs == full.snapshot_epochs == [1, 3, 5]
    for a, b in zip(resumed.snapshots, full.snapshots, strict=True):
        for name in a:
            torch.testing.assert_close(a[name], b[name])


def test_two_instances_keep_separate_state_and_setup_refuses_a_run_too_short(
    make_trainer: Callable[..., Trainer],
) -> None:
    assert SnapshotEnsemble(2).state_key != SnapshotEnsemble(3).state_key
    assert SnapshotEnsemble(2).state_key != SnapshotEnsemble(2, max_snapshots=1).state_key
    trainer = make_trainer(max_epochs=1, callbacks=[SnapshotEnsemble(cycle_epochs=2)])
    with pytest.raises(RecipeConfigError, match="max_epochs=1"):
        trainer.fit(SnapNet(), datamodule=DigitsDataModule(batch_size=64))
    with pytest.raises(RecipeConfigError, match="no snapshot"):
        SnapshotEnsemble(2).ensemble(SnapNet())


class ConstantRateNet(SnapNet):
    """The same network with a constant learning rate: no cycles to take snapshots of."""

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


@pytest.mark.parametrize("net", [ConstantRateNet, SnapNet])
def test_a_constant_learning_rate_is_warned_about_once(
    make_trainer: Callable[..., Trainer], net: type[SnapNet]
) -> None:
    snap = SnapshotEnsemble(cycle_epochs=CYCLE)
    trainer = make_trainer(max_epochs=3 * CYCLE, limit_train_batches=3, callbacks=[snap])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(net(), datamodule=DigitsDataModule(batch_size=64))
    ours = [str(w.message) for w in caught if issubclass(w.category, RecipeWarning)]
    assert snap.snapshot_epochs == [1, 3, 5]
    if net is SnapNet:  # the cyclic schedule: nothing to say
        assert ours == []
        return
    assert len(ours) == 1, ours  # once, not at every cycle
    assert "stayed at 0.1 through the whole cycle (epochs 0-1)" in ours[0]
    assert "snapshot_schedule" in ours[0]


def test_max_snapshots_keeps_the_latest() -> None:
    snap = SnapshotEnsemble(cycle_epochs=1, max_snapshots=2, skip_cycles=1)
    assert [e for e in range(5) if snap.is_cycle_end(e)] == [1, 2, 3, 4]
    model = nn.Linear(2, 2)

    class _T:
        current_epoch = 0
        world_size = 1
        is_global_zero = True

    trainer = _T()
    for epoch in range(5):
        trainer.current_epoch = epoch
        snap.on_train_epoch_end(trainer, model)  # type: ignore[arg-type]
    assert snap.snapshot_epochs == [3, 4]
    assert len(snap.snapshots) == 2
    restored = SnapshotEnsemble(cycle_epochs=1, max_snapshots=2, skip_cycles=1)
    restored.load_state_dict(snap.state_dict())
    assert restored.snapshot_epochs == [3, 4]


def test_ensemble_of_independently_trained_models_and_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    models: list[nn.Module] = [nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    ensemble = EnsembleModule(models, weights=[1.0, 1.0, 2.0])
    expected = average_probabilities([m(x) for m in models], [1.0, 1.0, 2.0])
    torch.testing.assert_close(ensemble(x), expected)
    rebuilt = EnsembleModule.from_state_dicts(nn.Linear(4, 3), [m.state_dict() for m in models])
    torch.testing.assert_close(rebuilt(x), average_probabilities([m(x) for m in models]))
    # K models saved as Lightning checkpoints (e.g. one per fold).
    paths = []
    for i in range(2):
        seed_everything(i)
        net = SnapNet()
        path = tmp_path / f"fold{i}.ckpt"
        torch.save(
            {
                "state_dict": net.state_dict(),
                "hyper_parameters": {},
                "pytorch-lightning_version": lightning.__version__,
            },
            path,
        )
        paths.append(path)
        models.append(net)
    from_ckpt = EnsembleModule.from_checkpoints(SnapNet, paths)
    assert len(from_ckpt.members) == 2
    for member, trained in zip(from_ckpt.members, models[-2:], strict=True):
        torch.testing.assert_close(member.state_dict(), trained.state_dict())


BAD_SNAPSHOT: list[tuple[dict[str, Any], str]] = [
    ({"cycle_epochs": 0}, "cycle_epochs"),
    ({"cycle_epochs": -2}, "cycle_epochs"),
    ({"cycle_epochs": True}, "cycle_epochs"),
    ({"cycle_epochs": 1.5}, "cycle_epochs"),
    ({"cycle_epochs": "3"}, "cycle_epochs"),
    ({"cycle_epochs": 2, "max_snapshots": 0}, "max_snapshots"),
    ({"cycle_epochs": 2, "max_snapshots": -1}, "max_snapshots"),
    ({"cycle_epochs": 2, "max_snapshots": True}, "max_snapshots"),
    ({"cycle_epochs": 2, "max_snapshots": 2.0}, "max_snapshots"),
    ({"cycle_epochs": 2, "skip_cycles": -1}, "skip_cycles"),
    ({"cycle_epochs": 2, "skip_cycles": 0.5}, "skip_cycles"),
    ({"cycle_epochs": 2, "skip_cycles": None}, "skip_cycles"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD_SNAPSHOT)
def test_snapshot_ensemble_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        SnapshotEnsemble(**kwargs)


def _linear() -> nn.Module:
    return nn.Linear(2, 2)


BAD_ENSEMBLE: list[tuple[Callable[[], Any], str]] = [
    (lambda: EnsembleModule([]), "members"),
    (lambda: EnsembleModule(_linear()), "members"),  # type: ignore[arg-type]
    (lambda: EnsembleModule([_linear(), "model"]), r"members\[1\]"),  # type: ignore[list-item]
    (lambda: EnsembleModule([_linear()], weights=[1.0, 1.0]), "weights"),
    (lambda: EnsembleModule([_linear()], weights=[-1.0]), "weights"),
    (lambda: EnsembleModule([_linear(), _linear()], weights=[0.0, 0.0]), "weights"),
    (lambda: EnsembleModule([_linear()], weights=[float("nan")]), "weights"),
    (lambda: EnsembleModule([_linear()], weights="1"), "weights"),  # type: ignore[arg-type]
    (lambda: EnsembleModule.from_state_dicts("net", [{}]), "template"),  # type: ignore[arg-type]
    (lambda: EnsembleModule.from_state_dicts(_linear(), []), "state_dicts"),
    (lambda: EnsembleModule.from_state_dicts(_linear(), {"w": 1}), "state_dicts"),  # type: ignore[arg-type]
    (lambda: EnsembleModule.from_state_dicts(_linear(), [3]), r"state_dicts\[0\]"),  # type: ignore[list-item]
    (
        lambda: EnsembleModule.from_state_dicts(_linear(), [nn.Linear(3, 2).state_dict()]),
        r"state_dicts\[0\]",
    ),
    (lambda: EnsembleModule.from_checkpoints(nn.Linear, ["a.ckpt"]), "module_class"),  # type: ignore[arg-type]
    (lambda: EnsembleModule.from_checkpoints(SnapNet, []), "paths"),
    (lambda: EnsembleModule.from_checkpoints(SnapNet, ["/no/such.ckpt"]), "paths"),
]


@pytest.mark.parametrize(("build", "argument"), BAD_ENSEMBLE)
def test_ensemble_module_bad_inputs(build: Callable[[], Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        build()


def _sgd(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)


BAD_FUNCTIONS: list[tuple[Callable[[], Any], str]] = [
    (lambda: average_probabilities([]), "logits_list"),
    (lambda: average_probabilities(torch.zeros(2, 3)), "logits_list"),  # type: ignore[arg-type]
    (lambda: average_probabilities([torch.zeros(2, 3), torch.zeros(2, 4)]), r"logits_list\[1\]"),
    (lambda: average_probabilities([torch.zeros(2, 3, dtype=torch.long)]), r"logits_list\[0\]"),
    (lambda: average_probabilities([torch.tensor(1.0)]), r"logits_list\[0\]"),
    (lambda: average_probabilities([torch.zeros(2, 3)], [1.0, 2.0]), "weights"),
    (lambda: snapshot_schedule("sgd", 2, interval="epoch"), "optimizer"),  # type: ignore[arg-type]
    (lambda: snapshot_schedule(_sgd(), 0, interval="epoch"), "cycle_epochs"),
    (lambda: snapshot_schedule(_sgd(), 2, eta_min=-0.1, interval="epoch"), "eta_min"),
    (lambda: snapshot_schedule(_sgd(0.01), 2, eta_min=0.1, interval="epoch"), "eta_min"),
    (lambda: snapshot_schedule(_sgd(), 2, interval="batch"), "interval"),  # type: ignore[arg-type]
    (lambda: snapshot_schedule(_sgd(), 2, interval="step"), "steps_per_epoch"),
    (lambda: snapshot_schedule(_sgd(), 2, interval="epoch", steps_per_epoch=5), "steps_per_epoch"),
]


@pytest.mark.parametrize(("call", "argument"), BAD_FUNCTIONS)
def test_function_bad_inputs(call: Callable[[], Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        call()
