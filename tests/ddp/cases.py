"""DDP cases, each run by every rank of a 2-process CPU job (see harness.py).

A case builds its model and data, fits with `ddp_trainer`, and ends with
`save_rank_result`, which writes this rank's payload and waits for the other ranks.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.optional import new_figure
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.finetuning import Freezer
from lightning_recipes.gradients import GradientMonitor, grad_stats
from lightning_recipes.imbalance.class_weighting import ClassWeighting
from lightning_recipes.lr import LRFinder
from lightning_recipes.lr.sweep import _sync_gradients
from lightning_recipes.modules import MLP, Classifier
from lightning_recipes.stopping import EarlyStopping

CASES: dict[str, Callable[..., None]] = {}


def case(fn: Callable[..., None]) -> Callable[..., None]:
    """Register a DDP case under its function name."""
    CASES[fn.__name__] = fn
    return fn


def ddp_trainer(out: Path, **kwargs: Any) -> Trainer:
    """A quiet 2-process CPU DDP Trainer writing under ``out``."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": int(os.environ.get("DDP_TEST_DEVICES", "2")),
        "strategy": "ddp",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "default_root_dir": out,
    }
    defaults.update(kwargs)
    return Trainer(**defaults)


def save_rank_result(trainer: Trainer, out: Path, payload: dict[str, Any]) -> None:
    """Save this rank's payload as ``rank<r>.pt``, then wait for every rank."""
    torch.save(payload, out / f"rank{trainer.global_rank}.pt")
    trainer.strategy.barrier()


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of a module's state dict."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


@case
def classifier_fit(out: Path, max_epochs: int = 2) -> None:
    """Fit the Classifier; also exercise the _core.trainer collective helpers."""
    seed_everything(0)
    data = DigitsDataModule(batch_size=32)
    model = Classifier(MLP(64, hidden=(32,), dropout=0.1), num_classes=10, lr=3e-3)
    trainer = ddp_trainer(out, max_epochs=max_epochs)
    trainer.fit(model, datamodule=data)
    rank = trainer.global_rank
    train_indices = list(iter(trainer.train_dataloader.sampler))  # type: ignore[union-attr]
    figure = new_figure("ddp test")
    figure.subplots().plot([0, 1], [rank, rank])
    # log_figure must make no collective call: calling it on rank 0 alone must not hang.
    rank_zero_path = (
        helpers.log_figure(trainer, figure, "ddp/rank_zero_only") if rank == 0 else None
    )
    save_rank_result(
        trainer,
        out,
        {
            "rank": rank,
            "world_size": trainer.world_size,
            "family": helpers.strategy_family(trainer),
            "state_dict": cpu_state(model),
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "train_indices": train_indices,
            "n_train": len(data.train_dataset or []),
            "reduce_mean": float(helpers.reduce_mean(trainer, torch.tensor(float(rank)))),
            "reduce_sum": float(helpers.reduce_sum(trainer, torch.tensor(float(rank + 1)))),
            "broadcast": helpers.broadcast(trainer, {"from": rank}),
            "agree_all_true": helpers.all_ranks_agree(trainer, True),
            "agree_rank0_only": helpers.all_ranks_agree(trainer, rank == 0),
            "figure_path": helpers.log_figure(trainer, figure, "ddp/check"),
            "rank_zero_path": rank_zero_path,
        },
    )


@case
def gradient_monitor_fit(out: Path) -> None:
    """GradientMonitor clips, logs and decides (stop on anomaly) identically on both ranks;
    the shard-aware norm math reassembles whole-tensor norms from shards."""
    seed_everything(0)
    data = DigitsDataModule(batch_size=32)
    model = Classifier(MLP(64, hidden=(32, 16)), num_classes=10, lr=3e-3)
    monitor = GradientMonitor(
        log_every_n_steps=2,
        clip="norm",
        max_norm=0.05,
        explode_threshold=1e-4,  # every group "explodes": a decision at a known step
        patience=3,
        on_anomaly="stop",
    )
    logger = CSVLogger(out, name="logs", version=0)
    trainer = ddp_trainer(out, max_epochs=3, callbacks=[monitor], logger=logger)
    trainer.fit(model, datamodule=data)
    rank = trainer.global_rank
    generator = torch.Generator().manual_seed(1)
    full = [torch.randn(10, generator=generator), torch.randn(7, 3, generator=generator)]
    shards = [t.reshape(-1).chunk(2)[rank] for t in full]
    group = torch.tensor([0, 1])
    sharded = {
        p: grad_stats(shards, p, group, 2, process_group=dist.group.WORLD)
        for p in (2.0, float("inf"))
    }
    whole = {p: grad_stats(full, p, group, 2) for p in (2.0, float("inf"))}
    save_rank_result(
        trainer,
        out,
        {
            "history": monitor.history,
            "clipped_steps": monitor.clipped_steps,
            "global_step": trainer.global_step,
            "state_dict": cpu_state(model),
            "sharded": {
                p: (s.total, s.groups, s.max_abs, s.zero_fraction) for p, s in sharded.items()
            },
            "whole": {p: (s.total, s.groups, s.max_abs, s.zero_fraction) for p, s in whole.items()},
        },
    )


