"""GradientMonitor in a real Trainer: logs, clips, guards, detects, survives resume."""

import math
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch import nn

from lightning_recipes import NonFiniteGradientError, RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.gradients import GradientMonitor
from lightning_recipes.modules import MLP, Classifier


class MemoryLogger(Logger):
    """Keeps every log_metrics call."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.records.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def grad_records(self) -> dict[int, dict[str, float]]:
        return {s: m for s, m in self.records if s is not None and "grad/norm_total" in m}


class Probe(Classifier):
    """A Classifier that records the naive gradient norm the optimizer receives, and can
    put a NaN into one parameter's gradient at a chosen step."""

    def __init__(
        self, *args: Any, nan_at: int | None = None, nan_param: str = "head.bias", **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.nan_at = nan_at
        self.nan_param = nan_param
        self.seen_norms: dict[int, float] = {}
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def configure_optimizers(self) -> Any:
        # Plain SGD: a zero gradient moves nothing (momentum would keep moving the weights).
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def on_after_backward(self) -> None:
        if self.global_step == self.nan_at:
            dict(self.named_parameters())[self.nan_param].grad[0] = math.nan  # type: ignore[index]

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Module hooks run after callback hooks: this sees what the optimizer will see.
        grads = [p.grad.reshape(-1) for p in self.parameters() if p.grad is not None]
        self.seen_norms[self.global_step] = float(torch.cat(grads).double().norm())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.weights[self.global_step] = {k: v.clone() for k, v in self.state_dict().items()}


def _probe(**kw: Any) -> Probe:
    seed_everything(0)
    return Probe(MLP(64, hidden=(32, 16)), num_classes=10, lr=0.1, optimizer="sgd", **kw)


def _fit(
    make_trainer: Callable[..., Trainer],
    model: LightningModule,
    monitor: GradientMonitor,
    **kw: Any,
) -> Trainer:
    trainer = make_trainer(callbacks=[monitor, *kw.pop("callbacks", [])], **kw)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    return trainer


def test_logs_pre_clip_norms_at_the_logging_cadence(make_trainer: Callable[..., Trainer]) -> None:
    logger = MemoryLogger()
    model = _probe()
    monitor = GradientMonitor(groups="module", log_every_n_steps=4, plot=False)
    _fit(make_trainer, model, monitor, logger=logger, limit_train_batches=10, limit_val_batches=0)
    records = logger.grad_records()
    assert sorted(records) == [0, 4, 8]
    for step, metrics in records.items():
        assert metrics["grad/norm_total"] == pytest.approx(model.seen_norms[step], rel=1e-5)
        groups = math.hypot(metrics["grad/norm/backbone"], metrics["grad/norm/head"])
        assert groups == pytest.approx(metrics["grad/norm_total"], rel=1e-5)
        assert 0 < metrics["grad/max_abs"] <= metrics["grad/norm_total"]
        assert 0 <= metrics["grad/zero_fraction"] < 1
    assert [s for s, _ in monitor.history] == [0, 4, 8]
    # Every optimizer step is seen, not only the logged ones.
    facts = monitor.run_summary().facts
    assert (facts["optimizer steps seen"], facts["logged steps"]) == (10, 3)


@contextmanager
def _count_host_reads(path_part: str) -> Iterator[list[str]]:
    """Count tensor->host conversions made from source files whose path contains path_part."""
    calls: list[str] = []
    names = ("item", "tolist", "__bool__", "__float__", "__int__")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def wrap(name: str) -> Any:
        original = originals[name]

        def counted(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if path_part in caller:
                calls.append(name)
            return original(self, *args, **kwargs)

        return counted

    for name in names:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


class _ReadsPerStep(Callback):
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.per_step: dict[int, int] = {}
        self._start = 0

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = len(self.calls)

    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
        self.per_step[trainer.global_step - 1] = len(self.calls) - self._start


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"non_finite": "skip"},
        {"non_finite": "stop"},
        {"clip": "norm", "max_norm": 0.5},
        {"clip": "value", "max_norm": 0.5},
        {"clip": "agc", "max_norm": 0.01},
    ],
)
def test_no_host_reads_on_non_logging_steps(
    make_trainer: Callable[..., Trainer], options: dict[str, Any]
) -> None:
    with _count_host_reads("lightning_recipes/gradients") as calls:
        reads = _ReadsPerStep(calls)
        monitor = GradientMonitor(log_every_n_steps=5, plot=False, **options)
        _fit(
            make_trainer,
            _probe(),
            monitor,
            callbacks=[reads],
            logger=MemoryLogger(),
            limit_train_batches=12,
            limit_val_batches=0,
        )
    assert reads.per_step[0] > 0
    assert reads.per_step[5] > 0
    assert all(n == 0 for step, n in reads.per_step.items() if step % 5), reads.per_step


