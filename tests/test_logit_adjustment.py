"""Logit adjustment (pure formulas and the callback) and deferred re-weighting (DRW)."""

import contextlib
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import LabelSmoothing, RecipeConfigError, RecipeWarning
from lightning_recipes import functional as LF  # noqa: N812
from lightning_recipes._core.loss_path import shift_logits
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.imbalance import ClassWeighting, FocalLoss, LogitAdjustment
from tests.registry import CrashError, assert_same, fit, state_of

MakeTrainer = Callable[..., Trainer]

# ---------------------------------------------------------------- the pure formulas


def test_log_prior_offset_is_tau_log_of_the_class_frequencies() -> None:
    got = LF.log_prior_offset([60, 30, 10], tau=0.5)
    expected = [0.5 * math.log(0.6), 0.5 * math.log(0.3), 0.5 * math.log(0.1)]
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx(expected, rel=1e-6)
    assert LF.log_prior_offset(torch.tensor([5, 5]), tau=0).tolist() == [0.0, 0.0]


def test_logit_adjusted_cross_entropy_by_hand_and_tau_zero_is_plain_ce() -> None:
    logits, y = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]]), torch.tensor([0, 2])
    counts, tau = [70, 20, 10], 1.5
    z = logits + tau * torch.log(torch.tensor([0.7, 0.2, 0.1]))
    by_hand = -(z[0, 0] - z[0].logsumexp(0) + z[1, 2] - z[1].logsumexp(0)) / 2
    got = LF.logit_adjusted_cross_entropy(logits, y, counts, tau)
    assert float(got) == pytest.approx(float(by_hand), rel=1e-6)
    assert torch.equal(
        LF.logit_adjusted_cross_entropy(logits, y, counts, 0.0), F.cross_entropy(logits, y)
    )


def test_posthoc_adjust_subtracts_the_log_prior_along_the_class_dimension() -> None:
    logits = torch.tensor([[1.0, 0.0]])
    got = LF.posthoc_adjust(logits, [90, 10])
    assert got.tolist()[0] == pytest.approx([1 - math.log(0.9), -math.log(0.1)], rel=1e-6)
    assert got.argmax(1).tolist() == [1]  # the rare class wins the close call
    # (N, C, L) scores: the offset broadcasts over the trailing dimensions.
    seq = shift_logits(torch.zeros(2, 3, 4), torch.tensor([1.0, 2.0, 3.0]))
    assert seq[:, :, 0].tolist() == [[1.0, 2.0, 3.0]] * 2
    assert seq[1, 2].tolist() == [3.0] * 4


@pytest.mark.parametrize(
    ("counts", "tau", "needle"),
    [
        ([10, 0, 5], 1.0, "Classes [1] have no training sample"),
        ([10, 5], -1.0, "tau"),
        ([10, 5], float("nan"), "tau"),
        ([10], 1.0, "at least 2 classes"),
    ],
)
def test_bad_counts_and_tau_are_refused(counts: list[int], tau: float, needle: str) -> None:
    with pytest.raises(RecipeConfigError, match=re.escape(needle)):
        LF.log_prior_offset(counts, tau)


def test_shift_logits_refuses_an_offset_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="one value per class"):
        shift_logits(torch.zeros(2, 3), torch.zeros(4))


# ---------------------------------------------------------------- a user's plain module


class PlainNet(LightningModule):
    """A user's classifier: ``F.cross_entropy`` (or ``F.nll_loss``) in training_step."""

    def __init__(self, nll: bool = False, output: str = "logits") -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        self.nll, self.output = nll, output
        self.steps: list[tuple[Tensor, Tensor, Tensor]] = []
        self.val_logits: list[Tensor] = []

    def forward(self, x: Tensor) -> Any:
        logits = self.net(x)
        return (logits, x) if self.output == "tuple" else logits

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        if self.nll:
            loss = F.nll_loss(F.log_softmax(logits, dim=1), y)
        else:
            loss = F.cross_entropy(logits, y)
        self.steps.append((logits.detach(), y.clone(), loss.detach()))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.val_logits.append(self(batch[0]).detach())

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self(batch[0])  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def digits() -> DigitsDataModule:
    """Digits with three rare classes (0, 1 and 2 at 10%)."""
    return DigitsDataModule(batch_size=32, imbalance={0: 0.1, 1: 0.1, 2: 0.1})


