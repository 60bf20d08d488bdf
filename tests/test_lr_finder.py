"""LRFinder, find_lr and the learning-rate writing helpers: behaviour, restore, resume."""

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import CSVLogger
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import LRFinder, MetricHistory, RecipeConfigError, find_lr
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.lr import LRFinderResult, all_suggestions, sweep_lrs, warmup_cosine
from lightning_recipes.lr.apply import (
    group_ratios,
    reference_lr,
    scale_learning_rate,
    set_module_lr,
)
from lightning_recipes.modules import MLP, Classifier

MakeTrainer = Callable[..., Trainer]


def digits_loader(batch_size: int = 64) -> DataLoader[Any]:
    """Digits with a shuffle drawn from the *global* torch RNG (no generator)."""
    x, y = load_digits(return_X_y=True)
    data = TensorDataset(torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y))
    return DataLoader(data, batch_size=batch_size, shuffle=True)


def dropout_classifier(lr: float = 1e-3) -> Classifier:
    return Classifier(MLP(64, [32], dropout=0.2), num_classes=10, lr=lr)


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_equal_states(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"min_lr": 1.0, "max_lr": 1.0}, "max_lr"),
        ({"min_lr": 1e-2, "max_lr": 1e-3}, "max_lr"),
        ({"min_lr": 0.0}, "min_lr"),
        ({"num_steps": 9}, "num_steps"),
        ({"num_steps": 50.0}, "num_steps"),
        ({"mode": "log"}, "mode"),
        ({"suggestion": "best"}, "suggestion"),
        ({"diverge_threshold": 1.0}, "diverge_threshold"),
        ({"milestones": [0]}, "milestones"),
        ({"milestones": [2, 2]}, "milestones"),
        ({"milestones": 5}, "milestones"),
        ({"milestones": "12"}, "milestones"),
        ({"milestones": [1.5]}, "milestones"),
        ({"num_steps": 1}, "num_steps"),
        ({"num_steps": True}, "num_steps"),
        ({"min_lr": "1e-6"}, "min_lr"),
        ({"min_lr": float("nan")}, "min_lr"),
        ({"max_lr": float("inf")}, "max_lr"),
        ({"suggestion": "nope"}, "suggestion"),
        ({"suggestion": ["minimum"]}, "suggestion"),
        ({"mode": "exp"}, "mode"),
        ({"diverge_threshold": 0.5}, "diverge_threshold"),
        ({"diverge_threshold": "4"}, "diverge_threshold"),
        ({"diverge_threshold": float("inf")}, "diverge_threshold"),
        ({"attr_names": []}, "attr_names"),
        ({"attr_names": [""]}, "attr_names"),
        ({"attr_names": 5}, "attr_names"),
        ({"attr_names": ["lr", 3]}, "attr_names"),
        ({"at_start": "yes"}, "at_start"),
        ({"update_lr": 0}, "update_lr"),
        ({"apply_at_boundary": "no"}, "apply_at_boundary"),
        ({"plot": "yes"}, "plot"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {name}="):
        LRFinder(**kwargs)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda t, m, d: find_lr(t, m, d, min_lr=0.0), "min_lr"),
        (lambda t, m, d: find_lr(t, m, d, max_lr=1e-7), "max_lr"),
        (lambda t, m, d: find_lr(t, m, d, num_steps=1), "num_steps"),
        (lambda t, m, d: find_lr(t, m, d, suggestion="nope"), "suggestion"),
        (lambda t, m, d: find_lr(t, m, d, mode="exp"), "mode"),
        (lambda t, m, d: find_lr(t, m, d, diverge_threshold=1.0), "diverge_threshold"),
        (lambda t, m, d: find_lr(t, m, d, attr_names=[]), "attr_names"),
        (lambda t, m, d: find_lr(t, m, d, milestones=[2]), "milestones"),
        (lambda t, m, d: find_lr(t, m, d, at_start=False), "at_start"),
        (lambda t, m, d: find_lr(t, m, d, num_step=30), "num_step"),
        (lambda t, m, d: find_lr(None, m, d), "trainer"),
        (lambda t, m, d: find_lr(t, nn.Linear(2, 2), d), "model"),
        (lambda t, m, d: find_lr(t, m, digits_loader()), "datamodule"),
        (lambda t, m, d: find_lr(t, m, d, train_dataloaders=digits_loader()), "train_dataloaders"),
    ],
)
def test_find_lr_refuses_bad_input_before_fitting(
    call: Callable[[Trainer, LightningModule, DigitsDataModule], Any],
    name: str,
    make_trainer: MakeTrainer,
) -> None:
    model = dropout_classifier()
    trainer = make_trainer()
    before = list(trainer.callbacks)
    with pytest.raises(RecipeConfigError, match=f"Invalid {name}="):
        call(trainer, model, DigitsDataModule(batch_size=64))
    assert trainer.callbacks == before
    assert trainer.state.fn is None  # no fit started