@pytest.mark.parametrize(("clip", "max_norm"), [("norm", 0.01), ("value", 0.001), ("agc", 1e-4)])
def test_clipping_caps_what_the_optimizer_sees(
    make_trainer: Callable[..., Trainer], clip: str, max_norm: float
) -> None:
    logger = MemoryLogger()
    model = _probe()
    monitor = GradientMonitor(clip=clip, max_norm=max_norm, log_every_n_steps=1, plot=False)  # type: ignore[arg-type]
    _fit(make_trainer, model, monitor, logger=logger, limit_train_batches=8, limit_val_batches=0)
    logged = logger.grad_records()
    assert monitor.clipped_steps == 8
    assert logged[7]["grad/clip_fraction"] == 1.0
    for step, seen in model.seen_norms.items():
        assert seen < logged[step]["grad/norm_total"]  # logged pre-clip, optimizer got less
        if clip == "norm":
            assert seen == pytest.approx(max_norm, rel=1e-4)


def test_trainer_clipping_still_logs_pre_clip_norm(make_trainer: Callable[..., Trainer]) -> None:
    logger = MemoryLogger()
    model = _probe()
    monitor = GradientMonitor(log_every_n_steps=1, plot=False)
    _fit(
        make_trainer,
        model,
        monitor,
        logger=logger,
        limit_train_batches=4,
        limit_val_batches=0,
        gradient_clip_val=0.1,
    )
    assert all(m["grad/norm_total"] > 0.1 for m in logger.grad_records().values())
    with pytest.raises(RecipeConfigError, match=r"Invalid clip=.norm.*gradient_clip_val=0\.1"):
        _fit(
            make_trainer,
            _probe(),
            GradientMonitor(clip="norm", max_norm=1.0),
            gradient_clip_val=0.1,
        )


def test_skip_zeroes_a_nan_step_and_training_continues(
    make_trainer: Callable[..., Trainer],
) -> None:
    logger = MemoryLogger()
    model = _probe(nan_at=3)
    monitor = GradientMonitor(non_finite="skip", log_every_n_steps=5, plot=False)
    with pytest.warns(
        UserWarning,
        match=r"parameter 'head.bias' at global step 3; that step's gradients were zeroed",
    ):
        _fit(
            make_trainer, model, monitor, logger=logger, limit_train_batches=10, limit_val_batches=0
        )
    before, after = model.weights[3], model.weights[4]  # after step 3 (global_step 3 -> 4)
    for name in before:
        assert torch.equal(before[name], after[name]), f"{name} changed on the skipped step"
    assert not torch.equal(model.weights[5]["head.bias"], after["head.bias"])  # continues
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert monitor.skipped_steps == 1
    assert monitor.first_bad == (3, "head.bias")
    assert logger.grad_records()[5]["grad/skipped_steps"] == 1.0


