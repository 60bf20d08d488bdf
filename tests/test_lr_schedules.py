"""LR schedules: formulas, and that a Trainer steps them at the right interval."""

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st
from lightning.pytorch import Callback, Trainer

from lightning_recipes import LRFinder, RecipeConfigError
from lightning_recipes.cli import RecipesCLI
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.history import MetricHistory
from lightning_recipes.lr import (
    exponential_decay,
    one_cycle,
    step_decay,
    warmup_cosine,
    warmup_cosine_factor,
    warmup_linear,
    warmup_linear_factor,
)
from lightning_recipes.modules import MLP, Classifier


@given(total=st.integers(2, 500), warm_share=st.floats(0, 0.9), final=st.floats(0, 1))
def test_warmup_factors_shape(total: int, warm_share: float, final: float) -> None:
    warm = int(warm_share * (total - 1))
    for factor in (warmup_cosine_factor, warmup_linear_factor):
        values = [factor(s, total, warm, final) for s in range(total + 1)]
        rising, falling = values[: warm + 1], values[warm:]
        assert all(a < b for a, b in itertools.pairwise(rising))
        assert all(a >= b - 1e-12 for a, b in itertools.pairwise(falling))
        assert values[warm] == pytest.approx(1.0)
        assert values[-1] == pytest.approx(final)


def _optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    return torch.optim.SGD(
        [{"params": params[:1], "lr": lr}, {"params": params[1:], "lr": lr / 10}]
    )