def test_find_lr_refuses_spawned_processes_up_front(tmp_path: Path) -> None:
    trainer = Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, default_root_dir=tmp_path
    )
    with pytest.raises(RecipeConfigError, match=r"(?s)Invalid trainer=.*LRFinder callback"):
        find_lr(trainer, dropout_classifier(), DigitsDataModule(batch_size=64))


def test_attr_names_string_is_one_name() -> None:
    assert LRFinder(attr_names="lr").attr_names == ["lr"]
    # The public writer too: "lr" is one name, not the names "l" and "r".
    net = Classifier(MLP(64, hidden=(8,)), num_classes=10, lr=0.1)
    assert set_module_lr(net, 0.02, "lr") == ["lr"]
    assert (net.lr, net.hparams["lr"]) == (0.02, 0.02)
    assert LRFinder(attr_names=("lr", "learning_rate")).attr_names == ["lr", "learning_rate"]


def test_sweep_lrs_exponential_and_linear_span_the_range() -> None:
    exp = sweep_lrs(1e-6, 1.0, 61)
    assert exp[0] == pytest.approx(1e-6)
    assert exp[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(np.log10(exp)), 0.1)
    lin = sweep_lrs(0.1, 1.0, 10, "linear")
    np.testing.assert_allclose(np.diff(lin), 0.1)


# ---------------------------------------------------------------- writing the LR


def two_group_optimizer(lrs: tuple[float, float]) -> torch.optim.Optimizer:
    a, b = nn.Linear(3, 3), nn.Linear(3, 2)
    return torch.optim.AdamW(
        [{"params": a.parameters(), "lr": lrs[0]}, {"params": b.parameters(), "lr": lrs[1]}]
    )


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(1e-6, 1.0),
    ratio=st.floats(1e-3, 1.0),
    new=st.floats(1e-6, 10.0),
)
def test_scaling_keeps_group_ratios_and_sets_the_reference_exactly(
    low: float, ratio: float, new: float
) -> None:
    optimizer = two_group_optimizer((low * ratio, low))
    before = group_ratios(optimizer)
    scale_learning_rate(optimizer, new)
    assert reference_lr(optimizer) == new  # bitwise, not approximately
    np.testing.assert_allclose(group_ratios(optimizer), before, rtol=1e-12)


def test_scaling_follows_the_scheduler_so_its_next_step_keeps_the_new_rate() -> None:
    optimizer = two_group_optimizer((1e-4, 1e-3))
    scheduler = warmup_cosine(optimizer, total_steps=100, warmup_steps=10)["scheduler"]
    assert optimizer.param_groups[1]["lr"] < 1e-3  # warm-up starts low
    scale_learning_rate(optimizer, 0.02, [scheduler])
    assert scheduler.base_lrs == pytest.approx([0.002, 0.02])
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    # At the end of warm-up the schedule reaches the new peak, ratios kept.
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.002, 0.02])


def test_scaling_a_one_cycle_schedule_moves_its_peak() -> None:
    optimizer = two_group_optimizer((1e-4, 1e-3))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[1e-4, 1e-3], total_steps=20)
    scale_learning_rate(optimizer, 0.5, [scheduler])
    peaks = []
    for _ in range(19):
        optimizer.step()
        scheduler.step()
        peaks.append(optimizer.param_groups[1]["lr"])
    assert max(peaks) == pytest.approx(0.5)