def test_raise_names_the_parameter_and_step(make_trainer: Callable[..., Trainer]) -> None:
    model = _probe(nan_at=2, nan_param="backbone.2.weight")
    monitor = GradientMonitor(non_finite="raise", plot=False)
    with pytest.raises(NonFiniteGradientError, match=r"'backbone.2.weight' at global step 2"):
        _fit(make_trainer, model, monitor, limit_train_batches=10, limit_val_batches=0)
    assert 2 not in model.weights or torch.isfinite(model.weights[2]["backbone.2.weight"]).all()


def test_stop_ends_training_at_the_next_logging_step(make_trainer: Callable[..., Trainer]) -> None:
    model = _probe(nan_at=1)
    monitor = GradientMonitor(non_finite="stop", log_every_n_steps=3, plot=False)
    with pytest.warns(UserWarning, match="training stops"):
        trainer = _fit(make_trainer, model, monitor, max_epochs=3, limit_val_batches=0)
    assert trainer.global_step == 4  # stopped after logging step 3
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_warn_lets_nan_through(make_trainer: Callable[..., Trainer]) -> None:
    model = _probe(nan_at=1)
    with pytest.warns(UserWarning, match="they reached the weights"):
        _fit(
            make_trainer,
            model,
            GradientMonitor(non_finite="warn", log_every_n_steps=2, plot=False),
            limit_train_batches=4,
            limit_val_batches=0,
        )
    assert not torch.isfinite(model.head.bias).all()


def _deep(activation: str, layer_norm: bool) -> Classifier:
    seed_everything(0)
    layers: list[nn.Module] = []
    for module in MLP(64, hidden=(32,) * 30, activation=activation):  # type: ignore[arg-type]
        layers.append(module)
        if layer_norm and isinstance(module, nn.Linear):
            layers.append(nn.LayerNorm(module.out_features))
    return Classifier(nn.Sequential(*layers), num_classes=10, in_features=32, lr=1e-3)