def train_counts(data: DigitsDataModule) -> list[int]:
    assert data.train_dataset is not None
    return np.bincount(data.train_dataset.targets.numpy(), minlength=10).tolist()


@pytest.mark.parametrize("nll", [False, True], ids=["F.cross_entropy", "F.nll_loss"])
def test_the_training_loss_is_the_logit_adjusted_loss(make_trainer: MakeTrainer, nll: bool) -> None:
    seed_everything(0)
    model, data = PlainNet(nll=nll), digits()
    adjust = LogitAdjustment(tau=0.7)
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=0, callbacks=[adjust])
    trainer.fit(model, data)
    counts = train_counts(data)
    assert adjust.counts == counts
    assert len(model.steps) == 2
    for logits, y, loss in model.steps:  # the second step is a labels step (_Labels view)
        expected = LF.logit_adjusted_cross_entropy(logits, y, counts, 0.7)
        assert float(loss) == pytest.approx(float(expected), rel=1e-5)
        assert float(loss) != pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-3)


def test_composes_with_label_smoothing_and_class_weights(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model, data = PlainNet(), digits()
    callbacks = [LabelSmoothing(0.1), ClassWeighting("balanced"), LogitAdjustment(1.0)]
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0, callbacks=callbacks)
    with pytest.warns(RecipeWarning, match="both correct for the class prior"):
        trainer.fit(model, data)
    counts = train_counts(data)
    weight = torch.tensor([sum(counts) / (10 * c) for c in counts], dtype=torch.float32)
    ((logits, y, loss),) = model.steps
    z = logits + LF.log_prior_offset(counts, 1.0)
    uniform = torch.full_like(z, 0.1)
    expected = 0.9 * F.cross_entropy(z, y, weight=weight) + 0.1 * F.cross_entropy(
        z, uniform, weight=weight
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_deferred_weights_draw_no_warning(make_trainer: MakeTrainer) -> None:
    callbacks = [ClassWeighting("balanced", start_epoch=1), LogitAdjustment(1.0, "posthoc")]
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0, callbacks=callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeWarning)
        trainer.fit(PlainNet(), digits())


def test_posthoc_leaves_training_alone_and_adjusts_validation_and_predict(
    make_trainer: MakeTrainer,
) -> None:
    seed_everything(0)
    model, data = PlainNet(), digits()
    adjust = LogitAdjustment(tau=1.0, mode="posthoc")
    trainer = make_trainer(limit_train_batches=2, limit_val_batches=1, callbacks=[adjust])
    trainer.fit(model, data)
    for logits, y, loss in model.steps:
        assert torch.equal(loss, F.cross_entropy(logits, y))  # training: plain CE
    counts = train_counts(data)
    data.setup("validate")
    x, _ = next(iter(data.val_dataloader()))
    model.eval()
    with torch.no_grad():
        raw = model(x)  # outside the Trainer: the module is unchanged
        assert torch.allclose(model.val_logits[-1], LF.posthoc_adjust(raw, counts), atol=1e-6)
    batches = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), len(x))
    (predicted,) = trainer.predict(model, dataloaders=batches)  # type: ignore[misc]
    assert torch.allclose(predicted, LF.posthoc_adjust(raw, counts), atol=1e-6)
    assert not any("hook" in k for k in model.state_dict())  # checkpoints stay clean

    # A fresh Trainer and callback: the prior comes from the checkpointed state.
    restored = LogitAdjustment(tau=1.0, mode="posthoc")
    restored.load_state_dict(adjust.state_dict())
    other = make_trainer(callbacks=[restored])
    (again,) = other.predict(model, dataloaders=batches)  # type: ignore[misc]
    assert torch.equal(again, predicted)
    # Without a prior, evaluation is refused with the fix.
    bare = make_trainer(callbacks=[LogitAdjustment(mode="posthoc")])
    with pytest.raises(RecipeConfigError, match="ckpt_path="):
        bare.predict(model, dataloaders=batches)


