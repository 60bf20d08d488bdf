"""The registry of every lightning-recipes callback, with a small valid configuration each.

A new callback joins every generic check (resume equivalence, 2-rank DDP agreement,
LightningCLI YAML construction, deepcopy/pickle, its pairings, and the all-together runs)
by adding one `Entry` line to `REGISTRY`, which declares what the callback touches
(`CONFLICT_CLASSES`): it is paired, in both orders, with every callback that touches one
of the same things; all of them together run in both orders and with either loss style.
The checks live in ``tests/test_registry.py`` and
``tests/ddp/cases.py::registry_fits``.

The fits run on `UserNet`, a LightningModule written the way a user would write one (not
the library's `Classifier`): a ``backbone``, a ``head``, an ``lr`` attribute, dropout and
batch normalisation, metrics logged per epoch, and the most common Lightning style of
loss: ``F.cross_entropy(logits, y)`` called in ``training_step``, no loss attribute (the
loss recipes act on it unchanged). ``UserNet(functional=False)`` holds the loss as
``self.loss_fn`` instead; the checks of every callback together run on both.
"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor, nn

from lightning_recipes.data import DigitsDataModule

CONFLICT_CLASSES: dict[str, str] = {
    "loss": "edits the training loss (weights, mixes, smooths, adds a term)",
    "batch": "changes or reads the training batch before the step",
    "weights": "sets the weights (initial, restored, averaged or ensembled at the end)",
    "lr": "sets learning rates or parameter groups",
    "trainable": "changes or relies on which parameters train",
    "rng": "draws random numbers beside training (must not move training's RNG)",
    "gradients": "changes or reads the gradients",
    "forward": "hooks or runs the module's forward pass",
}
"""What a callback may touch. Two callbacks that touch the same thing are paired in the
pair test: a conflict can only arise there; a callback that touches none of these (an
observer of logged metrics) is covered by the all-together runs."""


@dataclass(frozen=True)
class Entry:
    """One callback and a small valid configuration of it.

    Attributes:
        class_path: Public import path, as a LightningCLI YAML would name it.
        touches: The `CONFLICT_CLASSES` the callback touches (required: an empty tuple
            says "none", never a forgotten declaration).
        init_args: Keyword arguments (YAML-expressible values only).
        changes_training: False for observers: a fit with the callback must end with the
            same weights as one without it (RNG, modes and gradients untouched).
        allowed_warnings: Regexes of `RecipeWarning` messages that are true statements in
            some pairing (not false alarms), with the reason in a comment at the entry.
        ddp: False for a callback that refuses distributed strategies at setup by design
            (its refusal is tested on its own): left out of the 2-rank DDP runs.
        id: Test id (defaults to the class name).
    """

    class_path: str
    touches: tuple[str, ...]
    init_args: Mapping[str, Any] = field(default_factory=dict)
    changes_training: bool = True
    allowed_warnings: tuple[str, ...] = ()
    ddp: bool = True
    id: str = ""

    @property
    def name(self) -> str:
        return self.id or self.class_path.rsplit(".", 1)[1]

    def cls(self) -> type[Callback]:
        module, name = self.class_path.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    def build(self) -> Callback:
        return self.cls()(**dict(self.init_args))


REGISTRY: list[Entry] = [
    Entry(
        "lightning_recipes.EarlyStopping",
        ("weights",),
        {"monitor": "val_loss", "patience": 1, "restore_best_weights": True},
    ),
    Entry(
        "lightning_recipes.LRFinder",
        ("lr", "trainable", "rng"),
        {"num_steps": 30, "min_lr": 1e-5, "max_lr": 10.0, "plot": False, "verbose": False},
        # With a frozen backbone (Freezer) the sweep may not diverge, and re-run at an
        # unfreeze from trained weights the loss may not fall: the finder then says so and
        # keeps the rate, which is the honest outcome, not a false alarm.
        allowed_warnings=(r"is not trusted and not applied",),
    ),
    Entry("lightning_recipes.ClassWeighting", ("loss",), {"scheme": "balanced"}),
    # Both places at once (the split form: tau in the loss, tau again at evaluation). With
    # ClassWeighting from the first step it warns that both correct for the prior: true.
    Entry(
        "lightning_recipes.LogitAdjustment",
        ("loss", "forward"),
        {"tau": 0.5, "mode": "both"},
        allowed_warnings=(r"both correct for the class prior from the first step",),
    ),
    Entry(
        "lightning_recipes.Freezer",
        ("trainable", "lr"),
        {"unfreeze": {1: 1, 2: 2}, "lr_decay": 0.5},
    ),
    Entry(
        "lightning_recipes.GradientMonitor",
        ("trainable", "gradients"),
        {"log_every_n_steps": 2, "clip": "norm", "max_norm": 1.0},
    ),
    Entry(
        "lightning_recipes.GradientMonitor",
        ("trainable", "gradients"),
        {"log_every_n_steps": 1},
        changes_training=False,
        id="GradientMonitor-observe",
    ),
    Entry(
        "lightning_recipes.BatchMixingCheck",
        ("batch",),
        {"on_mixing": "raise"},
        changes_training=False,
    ),
    # gradient_shap (the default, and the one that draws random numbers); its completeness
    # holds in expectation only, so a 4-input sample is allowed a looser gap.
    Entry(
        "lightning_recipes.attribution.Attribution",
        ("rng", "forward"),
        {"num_samples": 4, "every_n_epochs": 1, "plot": False, "max_completeness_gap": 1.0},
        changes_training=False,
    ),
    Entry("lightning_recipes.MetricHistory", (), {}, changes_training=False),
    Entry(
        "lightning_recipes.WeightPenalty",
        ("loss", "gradients"),
        {"l1": 1e-4, "l2": 1e-3, "log_every_n_steps": 2},
    ),
    Entry("lightning_recipes.WeightInit", ("weights", "rng"), {"scheme": "lsuv"}),
    Entry("lightning_recipes.MixUp", ("batch", "loss", "rng"), {"alpha": 0.4, "stop_at_epoch": 2}),
    # UserNet trains at a constant rate: "snapshots need a cyclic schedule" is a true statement.
    Entry(
        "lightning_recipes.SnapshotEnsemble",
        ("weights", "lr"),
        {"cycle_epochs": 1},
        changes_training=False,
        allowed_warnings=(r"SnapshotEnsemble\(cycle_epochs=1\): the learning rate stayed at",),
    ),
    # A delayed start: validation and checkpoints on the live weights first, then the average.
    Entry(
        "lightning_recipes.WeightAverage",
        ("weights",),
        {"kind": "ema", "decay": 0.5, "start_epoch": 1},
    ),
    Entry(
        "lightning_recipes.AdversarialTraining",
        ("batch", "loss", "rng", "forward"),
        {"eps": 0.05, "ratio": 0.5, "clip": [0.0, 1.0]},
    ),
    Entry(
        "lightning_recipes.RobustnessEvaluation",
        ("rng", "forward"),
        {"epsilons": [0.05], "steps": 2, "num_samples": 32, "plot": False},
        changes_training=False,
    ),
    Entry(
        "lightning_recipes.CutMix",
        ("batch", "loss", "rng"),
        {"alpha": 1.0, "image_shape": [1, 8, 8]},
    ),
    Entry("lightning_recipes.LabelSmoothing", ("loss",), {"smoothing": 0.1}),
    Entry(
        "lightning_recipes.ImageAugmentation",
        ("batch", "rng"),
        {"rotation": 10, "translate": 0.1, "scale": [0.9, 1.1], "image_shape": [1, 8, 8]},
    ),
    # A teacher YAML can build: a class_path, initialised under a fixed seed (the same on
    # every rank and in a resumed run); the student learns from its logits on its inputs.
    Entry(
        "lightning_recipes.Distillation",
        ("loss", "forward"),
        {
            "teacher": {
                "class_path": "torch.nn.Linear",
                "init_args": {"in_features": 64, "out_features": 10},
            },
            "temperature": 2.0,
            "alpha": 0.5,
        },
    ),
    Entry(
        "lightning_recipes.ActivationMonitor",
        ("forward",),
        {"log_every_n_steps": 2, "plot": False},
        changes_training=False,
    ),
    # The split pass (UserNet trains without accumulation) runs the module's forward and
    # draws dropout's random numbers, under preserved random states and BatchNorm buffers.
    Entry(
        "lightning_recipes.GradientNoiseScale",
        ("gradients", "forward", "rng"),
        {"every_n_steps": 2, "plot": False, "verbose": False},
        changes_training=False,
    ),
    # On the CPU only with a budget; max_val ends the search at its first trial, whatever the
    # machine (each trial of Lightning's search runs gc.collect twice: ~0.3 s in a test run).
    # Lightning's finder (and so ours) refuses distributed strategies.
    Entry(
        "lightning_recipes.BatchSizeFinder",
        ("batch", "rng"),
        {"init_val": 32, "max_val": 32, "steps_per_trial": 1, "max_memory": 0.95},
        ddp=False,
    ),
    Entry(
        "lightning_recipes.imbalance.ImbalanceReport",
        ("batch",),
        {"num_classes": 10, "plot": False},
        changes_training=False,
    ),
]


class UserNet(LightningModule):
    """A user's own classifier for 8x8 digits, flattened to 64 features."""

    def __init__(self, lr: float = 0.05, dropout: float = 0.0, functional: bool = True) -> None:
        super().__init__()
        self.lr = lr
        self.functional = functional
        self.backbone = nn.Sequential(
            nn.Linear(64, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(32, 32),
            nn.ReLU(),
        )
        self.head = nn.Linear(32, 10)
        if not functional:
            self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = (
            nn.functional.cross_entropy(logits, y) if self.functional else self.loss_fn(logits, y)
        )
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss  # type: ignore[no-any-return]

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}_loss", nn.functional.cross_entropy(logits, y), sync_dist=True)
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