def _lrs(config: Any, steps: int) -> list[list[float]]:
    scheduler = config["scheduler"]
    out = []
    for _ in range(steps):
        out.append([g["lr"] for g in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_schedules_follow_their_formulas_and_keep_group_ratios() -> None:
    cosine = _lrs(warmup_cosine(_optimizer(), total_steps=20, warmup_steps=4), 21)
    for step, (lr, lr_small) in enumerate(cosine):
        assert lr == pytest.approx(0.1 * warmup_cosine_factor(step, 20, 4))
        assert lr_small == pytest.approx(lr / 10)  # discriminative LRs survive
    linear = _lrs(warmup_linear(_optimizer(), total_steps=10, warmup_steps=0, final_factor=0.5), 11)
    assert linear[10][0] == pytest.approx(0.05)
    cycle = _lrs(one_cycle(_optimizer(), total_steps=40), 40)
    peak = max(range(40), key=lambda s: cycle[s][0])
    assert cycle[peak][0] == pytest.approx(0.1)
    assert cycle[peak][1] == pytest.approx(0.01)
    assert peak == 9  # 25% of 40 steps, 0-based
    assert _lrs(step_decay(_optimizer(), every_epochs=2, factor=0.5), 5)[4][0] == pytest.approx(
        0.025
    )
    assert _lrs(exponential_decay(_optimizer(), factor=0.9), 3)[2][0] == pytest.approx(0.081)


class _Scheduled(Classifier):
    def __init__(self, make: Callable[[torch.optim.Optimizer, Trainer], Any]) -> None:
        super().__init__(MLP(64, hidden=(8,)), num_classes=10, lr=0.1, optimizer="sgd")
        self.make = make

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr)
        return {"optimizer": optimizer, "lr_scheduler": self.make(optimizer, self.trainer)}


def test_trainer_steps_per_step_and_per_epoch_schedules(
    make_trainer: Callable[..., Trainer],
) -> None:
    data = DigitsDataModule(batch_size=256)  # 5 batches per epoch
    history = MetricHistory()
    model = _Scheduled(lambda opt, tr: warmup_cosine(opt, int(tr.estimated_stepping_batches), 2))
    make_trainer(max_epochs=2, callbacks=[history], limit_val_batches=0).fit(model, data)
    assert history.records[0]["lr"] == pytest.approx(0.1 * warmup_cosine_factor(5, 10, 2))
    assert history.records[1]["lr"] == pytest.approx(0.0, abs=1e-12)  # stepped per batch
    history = MetricHistory()
    model = _Scheduled(lambda opt, tr: step_decay(opt, every_epochs=1, factor=0.5))
    make_trainer(max_epochs=2, callbacks=[history], limit_val_batches=0).fit(model, data)
    # Recorded at epoch end, after Lightning stepped the per-epoch scheduler.
    assert [r["lr"] for r in history.records] == pytest.approx([0.05, 0.025])


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda o: warmup_cosine(o, 0), "total_steps"),
        (lambda o: warmup_cosine(o, 10, warmup_steps=10), "warmup_steps"),
        (lambda o: warmup_linear(o, 10, final_factor=1.5), "final_factor"),
        (lambda o: one_cycle(o, 10, pct_start=1.0), "pct_start"),
        (lambda o: step_decay(o, every_epochs=0), "every_epochs"),
        (lambda o: step_decay(o, every_epochs=1, factor=1.0), "factor"),
        (lambda o: exponential_decay(o, factor=0.0), "factor"),
        (lambda o: warmup_cosine(o, 10.5), "total_steps"),
        (lambda o: warmup_cosine(o, True), "total_steps"),
        (lambda o: warmup_linear(o, 10, warmup_steps=-1), "warmup_steps"),
        (lambda o: warmup_linear(o, 10, warmup_steps=2.5), "warmup_steps"),
        (lambda o: warmup_cosine(o, 10, final_factor="0.1"), "final_factor"),
        (lambda o: warmup_cosine(o, 10, final_factor=float("nan")), "final_factor"),
        (lambda o: one_cycle(o, 10, pct_start=0.0), "pct_start"),
        (lambda o: one_cycle(o, 10, pct_start="0.3"), "pct_start"),
        (lambda o: one_cycle(o, 0), "total_steps"),
        (lambda o: step_decay(o, every_epochs=1.5), "every_epochs"),
        (lambda o: step_decay(o, every_epochs=2, factor="0.5"), "factor"),
        (lambda o: exponential_decay(o, factor=1.0), "factor"),
        (lambda o: exponential_decay(o, factor=True), "factor"),
        (lambda o: warmup_cosine(torch.nn.Linear(2, 2), 10), "optimizer"),
        (lambda o: step_decay(torch.nn.Linear(2, 2), 1), "optimizer"),
    ],
)
def test_bad_arguments(build: Callable[[torch.optim.Optimizer], Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        build(_optimizer())


@pytest.mark.parametrize(
    ("name", "options", "first_interval"),
    [
        ("warmup_cosine", {"warmup_steps": 4}, "step"),
        ("warmup_linear", {}, "step"),
        ("step_decay", {"every_epochs": 1, "factor": 0.5}, "epoch"),
        ("exponential_decay", {"factor": 0.9}, "epoch"),
    ],
)
def test_classifier_builds_the_schedule_helpers_by_name(
    make_trainer: Callable[..., Trainer], name: str, options: dict[str, Any], first_interval: str
) -> None:
    model = Classifier(MLP(64, [16]), num_classes=10, scheduler=name, scheduler_options=options)
    trainer = make_trainer(max_epochs=2, limit_train_batches=5, limit_val_batches=0)
    trainer.fit(model, DigitsDataModule(batch_size=32))
    config = trainer.lr_scheduler_configs[0]
    assert config.interval == first_interval
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert 0 <= lr < 1e-3  # the schedule ran and moved the rate below the peak


def test_scheduler_options_are_checked_at_construction() -> None:
    with pytest.raises(RecipeConfigError, match=r"scheduler_options.*takes no options"):
        Classifier(MLP(4, [4]), num_classes=2, scheduler="cosine", scheduler_options={"x": 1})
    with pytest.raises(RecipeConfigError, match="accepts warmup_steps, final_factor"):
        Classifier(
            MLP(4, [4]), num_classes=2, scheduler="warmup_cosine", scheduler_options={"warm": 1}
        )


def test_finder_and_schedule_from_lightning_cli_yaml(tmp_path: Path) -> None:
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 1,
            "limit_train_batches": 4,
            "limit_val_batches": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path),
            "callbacks": [
                {
                    "class_path": "lightning_recipes.LRFinder",
                    "init_args": {"num_steps": 20, "plot": False},
                }
            ],
        },
        "model": {
            "class_path": "lightning_recipes.Classifier",
            "init_args": {
                "num_classes": 10,
                "scheduler": "warmup_cosine",
                "scheduler_options": {"warmup_steps": 2},
                "backbone": {
                    "class_path": "lightning_recipes.MLP",
                    "init_args": {"in_features": 64},
                },
            },
        },
        "data": {"class_path": "lightning_recipes.DigitsDataModule"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = RecipesCLI(args=["fit", "-c", str(path)], run=True)
    finder = next(c for c in cli.trainer.callbacks if isinstance(c, LRFinder))
    chosen = finder.results[0].chosen
    assert chosen is not None
    assert cli.model.lr == chosen
    assert cli.trainer.lr_scheduler_configs[0].scheduler.base_lrs == [chosen]


def test_classifier_cosine_restarts_restart_at_every_cycle(
    make_trainer: Callable[..., Trainer],
) -> None:
    class Rates(Callback):
        def __init__(self) -> None:
            self.lrs: list[float] = []

        def on_train_batch_start(self, trainer: Trainer, *args: Any) -> None:
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    rates = Rates()
    model = Classifier(MLP(64, [16]), num_classes=10, lr=1e-3, scheduler="cosine_restarts",
                       scheduler_options={"cycle_epochs": 2, "eta_min": 1e-5})  # fmt: skip
    trainer = make_trainer(max_epochs=4, limit_train_batches=5, limit_val_batches=0,
                           callbacks=[rates])  # fmt: skip
    trainer.fit(model, DigitsDataModule(batch_size=32))
    # 10 steps per cycle: the peak at steps 0 and 10, the floor approached at 9 and 19.
    assert rates.lrs[0] == rates.lrs[10] == pytest.approx(1e-3)
    assert rates.lrs[9] == pytest.approx(rates.lrs[19])
    assert rates.lrs[9] < 5e-5
    assert all(a > b for a, b in zip(rates.lrs[:9], rates.lrs[1:10], strict=True))
    with pytest.raises(RecipeConfigError, match="accepts cycle_epochs, eta_min"):
        Classifier(MLP(4, [4]), num_classes=2, scheduler="cosine_restarts",
                   scheduler_options={"cycles": 3})  # fmt: skip