def test_posthoc_refuses_a_forward_that_returns_no_class_scores(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(
        limit_train_batches=1, limit_val_batches=1, callbacks=[LogitAdjustment(mode="posthoc")]
    )
    trainer.num_sanity_val_steps = 0
    with pytest.raises(RecipeConfigError, match="forward returned tuple"):
        trainer.fit(PlainNet(output="tuple"), digits())


class BinaryNet(PlainNet):
    def __init__(self) -> None:
        super().__init__()
        self.loss_fn = nn.BCEWithLogitsLoss()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"tau": -0.5}, "tau"),
        ({"tau": "1"}, "tau"),
        ({"mode": "train"}, "mode"),
        ({"num_classes": 1}, "num_classes"),
        ({"loss_attr": "not an attribute"}, "loss_attr"),
        ({"log": 1}, "log"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(RecipeConfigError, match=name):
        LogitAdjustment(**kwargs)


def test_a_binary_loss_is_refused_at_setup(make_trainer: MakeTrainer) -> None:
    trainer = make_trainer(limit_train_batches=1, callbacks=[LogitAdjustment()])
    with pytest.raises(RecipeConfigError, match="no class prior to add"):
        trainer.fit(BinaryNet(), digits())


# ---------------------------------------------------------------- deferred re-weighting


def test_drw_weights_the_loss_from_start_epoch_on(make_trainer: MakeTrainer) -> None:
    seed_everything(0)
    model, data = PlainNet(), digits()
    weighting = ClassWeighting("balanced", start_epoch=1)
    trainer = make_trainer(max_epochs=2, limit_train_batches=1, limit_val_batches=0)
    trainer.callbacks.insert(0, weighting)  # type: ignore[attr-defined]
    trainer.fit(model, data)
    counts = train_counts(data)
    weight = torch.tensor([sum(counts) / (10 * c) for c in counts], dtype=torch.float32)
    (l0, y0, loss0), (l1, y1, loss1) = model.steps
    assert torch.equal(loss0, F.cross_entropy(l0, y0))  # epoch 0: uniform
    assert float(loss1) == pytest.approx(float(F.cross_entropy(l1, y1, weight=weight)), rel=1e-6)
    assert weighting.run_summary().facts["weighted from epoch"] == 1


@pytest.mark.parametrize("start_epoch", [-1, 1.5, True])
def test_drw_start_epoch_is_validated(start_epoch: Any) -> None:
    with pytest.raises(RecipeConfigError, match="start_epoch"):
        ClassWeighting(start_epoch=start_epoch)


def test_drw_resumes_like_an_uninterrupted_run(tmp_path: Path) -> None:
    def build() -> list[Any]:
        return [ClassWeighting("balanced", start_epoch=2)]

    kwargs: dict[str, Any] = {"trainer_kwargs": {"max_epochs": 3}}
    _, full = fit(build(), tmp_path / "full", **kwargs)
    with contextlib.suppress(CrashError):
        fit(build(), tmp_path / "cut", crash_at=1, **kwargs)
    last = tmp_path / "cut" / "ckpt" / "last.ckpt"
    _, resumed = fit(build(), tmp_path / "resumed", ckpt_path=last, **kwargs)
    assert_same(state_of(resumed), state_of(full), "weights")
    _, undeferred = fit([ClassWeighting("balanced")], tmp_path / "now", **kwargs)
    assert not torch.equal(state_of(full)["head.weight"], state_of(undeferred)["head.weight"])


class FocalNet(PlainNet):
    """The loss held as the library's FocalLoss: the module door adds the offset."""

    def __init__(self) -> None:
        super().__init__()
        self.loss_fn = FocalLoss(gamma=2.0)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss_fn(logits, y)
        self.steps.append((logits.detach(), y.clone(), loss.detach()))
        return loss  # type: ignore[no-any-return]


def test_focal_loss_gets_the_offset_through_the_module_door(make_trainer: MakeTrainer) -> None:
    model, data = FocalNet(), digits()
    trainer = make_trainer(
        limit_train_batches=2, limit_val_batches=0, callbacks=[LogitAdjustment()]
    )
    trainer.fit(model, data)
    offset = LF.log_prior_offset(train_counts(data))
    for logits, y, loss in model.steps:
        expected = LF.focal_loss(shift_logits(logits, offset), y, gamma=2.0)
        assert float(loss) == pytest.approx(float(expected), rel=1e-5)