FIT_ARGS: dict[str, Any] = {
    "accelerator": "cpu",
    "max_epochs": 3,
    "limit_train_batches": 3,
    "limit_val_batches": 2,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


def digits() -> DigitsDataModule:
    """Digits with two rare classes (3 and 8 at 10%), so that class weights matter."""
    return DigitsDataModule(batch_size=32, imbalance={3: 0.1, 8: 0.1})


class CrashError(Exception):
    """Raised by `CrashAt` to interrupt a run as a killed process would."""


class CrashAt(Callback):
    """Interrupt a fit at the start of ``epoch`` without running the end-of-fit hooks."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise CrashError(f"interrupted at epoch {self.epoch}")


def fit(
    callbacks: list[Callback],
    root: Path,
    *,
    ckpt_path: Path | None = None,
    crash_at: int | None = None,
    trainer_kwargs: Mapping[str, Any] | None = None,
    dropout: float = 0.0,
    functional: bool = True,
) -> tuple[Trainer, UserNet]:
    """Fit `UserNet` on digits with ``callbacks``, saving ``last.ckpt`` after every epoch.

    Lightning does not checkpoint the global RNG, so a module with dropout cannot resume
    bitwise whatever the callbacks do: resume checks use ``dropout=0``, the check that a
    callback leaves training's RNG alone uses dropout.
    """
    seed_everything(0)
    model = UserNet(dropout=dropout, functional=functional)
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", save_last=True)
    extra: list[Callback] = [checkpoint] + ([CrashAt(crash_at)] if crash_at is not None else [])
    kwargs = {**FIT_ARGS, "default_root_dir": root, **(trainer_kwargs or {})}
    trainer = Trainer(callbacks=[*callbacks, *extra], **kwargs)
    trainer.fit(model, digits(), ckpt_path=ckpt_path)
    return trainer, model


def state_of(module: nn.Module) -> dict[str, Tensor]:
    """A detached CPU copy of a module's state dict."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Assert two nested structures of tensors, numbers and containers are identical."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        assert isinstance(a, Tensor), where
        assert isinstance(b, Tensor), where
        assert a.shape == b.shape, f"{where}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        if not torch.equal(a, b):
            gap = (a.double() - b.double()).abs().max().item() if a.is_floating_point() else "-"
            raise AssertionError(f"{where}: tensors differ (max |a - b| = {gap})")
    elif isinstance(a, Mapping):
        assert isinstance(b, Mapping), where
        assert set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple), where
        assert len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and a != a:  # NaN
        assert b != b, where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