def _anomaly_warnings(
    make_trainer: Callable[..., Trainer], model: LightningModule, **kw: Any
) -> tuple[list[str], Trainer]:
    monitor = GradientMonitor(log_every_n_steps=2, plot=False, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = _fit(make_trainer, model, monitor, limit_train_batches=12, limit_val_batches=0)
    return [str(w.message) for w in caught if "GradientMonitor" in str(w.message)], trainer


def test_deep_sigmoid_mlp_warns_vanishing_and_relu_layernorm_does_not(
    make_trainer: Callable[..., Trainer],
) -> None:
    sigmoid, _ = _anomaly_warnings(make_trainer, _deep("sigmoid", False))
    assert len(sigmoid) == 1
    assert "vanishing gradients" in sigmoid[0]
    assert "backbone.0: vanishing" in sigmoid[0]
    assert "ReLU/GELU instead of sigmoid" in sigmoid[0]
    relu, _ = _anomaly_warnings(make_trainer, _deep("relu", True))
    assert relu == []


def test_on_anomaly_stop(make_trainer: Callable[..., Trainer]) -> None:
    messages, trainer = _anomaly_warnings(make_trainer, _deep("sigmoid", False), on_anomaly="stop")
    assert "Stopping training" in messages[0]
    assert trainer.global_step == 5  # patience 3 at logging steps 0, 2, 4


def test_figure_is_saved_under_the_log_dir(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="run", version=0)
    _fit(
        make_trainer,
        _probe(),
        GradientMonitor(log_every_n_steps=2),
        logger=logger,
        limit_train_batches=6,
        limit_val_batches=0,
    )
    figure = Path(logger.log_dir) / "figures" / "gradients" / "norms.png"
    assert figure.read_bytes().startswith(b"\x89PNG")


def test_resume_keeps_counters_and_anomaly_state(
    tmp_path: Path, make_trainer: Callable[..., Trainer]
) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    first = GradientMonitor(
        log_every_n_steps=2, non_finite="skip", clip="norm", max_norm=0.5, plot=False
    )
    _fit(
        make_trainer,
        _probe(nan_at=1),
        first,
        callbacks=[checkpoint],
        enable_checkpointing=True,
        max_epochs=1,
        limit_train_batches=6,
        limit_val_batches=0,
    )
    resumed = GradientMonitor(
        log_every_n_steps=2, non_finite="skip", clip="norm", max_norm=0.5, plot=False
    )
    trainer = make_trainer(
        callbacks=[resumed], max_epochs=2, limit_train_batches=6, limit_val_batches=0
    )
    trainer.fit(
        _probe(), datamodule=DigitsDataModule(batch_size=64), ckpt_path=checkpoint.last_model_path
    )
    assert resumed.skipped_steps == 1
    assert resumed.first_bad == (1, "head.bias")
    assert resumed.nonfinite_reported  # not warned again after resume
    assert resumed.steps == 12
    assert resumed.clipped_steps >= first.clipped_steps
    assert [s for s, _ in resumed.history] == [0, 2, 4, 6, 8, 10]
    assert resumed.tracker.history.keys() == first.tracker.history.keys()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"clip": "norm", "max_norm": -1.0}, "max_norm"),
        ({"clip": "norm"}, "max_norm"),
        ({"max_norm": 1.0}, "max_norm"),
        ({"clip": "l1", "max_norm": 1.0}, "clip"),
        ({"groups": "block"}, "groups"),
        ({"norm_type": 0.0}, "norm_type"),
        ({"log_every_n_steps": 0}, "log_every_n_steps"),
        ({"vanish_threshold": -1e-3}, "vanish_threshold"),
        ({"threshold_mode": "ratio"}, "threshold_mode"),
        ({"patience": 0}, "patience"),
        ({"on_anomaly": "raise"}, "on_anomaly"),
        ({"non_finite": "ignore"}, "non_finite"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        GradientMonitor(**kwargs)


def test_deepspeed_is_refused_at_setup() -> None:
    from unittest.mock import MagicMock

    from lightning.pytorch.strategies import DeepSpeedStrategy

    trainer = MagicMock(spec=Trainer)
    trainer.strategy = MagicMock(spec=DeepSpeedStrategy)
    with pytest.raises(
        RecipeConfigError, match=r"GradientMonitor does not support strategy.*deepspeed"
    ):
        GradientMonitor().setup(trainer, MagicMock(), "fit")


class _LateLayers(Classifier):
    """Builds its backbone in configure_model, Lightning's pattern for FSDP/large models."""

    def __init__(self) -> None:
        super().__init__(nn.Identity(), num_classes=10, in_features=64, lr=0.1, optimizer="sgd")

    def configure_model(self) -> None:
        if isinstance(self.backbone, nn.Identity):
            self.backbone = MLP(64, hidden=(64,))


def test_parameters_built_in_configure_model_are_monitored_and_clipped(
    make_trainer: Callable[..., Trainer],
) -> None:
    seed_everything(0)
    monitor = GradientMonitor(clip="norm", max_norm=1e-3, log_every_n_steps=1, plot=False)
    _fit(make_trainer, _LateLayers(), monitor, limit_train_batches=3, limit_val_batches=0)
    assert monitor.clipped_steps == 3
    assert "backbone.0" in monitor.history[0][1]


class _GAN(LightningModule):
    """Lightning's GAN pattern: manual optimization, one optimizer per network. The
    generator's loss back-propagates through the discriminator too, so at the generator's
    step the discriminator holds (stale) gradients that its own optimizer will zero."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
        self.discriminator = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
        self.post_clip: list[float] = []  # norm of the stepping optimizer's gradients

    def training_step(self, batch: Any, batch_idx: int) -> None:
        (real,) = batch
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        fake = self.generator(torch.randn(len(real), 4))
        g_loss = nn.functional.softplus(-self.discriminator(fake)).mean()
        opt_g.zero_grad()
        self.manual_backward(g_loss)
        opt_g.step()
        d_loss = (
            nn.functional.softplus(-self.discriminator(real)).mean()
            + nn.functional.softplus(self.discriminator(fake.detach())).mean()
        )
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        opt_d.step()

    def configure_optimizers(self) -> Any:
        return (
            torch.optim.SGD(self.generator.parameters(), lr=0.01),
            torch.optim.SGD(self.discriminator.parameters(), lr=0.01),
        )

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Module hooks run after callback hooks: what this optimizer will apply.
        self.post_clip.append(_norm_of(optimizer))


def _norm_of(optimizer: Any) -> float:
    grads = [
        p.grad.reshape(-1)
        for group in optimizer.param_groups
        for p in group["params"]
        if p.grad is not None
    ]
    return float(torch.cat(grads).double().norm())


class _PreClip(Callback):
    """Placed before the monitor: the norm of the stepping optimizer's own gradients."""

    def __init__(self) -> None:
        self.norms: list[tuple[int, float]] = []

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: Any, optimizer: Any) -> None:
        self.norms.append((trainer.global_step, _norm_of(optimizer)))


