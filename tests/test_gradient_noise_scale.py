"""GradientNoiseScale in real fits: the closed-form check, the measuring paths, the report."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import GradientNoiseScale
from lightning_recipes.errors import RecipeConfigError
from tests.ddp.harness import assert_same_tensors

QUIET: dict[str, Any] = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "logger": False,
}


class FixedRegression(LightningModule):
    """0.5 (x.w - y)^2 at fixed weights (lr 0): the noise scale is known in closed form."""

    def __init__(self, delta: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(delta.clone())  # w* = 0, so w - w* = delta

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return 0.5 * (x @ self.w - y).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def regression_loader(batch_size: int, steps: int, d: int, sigma2: float) -> DataLoader:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size * steps, d, generator=gen)
    y = torch.randn(batch_size * steps, generator=gen) * sigma2**0.5  # y = x.w* + eps, w* = 0
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


@pytest.mark.parametrize(
    ("method", "accumulate"), [("split", 1), ("accumulation", 4)], ids=["split", "accumulation"]
)
def test_the_estimate_is_within_10_percent_of_the_closed_form(method: str, accumulate: int) -> None:
    d, sigma2 = 8, 20.0
    delta = torch.full((d,), 0.5)  # |delta|^2 = 2
    truth = (d * (2.0 + sigma2) + 2.0) / 2.0  # tr(Sigma) / |G|^2 = 89
    noise = GradientNoiseScale(every_n_steps=1, beta=0.99, method=method, plot=False)  # type: ignore[arg-type]
    trainer = Trainer(max_epochs=1, accumulate_grad_batches=accumulate, **QUIET, callbacks=[noise])
    trainer.fit(FixedRegression(delta), regression_loader(64, 600, d, sigma2))
    assert noise.measurements == 600 // accumulate
    assert noise.noise_scale == pytest.approx(truth, rel=0.1)
    assert noise.batch_size == 64 * accumulate
    assert noise.history[-1][0] == trainer.global_step


class UserClassifier(LightningModule):
    """A user's module: plain F.cross_entropy, Adam, nothing the library provides."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def classifier_fit(tmp_path: Path, callback: GradientNoiseScale, **kwargs: Any) -> Trainer:
    seed_everything(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 10, generator=gen)
    y = x[:, :3].argmax(1)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    args = {**QUIET, "max_epochs": 1, **kwargs}
    trainer = Trainer(callbacks=[callback], default_root_dir=tmp_path, **args)
    trainer.fit(UserClassifier(), loader)
    return trainer


def test_a_user_module_gets_the_estimate_the_advice_and_the_figure_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    figure = tmp_path / "out" / "noise.png"
    noise = GradientNoiseScale(every_n_steps=2, figure_path=str(figure))
    trainer = classifier_fit(tmp_path / "run", noise)
    assert noise.measurements == 8  # 16 steps, every 2nd
    assert noise.noise_scale > 0
    assert noise.advice is not None
    assert noise.advice.startswith("batch 32 is ")
    assert "square root (Adam-like)" in noise.advice
    assert figure.exists()
    assert noise.saved_figure == figure
    assert os.listdir(tmp_path) == ["out"]  # no logger, figure_path given: nothing else written
    summary = noise.run_summary()
    assert summary.facts["lr scaling rule"] == "sqrt"
    assert summary.notes == [noise.advice]
    assert trainer.callback_metrics["train_loss"].numel() == 1  # the split pass logged nothing


def test_without_a_figure_path_or_run_dir_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    noise = GradientNoiseScale(every_n_steps=8, verbose=False)
    seed_everything(0)
    x, y = torch.randn(128, 10), torch.randint(0, 3, (128,))
    trainer = Trainer(max_epochs=1, **QUIET, callbacks=[noise])
    trainer.fit(UserClassifier(), DataLoader(TensorDataset(x, y), batch_size=32))
    assert noise.measurements == 1
    assert noise.saved_figure is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every_n_steps": 0}, "every_n_steps"),
        ({"beta": 1.0}, "beta"),
        ({"beta": True}, "beta"),
        ({"method": "per_example"}, "method"),
        ({"log_every_n_steps": -1}, "log_every_n_steps"),
        ({"plot": "yes"}, "plot"),
        ({"figure_path": 3}, "figure_path"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(RecipeConfigError, match=match):
        GradientNoiseScale(**kwargs)


def test_methods_that_do_not_fit_the_run_are_refused_at_setup(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="accumulate_grad_batches>=2"):
        classifier_fit(tmp_path, GradientNoiseScale(method="accumulation"))
    with pytest.raises(RecipeConfigError, match="DDP run"):
        classifier_fit(tmp_path, GradientNoiseScale(method="ddp"))


@pytest.mark.ddp
def test_under_ddp_the_hook_measures_for_free_and_changes_nothing(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("gradient_noise_scale_fit")
    assert rank0["method"] == "ddp"
    assert rank0["history"] == rank1["history"]  # one estimate on every rank
    assert rank0["measurements"] == 300  # every step, no extra backward
    assert rank0["batch_size"] == 64  # 32 per rank (the small size) x 2 ranks
    assert rank0["estimate"] == pytest.approx(89.0, rel=0.1)  # the closed form
    for result in (rank0, rank1):  # the measuring all-reduce is the plain all-reduce
        assert_same_tensors(result["with"], result["without"])


def test_a_strategy_with_its_own_comm_hook_is_refused_at_setup() -> None:
    from lightning.pytorch.strategies import DDPStrategy
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import fp16_compress_hook

    strategy = DDPStrategy(ddp_comm_hook=fp16_compress_hook)
    trainer = Trainer(accelerator="cpu", devices=2, strategy=strategy, logger=False)
    with pytest.raises(RecipeConfigError, match="fp16_compress_hook"):
        GradientNoiseScale().setup(trainer, UserClassifier(), "fit")


def test_steps_between_measurements_run_no_tensor_operation(tmp_path: Path) -> None:
    """No kernel, hence no host sync, outside the measuring steps (here every 4th)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            Count.ops += 1
            return func(*args, **(kwargs or {}))

    noise = GradientNoiseScale(every_n_steps=4, plot=False, verbose=False)
    per_step: dict[int, int] = {}
    for name in ("on_train_batch_start", "on_after_backward", "on_before_optimizer_step"):
        hook = getattr(noise, name)

        def counted(trainer: Trainer, *args: Any, _hook: Any = hook) -> None:
            before = Count.ops
            with Count():
                _hook(trainer, *args)
            step = trainer.global_step
            per_step[step] = per_step.get(step, 0) + Count.ops - before

        setattr(noise, name, counted)
    classifier_fit(tmp_path, noise)
    assert per_step  # 16 steps
    assert all(ops == 0 for step, ops in per_step.items() if step % 4 != 0), per_step
    assert all(ops > 0 for step, ops in per_step.items() if step % 4 == 0), per_step