def test_scaling_refuses_an_all_zero_optimizer_and_a_bad_rate() -> None:
    with pytest.raises(ValueError, match="new_lr"):
        scale_learning_rate(two_group_optimizer((1e-3, 1e-3)), 0.0)
    with pytest.raises(ValueError, match="ratio"):
        scale_learning_rate(two_group_optimizer((0.0, 0.0)), 1e-3)


def test_set_module_lr_writes_attribute_and_hparams() -> None:
    model = Classifier(MLP(4, [4]), num_classes=2, lr=0.1)
    assert set_module_lr(model, 0.03) == ["lr"]
    assert model.lr == 0.03
    assert model.hparams["lr"] == 0.03
    assert set_module_lr(nn.Linear(2, 2), 0.03) == []


def test_short_curves_give_no_suggestion_rather_than_a_guess() -> None:
    picks = all_suggestions(np.logspace(-5, 0, 8), np.linspace(2, 1, 8))
    assert set(picks.values()) == {None}


# ---------------------------------------------------------------- in a Trainer


class Snapshot(Callback):
    """Records everything the run's future depends on, at each epoch start."""

    def __init__(self) -> None:
        self.taken: dict[int, dict[str, Any]] = {}

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.taken[trainer.current_epoch] = {
            "weights": state(pl_module),
            "optimizer": {
                (i, k): v.clone() if isinstance(v, torch.Tensor) else v
                for i, s in optimizer.state_dict()["state"].items()
                for k, v in s.items()
            },
            "groups": [dict(g) for g in optimizer.state_dict()["param_groups"]],
            "scheduler": [c.scheduler.state_dict() for c in trainer.lr_scheduler_configs],
            "loops": trainer.fit_loop.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state()[1].copy(),
            "python_rng": random.getstate(),
            "global_step": trainer.global_step,
        }


def test_the_sweep_leaves_the_run_exactly_as_it_was(make_trainer: MakeTrainer) -> None:
    """Mid-training (Adam state present, cosine schedule running), with update_lr=False."""
    seed_everything(3)
    before, after = Snapshot(), Snapshot()
    finder = LRFinder(
        num_steps=20, at_start=False, milestones=[1], update_lr=False, plot=False, verbose=False
    )
    model = Classifier(MLP(64, [32], dropout=0.2), num_classes=10, scheduler="cosine")
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=3, limit_val_batches=1, callbacks=[before, finder, after]
    )
    trainer.fit(model, train_dataloaders=digits_loader())
    assert len(finder.results) == 1
    assert finder.results[0].epoch == 1
    assert len(finder.results[0].lrs) > 10
    a, b = before.taken[1], after.taken[1]
    assert a["optimizer"]  # Adam has state by epoch 1: the test is not vacuous
    assert_equal_states(a["weights"], b["weights"])
    assert a["optimizer"].keys() == b["optimizer"].keys()
    for key, value in a["optimizer"].items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"][key])), key
    assert a["groups"] == b["groups"]
    assert a["scheduler"] == b["scheduler"]
    assert a["loops"] == b["loops"]
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert np.array_equal(a["numpy_rng"], b["numpy_rng"])
    assert a["python_rng"] == b["python_rng"]
    assert a["global_step"] == b["global_step"]


def fit_weights(make_trainer: MakeTrainer, model: Classifier, callbacks: list[Callback]) -> Any:
    trainer = make_trainer(
        max_epochs=2, limit_train_batches=5, limit_val_batches=1, callbacks=callbacks
    )
    trainer.fit(model, train_dataloaders=digits_loader())
    return state(model), trainer


