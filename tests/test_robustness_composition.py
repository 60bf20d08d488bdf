"""AdversarialTraining and RobustnessEvaluation with the rest of a real fit: AMP, gradient
accumulation, ClassWeighting's loss, the global RNG, loggers, and a module it cannot reach."""

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn

from lightning_recipes import AdversarialTraining, ClassWeighting, RobustnessEvaluation
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import RecipeWarning


class SpyLoss(nn.CrossEntropyLoss):
    """Cross-entropy that records, per call, whether it ran in train mode and its weight."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, Tensor | None]] = []

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        weight = None if self.weight is None else self.weight.detach().clone()
        self.calls.append((self.training, weight))
        return super().forward(input, target)


class Watched(LightningModule):
    """Records, per training step, the clean inputs, the inputs the training forward got,
    the parameters' .grad before and after ``self(x)`` (the attack runs inside it), and
    the dtype of the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.loss_fn: nn.Module = SpyLoss()
        self.steps: list[dict[str, Any]] = []

    def forward(self, x: Tensor) -> Tensor:
        if self.training:  # the attack's own forward passes run in eval mode
            self.fed = x.detach().clone()
        return self.net(x)  # type: ignore[no-any-return]

    def _grads(self) -> list[Tensor | None]:
        return [None if p.grad is None else p.grad.clone() for p in self.parameters()]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        before = self._grads()
        logits = self(x)
        self.steps.append(
            {"clean": x.detach().clone(), "fed": self.fed, "before": before,
             "after": self._grads(), "dtype": logits.dtype}
        )  # fmt: skip
        return self.loss_fn(logits, y)  # type: ignore[no-any-return]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path: Path, model: LightningModule, callbacks: list[Any], **kwargs: Any) -> Trainer:
    args: dict[str, Any] = {
        "max_epochs": 1, "limit_train_batches": 4, "limit_val_batches": 0,
        "num_sanity_val_steps": 0, "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False,
        "default_root_dir": tmp_path, "accelerator": "cpu",
    }  # fmt: skip
    args.update(kwargs)
    trainer = Trainer(callbacks=callbacks, **args)
    trainer.fit(model, DigitsDataModule(batch_size=32))
    return trainer


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_under_bf16_autocast_and_accumulation_the_attack_stays_in_the_ball_and_leaks_no_grad(
    tmp_path: Path, method: str
) -> None:
    seed_everything(0)
    model = Watched()
    attack = AdversarialTraining(eps=0.1, attack=method, steps=3, clip=[0.0, 1.0])  # type: ignore[arg-type]
    fit(tmp_path, model, [attack], precision="bf16-mixed", accumulate_grad_batches=2)
    assert attack.batches == 4
    for step in model.steps:
        assert step["dtype"] == torch.bfloat16  # the forward really ran under autocast
        assert step["fed"].dtype == torch.float32  # the inputs keep their dtype
        delta = step["fed"] - step["clean"]
        assert float(delta.abs().max()) <= 0.1 + 1e-6  # in the ball...
        assert float(step["fed"].min()) >= 0.0  # ...and in the range
        assert float(step["fed"].max()) <= 1.0
        assert float(delta.abs().mean()) > 0.02  # and really attacked
    # The second batch of each accumulation window starts with the first one's gradient:
    # the attack, run inside self(x), must leave it exactly as it was.
    accumulating = [model.steps[1], model.steps[3]]
    for step in accumulating:
        assert all(g is not None for g in step["before"])
        for before, after in zip(step["before"], step["after"], strict=True):
            assert torch.equal(before, after)


def test_the_attack_maximises_the_modules_own_loss_with_classweightings_weights(
    tmp_path: Path,
) -> None:
    seed_everything(0)
    model = Watched()
    weighting = ClassWeighting({0: 5.0, **{c: 1.0 for c in range(1, 10)}})
    attack = AdversarialTraining(eps=0.1, attack="pgd", steps=3, clip=[0.0, 1.0])
    fit(tmp_path, model, [attack, weighting], limit_train_batches=1)  # attack listed first
    calls = model.loss_fn.calls  # type: ignore[union-attr]
    in_attack = [weight for training, weight in calls if not training]
    assert len(in_attack) == 3  # one per PGD step, through the module's own loss object
    assert weighting.weights is not None
    for weight in in_attack:
        assert weight is not None
        assert torch.equal(weight, weighting.weights.float())
    assert [training for training, _ in calls].count(True) == 1  # the training loss itself


def test_the_global_rng_is_untouched(tmp_path: Path) -> None:
    states = []
    for callbacks in ([], [AdversarialTraining(eps=0.1, attack="pgd", steps=2)]):
        seed_everything(0)
        fit(tmp_path, Watched(), callbacks)
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])


def test_a_training_step_that_never_calls_the_module_is_warned_about(tmp_path: Path) -> None:
    class Bypass(Watched):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            return self.loss_fn(self.net(x), y)  # type: ignore[no-any-return]

    seed_everything(0)
    model = Bypass()
    attack = AdversarialTraining(eps=0.1)
    with pytest.warns(RecipeWarning, match="never called"):
        fit(tmp_path, model, [attack], limit_train_batches=2)
    assert attack.batches == 0
    assert not model._forward_pre_hooks  # no hook left behind for validation or predict


def test_robustness_evaluation_logs_plots_and_keeps_every_nth_epoch(tmp_path: Path) -> None:
    seed_everything(0)
    model = Watched()
    evaluation = RobustnessEvaluation(
        epsilons=[0.2, 0.1], steps=2, clip=[0.0, 1.0], num_samples=40, every_n_epochs=2
    )
    logger = CSVLogger(tmp_path, name="run")
    trainer = fit(
        tmp_path, model, [evaluation], max_epochs=4, limit_train_batches=2,
        limit_val_batches=2, logger=logger,
    )  # fmt: skip
    trainer.test(model, DigitsDataModule(batch_size=32), verbose=False)
    assert list(evaluation.results) == ["val_epoch1", "val_epoch3", "test"]
    assert all(list(r) == [0.0, 0.1, 0.2] for r in evaluation.results.values())
    with open(Path(logger.log_dir) / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    names = {"robust/acc@0", "robust/acc@0.1", "robust/acc@0.2"}
    logged = [row for row in rows if row.get("robust/acc@0")]
    assert names <= set(rows[0])
    assert len(logged) == 3  # two validations and the test
    assert float(logged[-1]["robust/acc@0.1"]) == pytest.approx(evaluation.results["test"][0.1])
    assert set(evaluation.figure_paths) == {"val_epoch1", "val_epoch3", "test"}
    for path in evaluation.figure_paths.values():
        assert path.is_file()
        assert path.suffix == ".png"
    figures = evaluation.run_summary().figures
    assert evaluation.figure_paths["test"] in figures.values()


def test_two_evaluations_share_a_trainer_and_keep_their_own_state(tmp_path: Path) -> None:
    pgd = RobustnessEvaluation(epsilons=[0.1], attack="pgd", steps=2, num_samples=16, plot=False)
    fgsm = RobustnessEvaluation(epsilons=[0.1], attack="fgsm", num_samples=16, plot=False)
    assert pgd.state_key != fgsm.state_key
    seed_everything(0)
    model = Watched()
    fit(tmp_path, model, [pgd, fgsm], limit_train_batches=2, limit_val_batches=1,
        enable_checkpointing=True)  # fmt: skip
    state = torch.load(next(tmp_path.rglob("*.ckpt")), weights_only=False)["callbacks"]
    assert state[pgd.state_key]["results"] == pgd.results
    assert state[fgsm.state_key]["results"] == fgsm.results