class FirstBatchLoss(Callback):
    """Records this rank's loss on its first training batch, before the finder runs."""

    def __init__(self) -> None:
        self.loss = float("nan")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        x, y = trainer.strategy.batch_to_device(next(iter(trainer.train_dataloader)))
        with torch.no_grad():
            self.loss = float(torch.nn.functional.cross_entropy(pl_module(x), y))


@case
def lr_finder_fit(out: Path) -> None:
    """LRFinder at the start and at epoch 1: one curve (mean over ranks), one decision."""
    seed_everything(0)
    data = DigitsDataModule(batch_size=32)
    model = Classifier(MLP(64, hidden=(32,)), num_classes=10, lr=1e-3)
    first = FirstBatchLoss()
    finder = LRFinder(num_steps=20, milestones=[1], plot=False, verbose=False)
    trainer = ddp_trainer(out, max_epochs=2, limit_train_batches=4, callbacks=[first, finder])
    trainer.fit(model, datamodule=data)
    rank = trainer.global_rank
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    params[0].grad = torch.full((3,), float(rank + 1))  # rank 1 leaves params[1].grad None
    if rank == 0:
        params[1].grad = torch.ones(2, 2)
    _sync_gradients(trainer, params)
    save_rank_result(
        trainer,
        out,
        {
            "results": [r.to_dict() for r in finder.results],
            "first_batch_loss": first.loss,
            "optimizer_lr": trainer.optimizers[0].param_groups[0]["lr"],
            "model_lr": model.lr,
            "state_dict": cpu_state(model),
            "synced_grads": [p.grad for p in params],
        },
    )


class ShakeFrom(Callback):
    """From epoch `start` on, adds the same seeded noise to the weights on every rank."""

    def __init__(self, start: int) -> None:
        self.start = start

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch >= self.start:
            generator = torch.Generator().manual_seed(trainer.current_epoch)
            with torch.no_grad():
                for p in pl_module.parameters():
                    p.add_(torch.randn(p.shape, generator=generator) * 0.3)