def test_fit_with_the_finder_equals_fit_with_that_lr_typed_in(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    finder = LRFinder(num_steps=30, plot=False, verbose=False)
    found, trainer = fit_weights(make_trainer, dropout_classifier(), [finder])
    chosen = finder.results[0].chosen
    assert chosen is not None
    assert chosen != pytest.approx(1e-3)  # the finder changed the rate
    assert trainer.optimizers[0].param_groups[0]["lr"] == chosen
    seed_everything(0)
    by_hand, _ = fit_weights(make_trainer, dropout_classifier(lr=chosen), [])
    assert_equal_states(found, by_hand)


def test_find_lr_then_fit_equals_fit_with_that_lr_typed_in(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model = dropout_classifier()
    trainer = make_trainer(max_epochs=2, limit_train_batches=5, limit_val_batches=1)
    result = find_lr(trainer, model, train_dataloaders=digits_loader(), num_steps=30, plot=False)
    assert result.chosen is not None
    assert model.lr == result.chosen
    assert model.hparams["lr"] == result.chosen
    assert trainer.global_step == 0
    assert not any(isinstance(c, LRFinder) for c in trainer.callbacks)
    trainer.fit(model, train_dataloaders=digits_loader())
    assert trainer.global_step == 10
    seed_everything(0)
    by_hand, _ = fit_weights(make_trainer, dropout_classifier(lr=result.chosen), [])
    assert_equal_states(state(model), by_hand)


@pytest.mark.parametrize(
    "trainer_args",
    [
        {"min_epochs": 1},
        {"min_steps": 3},
        {"min_epochs": 2, "min_steps": 7},
        {"accumulate_grad_batches": 2},
        {"val_check_interval": 2},
        {"limit_train_batches": 0.2},
        {"max_time": {"minutes": 5}},
    ],
    ids=lambda args: ",".join(args),
)
def test_find_lr_then_fit_is_exact_for_any_trainer_arguments(
    make_trainer: MakeTrainer, trainer_args: dict[str, Any]
) -> None:
    """Lightning ignores should_stop until min_epochs/min_steps: no real step may run."""
    args = {"max_epochs": 2, "limit_train_batches": 5, "limit_val_batches": 1, **trainer_args}
    seed_everything(0)
    model = dropout_classifier()
    trainer = make_trainer(**args)
    result = find_lr(trainer, model, train_dataloaders=digits_loader(), num_steps=30, plot=False)
    assert result.applied
    assert result.chosen is not None
    assert trainer.global_step == 0
    assert trainer.current_epoch == 0
    trainer.fit(model, train_dataloaders=digits_loader())
    seed_everything(0)
    by_hand = make_trainer(**args)
    typed_in = dropout_classifier(lr=result.chosen)
    by_hand.fit(typed_in, train_dataloaders=digits_loader())
    assert trainer.global_step == by_hand.global_step
    assert_equal_states(state(model), state(typed_in))


def test_find_lr_leaves_the_timer_of_max_time_alone(make_trainer: MakeTrainer) -> None:
    """find_lr's truncated fit must not start or stop the Trainer's max_time clock."""
    trainer = make_trainer(max_time={"minutes": 5}, limit_train_batches=2, limit_val_batches=0)
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    model = dropout_classifier()
    find_lr(trainer, model, train_dataloaders=digits_loader(), num_steps=20, plot=False)
    assert timer.start_time() is None
    assert timer.end_time() is None
    trainer.fit(model, train_dataloaders=digits_loader())
    assert timer.time_elapsed() > 0  # from this fit's start to its end


class WithConfiguredCallbacks(Classifier):
    def configure_callbacks(self) -> list[Callback]:
        return [MetricHistory()]


def test_find_lr_restores_the_callbacks_even_when_the_module_adds_some(
    make_trainer: MakeTrainer,
) -> None:
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=0)
    before = trainer.callbacks
    model = WithConfiguredCallbacks(MLP(64, [32]), num_classes=10)
    find_lr(trainer, model, train_dataloaders=digits_loader(), num_steps=20, plot=False)
    assert trainer.callbacks is before
    assert not any(isinstance(c, LRFinder | MetricHistory) for c in trainer.callbacks)
    trainer.fit(model, train_dataloaders=digits_loader())
    assert trainer.global_step == 2


class TwoGroupModule(LightningModule):
    """A backbone at a tenth of the head's rate, with a warm-up cosine schedule."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.learning_rate = lr
        self.backbone = nn.Sequential(nn.Linear(64, 32), nn.ReLU())
        self.head = nn.Linear(32, 10)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.head(self.backbone(x)), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(
            [
                {"params": self.backbone.parameters(), "lr": self.learning_rate / 10},
                {"params": self.head.parameters(), "lr": self.learning_rate},
            ],
            momentum=0.9,
        )
        return {"optimizer": optimizer, "lr_scheduler": warmup_cosine(optimizer, 40, 5)}


def test_discriminative_rates_keep_their_ratio_through_the_schedule(
    make_trainer: MakeTrainer,
) -> None:
    seed_everything(0)
    finder = LRFinder(num_steps=30, plot=False, verbose=False)
    model = TwoGroupModule()
    trainer = make_trainer(max_epochs=1, limit_train_batches=8, callbacks=[finder])
    trainer.fit(model, train_dataloaders=digits_loader())
    chosen = finder.results[0].chosen
    assert chosen is not None
    assert finder.results[0].written_to == ["lr", "learning_rate"]  # hparam, attribute
    assert model.learning_rate == model.hparams["lr"] == chosen
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([chosen / 10, chosen])
    backbone, head = (g["lr"] for g in trainer.optimizers[0].param_groups)
    assert head > 0
    assert backbone == pytest.approx(head / 10)


class ConstantLoss(LightningModule):
    """Loss is always 3 (plus a zero term so it has a gradient); counts its steps."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(64, 1)
        self.calls = 0

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.calls += 1
        return (self.layer(batch[0]) * 0).sum() + 3.0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_with_gradient_accumulation_the_loss_is_not_divided(make_trainer: MakeTrainer) -> None:
    finder = LRFinder(num_steps=12, update_lr=False, plot=False, verbose=False)
    trainer = make_trainer(max_epochs=1, limit_train_batches=2, accumulate_grad_batches=4)
    trainer.callbacks.append(finder)
    model = ConstantLoss()
    trainer.fit(model, train_dataloaders=digits_loader(batch_size=16))
    result = finder.results[0]
    assert result.losses == [3.0] * 12  # not 3 / 4
    assert model.calls == 2  # the sweep's 12 * 4 micro-batches ran on a copy


class Regression(LightningModule):
    """Linear least squares with plain SGD: step size is proportional to the gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(8, 1)
        self.step_losses: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x).squeeze(1), y)
        self.step_losses.append(loss.item())
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


class FollowTheSweep(Callback):
    """Real training at the sweep's learning rates, one per optimizer step."""

    def __init__(self, lrs: np.ndarray) -> None:
        self.lrs = lrs

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = float(self.lrs[trainer.global_step])


def test_the_sweep_steps_exactly_as_training_does_under_accumulation(
    make_trainer: MakeTrainer,
) -> None:
    """With SGD, a sweep backpropagating the undivided loss would take steps twice too big."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=generator)
    y = x @ torch.randn(8, generator=generator) + 0.1 * torch.randn(16, generator=generator)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # 4 batches, fixed order
    finder = LRFinder(
        min_lr=1e-2, max_lr=0.3, num_steps=12, diverge_threshold=None, update_lr=False, plot=False
    )
    trainer = make_trainer(
        max_epochs=-1,
        max_steps=12,
        accumulate_grad_batches=2,
        limit_val_batches=0,
        callbacks=[finder, FollowTheSweep(finder.lrs)],
    )
    model = Regression()
    seed_everything(0)
    trainer.fit(model, train_dataloaders=loader)
    assert trainer.global_step == 12
    real = np.asarray(model.step_losses).reshape(12, 2).mean(axis=1)
    swept = finder.results[0].losses
    assert real[-1] < real[0] / 2  # it learns: the steps matter
    np.testing.assert_allclose(swept, real, rtol=1e-5)


def test_two_finders_keep_separate_checkpoint_state(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    def run(max_epochs: int, ckpt: Path | None = None) -> tuple[Trainer, LRFinder, LRFinder]:
        seed_everything(0)
        early = LRFinder(num_steps=20, milestones=[1], update_lr=False, plot=False, verbose=False)
        late = LRFinder(num_steps=20, at_start=False, milestones=[2], update_lr=False, plot=False)
        trainer = make_trainer(
            max_epochs=max_epochs,
            limit_train_batches=2,
            limit_val_batches=0,
            callbacks=[early, late],
        )
        trainer.fit(dropout_classifier(), train_dataloaders=digits_loader(), ckpt_path=ckpt)
        return trainer, early, late

    trainer, early, late = run(2)
    assert early.state_key != late.state_key
    assert [r.epoch for r in early.results] == [0, 1]
    assert late.results == []
    ckpt = tmp_path / "two.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)["callbacks"]
    assert {early.state_key, late.state_key} <= saved.keys()
    _, early_resumed, late_resumed = run(3, ckpt)
    assert early_resumed.results == early.results  # restored, not re-run
    assert [r.epoch for r in late_resumed.results] == [2]  # its own (empty) state, then run


def test_a_milestone_runs_mid_training_from_the_current_weights(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    finder = LRFinder(num_steps=20, milestones=[2], plot=False, verbose=False)
    trainer = make_trainer(max_epochs=3, limit_train_batches=10, limit_val_batches=2)
    trainer.callbacks.append(finder)
    model = dropout_classifier()
    trainer.fit(model, train_dataloaders=digits_loader())
    first, second = finder.results
    assert (first.epoch, second.epoch) == (0, 2)
    assert second.global_step == 20
    assert second.previous_lr == first.chosen
    # The trained model starts the sweep lower than the fresh one did.
    assert second.losses[0] < first.losses[0] - 0.5
    # From trained weights the loss only rises along this short sweep: 'minimum' lands at
    # its start (a tenth of ~3e-5), which is not trusted, so the found rate stays.
    assert first.applied
    assert first.boundary is None
    assert second.boundary == "low"
    assert not second.applied
    assert second.chosen is not None
    assert second.chosen < 1e-5
    assert trainer.optimizers[0].param_groups[0]["lr"] == first.chosen
    assert np.isfinite(trainer.callback_metrics["train_loss_epoch"].item())


def test_divergence_stops_the_sweep_and_the_pick_stays_below_it(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    finder = LRFinder(min_lr=1e-4, max_lr=1e4, num_steps=60, plot=False, verbose=False)
    trainer = make_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.callbacks.append(finder)
    model = Classifier(MLP(64, [32]), num_classes=10, optimizer="sgd")
    trainer.fit(model, train_dataloaders=digits_loader())
    result = finder.results[0]
    assert result.stopped_early in {"diverged", "non-finite loss"}
    assert len(result.lrs) < 60
    assert result.chosen is not None
    assert result.chosen < result.lrs[-1] / 10


def random_label_loader() -> DataLoader[Any]:
    """Digits with labels drawn at random: nothing to learn, the loss never falls."""
    x, _ = load_digits(return_X_y=True)
    y = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(0))
    data = TensorDataset(torch.tensor(x / 16.0, dtype=torch.float32), y)
    return DataLoader(data, batch_size=64, shuffle=True)


def test_no_signal_leaves_the_learning_rate_and_says_why(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    finder = LRFinder(num_steps=60, plot=False, verbose=False)
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0, callbacks=[finder])
    model = Classifier(MLP(64, [32]), num_classes=10, lr=1e-3)
    with pytest.warns(UserWarning, match="(?s)not trusted and not applied.*never fell"):
        trainer.fit(model, train_dataloaders=random_label_loader())
    result = finder.results[0]
    assert result.chosen is not None
    assert result.boundary == "low"
    assert result.boundary_reason is not None
    assert "never fell" in result.boundary_reason
    assert not result.applied
    assert result.not_applied == "pick at the low end of the sweep"
    assert model.lr == 1e-3 == trainer.optimizers[0].param_groups[0]["lr"]
    assert LRFinderResult.from_dict(result.to_dict()) == result


def test_find_lr_on_data_without_signal_keeps_the_module_lr(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model = Classifier(MLP(64, [32]), num_classes=10, lr=1e-3)
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0)
    with pytest.warns(UserWarning, match="not trusted and not applied"):
        result = find_lr(trainer, model, train_dataloaders=random_label_loader(), num_steps=60)
    assert result.boundary == "low"
    assert not result.applied
    assert model.lr == model.hparams["lr"] == 1e-3


@pytest.mark.parametrize("opt_in", [False, True])
def test_a_sweep_that_never_diverges_is_not_trusted_unless_asked(
    make_trainer: MakeTrainer, opt_in: bool
) -> None:
    seed_everything(0)
    finder = LRFinder(
        min_lr=1e-4, max_lr=1e-2, num_steps=40, apply_at_boundary=opt_in, plot=False, verbose=False
    )
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0, callbacks=[finder])
    model = Classifier(MLP(64, [32]), num_classes=10, lr=3e-3)
    message = "applied .apply_at_boundary=True." if opt_in else "not trusted and not applied"
    with pytest.warns(UserWarning, match=f"(?s){message}.*never turned up.*Raise max_lr"):
        trainer.fit(model, train_dataloaders=digits_loader())
    result = finder.results[0]
    assert result.stopped_early is None
    assert result.boundary == "high"
    assert result.chosen == pytest.approx(1e-3)  # a tenth of max_lr: the loss still fell
    assert result.applied is opt_in
    expected = result.chosen if opt_in else 3e-3
    assert model.lr == expected == trainer.optimizers[0].param_groups[0]["lr"]
    assert result.not_applied == (None if opt_in else "pick at the high end of the sweep")


def test_too_short_a_curve_keeps_the_learning_rate_and_warns(make_trainer: MakeTrainer) -> None:
    finder = LRFinder(min_lr=1e3, max_lr=1e6, num_steps=20, plot=False, verbose=False)
    trainer = make_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.callbacks.append(finder)
    model = Classifier(MLP(64, [32]), num_classes=10, optimizer="sgd", lr=0.01)
    with pytest.warns(UserWarning, match="too few for a suggestion"):
        trainer.fit(model, train_dataloaders=digits_loader())
    assert finder.results[0].chosen is None
    assert model.lr == 0.01


def test_resume_does_not_repeat_tests_and_replays_the_run(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    def run(max_epochs: int, ckpt: Path | None = None) -> tuple[Trainer, LRFinder, Classifier]:
        seed_everything(0)
        finder = LRFinder(num_steps=20, milestones=[2], plot=False, verbose=False)
        model = Classifier(MLP(64, [32]), num_classes=10)
        trainer = make_trainer(max_epochs=max_epochs, limit_train_batches=4, limit_val_batches=1)
        trainer.callbacks.append(finder)
        trainer.fit(model, DigitsDataModule(batch_size=32), ckpt_path=ckpt)
        return trainer, finder, model

    _, full_finder, full_model = run(3)
    interrupted, _, _ = run(2)
    ckpt = tmp_path / "epoch2.ckpt"
    interrupted.save_checkpoint(ckpt)
    _, resumed_finder, resumed_model = run(3, ckpt)
    assert [r.epoch for r in resumed_finder.results] == [0, 2]
    assert resumed_finder.results[0] == full_finder.results[0]  # restored, not re-run
    assert resumed_finder.results[1].chosen == full_finder.results[1].chosen
    assert_equal_states(state(resumed_model), state(full_model))


def test_result_round_trips_and_the_figure_is_saved(
    make_trainer: MakeTrainer, tmp_path: Path
) -> None:
    finder = LRFinder(num_steps=20, verbose=False)
    trainer = make_trainer(
        max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=CSVLogger(tmp_path)
    )
    trainer.callbacks.append(finder)
    trainer.fit(dropout_classifier(), train_dataloaders=digits_loader())
    result = finder.results[0]
    assert LRFinderResult.from_dict(result.to_dict()) == result
    assert set(result.suggestions) == {"valley", "steep", "minimum", "slide", "lightning_steepest"}
    assert len(result.smoothed) == len(result.losses)
    png = tmp_path / "lightning_logs" / "version_0" / "figures" / "lr_finder.png"
    assert png.stat().st_size > 10_000
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "lr_finder/lr" in metrics


class ManualModule(ConstantLoss):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False


def test_manual_optimization_is_refused_at_setup(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(callbacks=[LRFinder(plot=False)])
    with pytest.raises(RecipeConfigError, match="automatic optimization"):
        trainer.fit(ManualModule(), train_dataloaders=digits_loader())


class NoLrAttribute(ConstantLoss):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return nn.functional.mse_loss(self.layer(batch[0]).squeeze(1), batch[1].float())


def test_find_lr_warns_when_the_module_cannot_keep_the_rate(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(limit_val_batches=0)
    with pytest.warns(UserWarning, match="no 'lr' or 'learning_rate'"):
        find_lr(trainer, NoLrAttribute(), train_dataloaders=digits_loader(), num_steps=20)