def _gan_fit(make_trainer: Callable[..., Trainer], monitor: GradientMonitor) -> tuple[Any, ...]:
    seed_everything(0)
    model, pre, logger = _GAN(), _PreClip(), MemoryLogger()
    data = torch.utils.data.TensorDataset(torch.randn(48, 8) + 2.0)
    trainer = make_trainer(callbacks=[pre, monitor], logger=logger, limit_train_batches=3)
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=16))
    return model, pre, logger


def test_two_optimizers_norms_and_clipping_cover_the_stepping_optimizer_only(
    make_trainer: Callable[..., Trainer],
) -> None:
    max_norm = 1e-4  # below every pre-clip norm: every step is clipped to exactly this
    monitor = GradientMonitor(
        groups="module", clip="norm", max_norm=max_norm, log_every_n_steps=1, plot=False
    )
    model, pre, logger = _gan_fit(make_trainer, monitor)
    assert len(model.post_clip) == 6  # 3 batches x (generator, discriminator)
    assert all(norm > max_norm for _, norm in pre.norms)
    # Clipped to max_norm, not below it: the other network's stale gradients do not count.
    assert model.post_clip == pytest.approx([max_norm] * 6, rel=1e-4)
    logged = {s: m for s, m in logger.records if s is not None}
    for step, norm in pre.norms:  # the logged pre-clip norm is the stepping network's
        name = f"grad/optimizer_{step % 2}/norm_total"
        assert logged[step][name] == pytest.approx(norm, rel=1e-5)
        assert set(monitor.history[step][1]) == {
            f"total/optimizer_{step % 2}",
            "generator" if step % 2 == 0 else "discriminator",
        }
    assert monitor.clipped_steps == 6


def test_two_optimizers_are_both_logged_whatever_the_period(
    make_trainer: Callable[..., Trainer],
) -> None:
    # Each optimizer step is a global step: with an even period, a step-modulo rule would
    # log the generator only.
    monitor = GradientMonitor(groups="module", log_every_n_steps=2, plot=False)
    _gan_fit(make_trainer, monitor)
    assert [(s, sorted(v)) for s, v in monitor.history] == [
        (0, ["generator", "total/optimizer_0"]),
        (1, ["discriminator", "total/optimizer_1"]),
        (2, ["generator", "total/optimizer_0"]),
        (3, ["discriminator", "total/optimizer_1"]),
        (4, ["generator", "total/optimizer_0"]),
        (5, ["discriminator", "total/optimizer_1"]),
    ]