class RankValue(LightningModule):
    """Logs val_loss = scripted value + rank, *without* sync_dist (each rank its own)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values
        self.layer = torch.nn.Linear(64, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.values[self.current_epoch] + self.global_rank)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


@case
def early_stopping_fit(out: Path) -> None:
    """Best weights restored identically on both ranks; unsynced metrics are averaged."""
    seed_everything(0)
    data = DigitsDataModule(batch_size=32)
    model = Classifier(MLP(64, hidden=(32,)), num_classes=10, lr=3e-3)
    stopper = EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    trainer = ddp_trainer(
        out, max_epochs=15, limit_train_batches=6, callbacks=[ShakeFrom(3), stopper]
    )
    trainer.fit(model, datamodule=data)
    recomputed = trainer.validate(model, datamodule=data, verbose=False)[0]["val_loss"]
    # Rank 1 sees values one higher: a per-rank decision would differ; the mean does not.
    unsynced = EarlyStopping("val_loss", patience=2)
    scripted = ddp_trainer(
        out, max_epochs=8, limit_train_batches=2, limit_val_batches=1, callbacks=[unsynced]
    )
    scripted.fit(RankValue([3.0, 2.0, 2.5, 1.0, 1.5, 1.6, 1.7, 1.8]), datamodule=data)
    save_rank_result(
        trainer,
        out,
        {
            "best_score": float(stopper.best_score),
            "best_epoch": stopper.best_epoch,
            "wait_count": stopper.wait_count,
            "stopped_epoch": stopper.stopped_epoch,
            "current_epoch": trainer.current_epoch,
            "restored_from": stopper.restored_from,
            "recomputed_val_loss": recomputed,
            "state_dict": cpu_state(model),
            "unsynced": (float(unsynced.best_score), unsynced.best_epoch, unsynced.stopped_epoch),
        },
    )


class HiddenLabels(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Exposes no targets attribute: ClassWeighting must count through the loader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self._x, self._y = x, y

    def __len__(self) -> int:
        return len(self._y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._x[i], self._y[i]


@case
def class_weighting_fit(out: Path) -> None:
    """Counts from the dataset (same on every rank) and from the sharded loader (summed)."""
    seed_everything(0)
    data = DigitsDataModule(batch_size=32, imbalance={0: 0.1, 1: 0.2})
    from_dataset = ClassWeighting()
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10)
    trainer = ddp_trainer(out, max_epochs=1, limit_train_batches=2, callbacks=[from_dataset])
    trainer.fit(model, datamodule=data)
    y = torch.tensor([0] * 90 + [1] * 30 + [2] * 80)  # 200 rows: even shards, no padding
    loader = torch.utils.data.DataLoader(HiddenLabels(torch.randn(200, 64), y), batch_size=16)
    from_loader = ClassWeighting(num_classes=10, zero_count="zero")
    other = Classifier(MLP(64, hidden=(16,)), num_classes=10)
    ddp_trainer(out, max_epochs=1, limit_train_batches=2, callbacks=[from_loader]).fit(
        other, train_dataloaders=loader
    )
    save_rank_result(
        trainer,
        out,
        {
            "dataset_counts": from_dataset.counts,
            "dataset_weights": model.loss_fn.weight.cpu(),
            "expected_counts": torch.bincount(data.train_dataset.targets, minlength=10).tolist(),  # type: ignore[union-attr]
            "loader_counts": from_loader.counts,
            "loader_weights": other.loss_fn.weight.cpu(),
        },
    )


@case
def freezer_fit(out: Path, rewrap: bool = True) -> None:
    """Unfreeze after DDP is built: parameters must stay identical on both ranks.

    With ``rewrap=False`` the DDP wrapper is not rebuilt (a control: Lightning's
    BackboneFinetuning behaves like this, #20340), so unfrozen parameters are never
    all-reduced and the ranks drift apart.
    """
    import lightning_recipes.finetuning.freezer as freezer_module

    if not rewrap:
        freezer_module.helpers = type(  # type: ignore[assignment]
            "NoRewrap", (), {**vars(helpers), "rewrap_ddp": staticmethod(lambda trainer: False)}
        )
    seed_everything(0)
    data = DigitsDataModule(batch_size=32)
    model = Classifier(MLP(64, hidden=(32, 16)), num_classes=10, lr=3e-3)
    freezer = Freezer(unfreeze={1: 1, 2: 2}, lr_decay=0.5)
    trainer = ddp_trainer(out, max_epochs=3, limit_train_batches=4, callbacks=[freezer])
    trainer.fit(model, datamodule=data)
    save_rank_result(
        trainer,
        out,
        {
            "state_dict": cpu_state(model),
            "unfrozen": freezer.unfrozen,
            "lrs": [g["lr"] for g in trainer.optimizers[0].param_groups],
        },
    )


@case
def attribution_fit(out: Path) -> None:
    """Only rank 0 explains and writes; the other rank waits; nobody hangs."""
    from lightning_recipes.attribution import Attribution

    seed_everything(0)
    attribution = Attribution(num_samples=8, every_n_epochs=1)
    model = Classifier(MLP(64, hidden=(16,)), num_classes=10)
    trainer = ddp_trainer(out, max_epochs=2, limit_train_batches=2, callbacks=[attribution])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    trainer.test(model, datamodule=DigitsDataModule(batch_size=32), verbose=False)
    save_rank_result(
        trainer,
        out,
        {
            "phases": sorted(attribution.results),
            "files": sorted(str(p.relative_to(out)) for p in out.rglob("attributions.pt")),
        },
    )


@case
def registry_fits(out: Path) -> None:
    """Fit the user module once per registry callback; every rank saves what it decided."""
    from tests.registry import FIT_ARGS, REGISTRY, UserNet, digits

    payload: dict[str, Any] = {}
    trainer: Trainer | None = None
    entries = [entry for entry in REGISTRY if entry.ddp]
    runs = [(entry.name, [entry]) for entry in entries] + [("all together", entries)]
    for name, entries in runs:
        seed_everything(0)
        model = UserNet()
        callbacks = [entry.build() for entry in entries]
        args = {**FIT_ARGS, "enable_checkpointing": False}
        trainer = ddp_trainer(out / name.replace(" ", "_"), callbacks=callbacks, **args)
        trainer.fit(model, datamodule=digits())
        payload[name] = {
            "weights": cpu_state(model),
            "state": [callback.state_dict() for callback in callbacks],
            "epoch": trainer.current_epoch,
        }
    assert trainer is not None
    save_rank_result(trainer, out, payload)


@case
def trial_reporter_prune(out: Path, storage: str, study_name: str, trial_id: int) -> None:
    """Report an unsynced per-rank metric to an Optuna trial that the pruner stops at epoch 2."""
    from lightning_recipes.tuning import TrialReporter

    class RankMetric(Classifier):
        def on_validation_epoch_end(self) -> None:
            super().on_validation_epoch_end()
            # Deliberately not synced: rank r logs r + epoch, so only an average is shared.
            self.log("val_rank", float(self.global_rank + self.current_epoch), sync_dist=False)

    seed_everything(0)
    reporter = TrialReporter(storage, study_name, trial_id, monitor="val_rank", result_dir=out)
    model = RankMetric(MLP(64, hidden=(16,)), num_classes=10)
    trainer = ddp_trainer(out, max_epochs=6, limit_train_batches=2, callbacks=[reporter])
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    save_rank_result(
        trainer,
        out,
        {
            "pruned_at_epoch": reporter.pruned_at_epoch,
            "current_epoch": trainer.current_epoch,
            "should_stop": trainer.should_stop,
            "values": dict(reporter.values),
            "result": reporter.result(),
        },
    )


@case
def regularization_fits(out: Path) -> None:
    """WeightPenalty + WeightInit(lsuv) + ActivationMonitor in one fit, and the same fit with
    the penalty written into the loss by hand: every rank saves weights and decisions."""
    from torch import Tensor

    from lightning_recipes.activations import ActivationMonitor
    from lightning_recipes.initialization import WeightInit
    from lightning_recipes.regularization import WeightPenalty
    from tests.registry import FIT_ARGS, UserNet, digits

    class Explicit(UserNet):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            loss = super().training_step(batch, batch_idx)
            for layer in (self.backbone[0], self.backbone[4], self.head):
                loss = loss + 1e-3 * layer.weight.abs().sum() + 1e-2 * layer.weight.pow(2).sum()
            return loss

    payload: dict[str, Any] = {}
    trainer: Trainer | None = None
    runs = (("callbacks", UserNet, True), ("explicit", Explicit, False))
    for name, model_cls, with_penalty in runs:
        seed_everything(0)
        model = model_cls()
        init = WeightInit("lsuv", seed=3)
        callbacks: list[Callback] = [init]
        if with_penalty:
            penalty = WeightPenalty(l1=1e-3, l2=1e-2, log_every_n_steps=2)
            monitor = ActivationMonitor(log_every_n_steps=2, plot=False)
            callbacks += [penalty, monitor]
        args = {**FIT_ARGS, "enable_checkpointing": False, "accumulate_grad_batches": 2}
        trainer = ddp_trainer(out / name, callbacks=callbacks, **args)
        trainer.fit(model, datamodule=digits())
        payload[name] = {
            "weights": cpu_state(model),
            "variances": dict(init.variances),
            "state": [callback.state_dict() for callback in callbacks],
        }
    assert trainer is not None
    save_rank_result(trainer, out, payload)


@case
def augmentation_fit(out: Path) -> None:
    """MixUp, CutMix, LabelSmoothing and ImageAugmentation in one 2-rank fit.

    Each rank records the inputs its training_step saw; the callbacks' resolved seed must
    agree, the draws must differ between ranks (seeded per rank), and DDP keeps the weights
    identical.
    """
    from lightning_recipes.augmentation import CutMix, ImageAugmentation, LabelSmoothing, MixUp
    from lightning_recipes.modules import SmallCNN

    class Recording(Classifier):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.seen.append(batch[0].detach().sum().reshape(1))
            return super().training_step(batch, batch_idx)

    seed_everything(0)
    model = Recording(SmallCNN(channels=(4, 8)), num_classes=10)
    model.seen = []
    callbacks: list[Callback] = [
        ImageAugmentation(rotation=15, translate=0.1, horizontal_flip=True),
        MixUp(alpha=0.4),
        CutMix(alpha=1.0, p=0.5),
        LabelSmoothing(0.1),
        ClassWeighting(),
    ]
    trainer = ddp_trainer(
        out, max_epochs=2, limit_train_batches=3, limit_val_batches=1, callbacks=callbacks
    )
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16, layout="image"))
    save_rank_result(
        trainer,
        out,
        {
            "weights": cpu_state(model),
            "states": [c.state_dict() for c in callbacks[:4]],
            "seen": torch.cat(model.seen),
            "hooks": len(model.loss_fn._forward_hooks),
            "loss_weight": model.loss_fn.weight.clone(),
        },
    )


@case
def ensembles_fits(out: Path) -> None:
    """SnapshotEnsemble (in memory and as files) with SWA on a BatchNorm model, then EMA.

    Every rank records the live weights at each epoch end, how many snapshot files it
    wrote, the snapshots it kept and the ensemble it loads back from the files, and the
    averaged weights and BatchNorm statistics WeightAverage leaves at the end.
    """
    from lightning_recipes.averaging import WeightAverage
    from lightning_recipes.ensembles import SnapshotEnsemble

    class EpochWeights(Callback):
        def __init__(self) -> None:
            self.weights: list[dict[str, torch.Tensor]] = []

        def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
            self.weights.append(cpu_state(pl_module))

    def net() -> Classifier:
        seed_everything(0)
        backbone = MLP(64, hidden=(32,), batch_norm=True)
        return Classifier(backbone, num_classes=10, lr=0.05, optimizer="sgd")

    args: dict[str, Any] = {"max_epochs": 3, "limit_train_batches": 4, "limit_val_batches": 1}
    payload: dict[str, Any] = {}
    snaps = out / "snapshots"
    in_memory = SnapshotEnsemble(cycle_epochs=1)
    on_disk = SnapshotEnsemble(cycle_epochs=1, max_snapshots=2, save_dir=str(snaps))
    swa, recorder = WeightAverage("swa", start_epoch=1), EpochWeights()
    writes: list[str] = []
    real_save = torch.save

    def counting_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        writes.append(str(f))
        real_save(obj, f, *a, **k)

    model = net()
    trainer = ddp_trainer(out / "swa", callbacks=[recorder, in_memory, on_disk, swa], **args)
    torch.save = counting_save  # type: ignore[assignment]
    try:
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    finally:
        torch.save = real_save
    ensemble = on_disk.ensemble(model)  # every rank loads rank 0's files
    payload["swa"] = {
        "weights": cpu_state(model),
        "epochs": recorder.weights,
        "bn_updated": swa.bn_updated,
        "in_memory": in_memory.snapshots,
        "in_memory_epochs": in_memory.snapshot_epochs,
        "on_disk_epochs": on_disk.snapshot_epochs,
        "loaded": [cpu_state(member) for member in ensemble.members],
        "files": sorted(p.name for p in snaps.iterdir()),
        "writes": [w for w in writes if "snapshot-epoch" in w],
    }
    model, recorder = net(), EpochWeights()
    ema = WeightAverage("ema", decay=0.9)
    trainer = ddp_trainer(out / "ema", callbacks=[recorder, ema], **args)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=32))
    payload["ema"] = {
        "weights": cpu_state(model),
        "epochs": recorder.weights,
        "bn_updated": ema.bn_updated,
    }
    save_rank_result(trainer, out, payload)


@case
def robustness_fit(out: Path) -> None:
    """AdversarialTraining on the same batches on both ranks, then RobustnessEvaluation.

    The fit feeds both ranks the same batches (no distributed sampler), so only the
    rank-seeded random starts can make their perturbations differ; DDP must still keep the
    weights identical. The test then runs on each rank's own shard: every rank saves the
    samples the evaluations attacked, to be recomputed in one process.
    """
    from lightning_recipes.robustness import AdversarialTraining, RobustnessEvaluation

    class Recording(Classifier):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            self.clean.append(batch[0].detach().clone())
            return super().training_step(batch, batch_idx)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:  # the training forward (the attack's own run in eval mode)
                self.fed.append(x.detach().clone())
            return super().forward(x)

    seed_everything(0)
    model = Recording(MLP(64, hidden=(32,)), num_classes=10, lr=2e-2)
    model.clean, model.fed = [], []
    attack = AdversarialTraining(eps=0.1, attack="fgsm", clip=[0.0, 1.0], seed=3)
    trainer = ddp_trainer(
        out / "fit", max_epochs=1, limit_train_batches=5, limit_val_batches=0,
        callbacks=[attack], use_distributed_sampler=False,
    )  # fmt: skip
    data = DigitsDataModule(batch_size=32)
    trainer.fit(model, datamodule=data)
    settings = {"epsilons": [0.05, 0.1], "steps": 3, "clip": [0.0, 1.0], "num_samples": 48}
    evaluations = [
        RobustnessEvaluation(attack="pgd", plot=False, **settings),  # type: ignore[arg-type]
        RobustnessEvaluation(attack="fgsm", plot=False, **settings),  # type: ignore[arg-type]
    ]
    tester = ddp_trainer(out / "test", callbacks=evaluations)
    tester.test(model, datamodule=data, verbose=False)
    xs, ys = [], []
    for x, y in tester.test_dataloaders:  # type: ignore[union-attr]
        xs.append(x)
        ys.append(y)
    save_rank_result(
        tester,
        out,
        {
            "weights": cpu_state(model),
            "clean": torch.stack(model.clean),
            "fed": torch.stack(model.fed),
            "batches": attack.batches,
            "hooks": len(model._forward_pre_hooks),
            "pgd": evaluations[0].results["test"],
            "fgsm": evaluations[1].results["test"],
            "x": torch.cat(xs)[:48],
            "y": torch.cat(ys)[:48],
        },
    )


@case
def gradient_noise_scale_fit(out: Path) -> None:
    """The DDP hook on a regression whose noise scale is known (89), and a classifier whose
    weights must be those of a run without the callback (the hook is the plain all-reduce)."""
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_recipes import GradientNoiseScale
    from tests.registry import FIT_ARGS, UserNet, digits
    from tests.test_gradient_noise_scale import FixedRegression, regression_loader

    noise = GradientNoiseScale(every_n_steps=1, beta=0.99, plot=False, verbose=False)
    trainer = ddp_trainer(out / "regression", max_epochs=1, callbacks=[noise])
    loader = regression_loader(32, 2 * 300, 8, 20.0)
    assert isinstance(loader.dataset, TensorDataset)
    trainer.fit(FixedRegression(torch.full((8,), 0.5)), DataLoader(loader.dataset, batch_size=32))
    payload: dict[str, Any] = {
        "estimate": noise.noise_scale,
        "measurements": noise.measurements,
        "batch_size": noise.batch_size,
        "method": noise._resolved,
        "history": noise.history,
    }
    for name, callbacks in (("without", []), ("with", [GradientNoiseScale(every_n_steps=2)])):
        seed_everything(0)
        model = UserNet()
        args = {**FIT_ARGS, "enable_checkpointing": False}
        trainer = ddp_trainer(out / name, callbacks=callbacks, **args)
        trainer.fit(model, datamodule=digits())
        payload[name] = cpu_state(model)
    save_rank_result(trainer, out, payload)


BATCH: list[tuple[str, dict[str, Any]]] = [
    ("registry_fits", {}),
    ("classifier_fit", {"max_epochs": 2}),
    ("gradient_monitor_fit", {}),
    ("lr_finder_fit", {}),
    ("early_stopping_fit", {}),
    ("class_weighting_fit", {}),
    ("freezer_fit", {}),
    ("freezer_fit", {"rewrap": False}),
    ("attribution_fit", {}),
    ("regularization_fits", {}),
    ("augmentation_fit", {}),
    ("ensembles_fits", {}),
    ("robustness_fit", {}),
    ("gradient_noise_scale_fit", {}),
]
"""The cases the DDP tests ask for, run in one launch (tests/conftest.py starts it)."""