class _FrozenBackbone(Probe):
    """A classifier whose backbone is frozen (and holds a stale gradient from before it was
    frozen), with a module that forward never uses."""

    def __init__(self) -> None:
        super().__init__(MLP(64, hidden=(32, 16)), num_classes=10, lr=0.1, optimizer="sgd")
        self.unused = nn.Linear(3, 3)
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def on_train_start(self) -> None:
        for p in self.backbone.parameters():  # stale: must not be counted, nor clipped
            p.grad = torch.ones_like(p)

    def configure_optimizers(self) -> Any:
        # The usual pattern: only what trains; the frozen gradients are never zeroed.
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def test_frozen_and_gradient_free_groups_are_not_vanishing(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    seed_everything(0)
    model = _FrozenBackbone()
    monitor = GradientMonitor(
        groups="module", log_every_n_steps=1, patience=1, clip="norm", max_norm=1e-3
    )
    logger = MemoryLogger()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(make_trainer, model, monitor, logger=logger, limit_train_batches=4,
             limit_val_batches=0)  # fmt: skip
    assert not [w for w in caught if "vanishing" in str(w.message)]
    assert monitor.frozen_groups == {"backbone"}
    assert monitor.absent_groups == {"unused": 4}
    assert all(set(values) == {"total", "head"} for _, values in monitor.history)
    for metrics in logger.grad_records().values():
        assert "grad/norm/backbone" not in metrics
        # The stale backbone gradient is neither counted nor clipped.
        assert metrics["grad/norm_total"] == pytest.approx(metrics["grad/norm/head"])
    assert all(bool((p.grad == 1).all()) for p in model.backbone.parameters())


def test_two_monitors_keep_separate_checkpoint_state(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    every1 = GradientMonitor(log_every_n_steps=1, plot=False)
    every3 = GradientMonitor(log_every_n_steps=3, plot=False)
    assert every1.state_key != every3.state_key
    assert GradientMonitor(vanish_threshold=1e-6).state_key != GradientMonitor().state_key
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    _fit(make_trainer, _probe(), every1, callbacks=[every3, checkpoint],
         enable_checkpointing=True, limit_train_batches=6, limit_val_batches=0)  # fmt: skip
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)["callbacks"]
    assert len(saved[every1.state_key]["history"]) == 6
    assert len(saved[every3.state_key]["history"]) == 2
    resumed1 = GradientMonitor(log_every_n_steps=1, plot=False)
    resumed3 = GradientMonitor(log_every_n_steps=3, plot=False)
    trainer = make_trainer(callbacks=[resumed1, resumed3], max_epochs=1, limit_train_batches=6,
                           limit_val_batches=0)  # fmt: skip
    trainer.fit(_probe(), datamodule=DigitsDataModule(batch_size=64),
                ckpt_path=tmp_path / "ckpt" / "last.ckpt")  # fmt: skip
    assert [s for s, _ in resumed1.history] == list(range(6))
    assert [s for s, _ in resumed3.history] == [0, 3]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"norm_type": "2"}, "norm_type"),
        ({"norm_type": -2.0}, "norm_type"),
        ({"log_every_n_steps": 2.5}, "log_every_n_steps"),
        ({"log_every_n_steps": True}, "log_every_n_steps"),
        ({"groups": {}}, "groups"),
        ({"groups": {"head": "head.*"}}, "groups"),
        ({"groups": {"head": []}}, "groups"),
        ({"groups": ["head.*"]}, "groups"),
        ({"groups": 3}, "groups"),
        ({"clip": "nrm", "max_norm": 1.0}, "clip"),
        ({"clip": "norm", "max_norm": "1"}, "max_norm"),
        ({"clip": "norm", "max_norm": math.inf}, "max_norm"),
        ({"explode_threshold": -5.0}, "explode_threshold"),
        ({"vanish_threshold": math.nan}, "vanish_threshold"),
        ({"vanish_threshold": 10.0, "explode_threshold": 1.0}, "vanish_threshold"),
        ({"patience": 1.5}, "patience"),
        ({"plot": "yes"}, "plot"),
    ],
)
def test_more_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        GradientMonitor(**kwargs)
