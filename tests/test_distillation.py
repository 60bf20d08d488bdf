"""Distillation: the loss by hand, the teacher's life (frozen, eval, apart), the loss path.

The Trainer tests run a user-written module whose ``training_step`` calls
``F.cross_entropy(self(x), y)`` and records what it saw; the loss it returned must be the
distillation loss of the logits, the teacher's logits on the very inputs the student
received (after MixUp), and the labels (weighted by ClassWeighting in the CE term only).
"""

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_recipes import ClassWeighting, Distillation, MixUp
from lightning_recipes._core.loss_path import LossPath
from lightning_recipes.distillation import build_teacher, distillation_loss, soft_target_loss
from lightning_recipes.errors import RecipeConfigError

FIT: dict[str, Any] = {
    "accelerator": "cpu",
    "max_epochs": 2,
    "limit_train_batches": 3,
    "limit_val_batches": 1,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
    "enable_checkpointing": False,
}


# ---------------------------------------------------------------- the pure function


def _by_hand(s: Tensor, t: Tensor, y: Tensor, temperature: float, alpha: float) -> float:
    """The formula with explicit sums over samples and classes (float64, no torch losses)."""
    n, c = s.shape
    kl = ce = 0.0
    for i in range(n):
        zs = [float(v) / temperature for v in s[i]]
        zt = [float(v) / temperature for v in t[i]]
        norm_s = math.log(sum(math.exp(v) for v in zs))
        norm_t = math.log(sum(math.exp(v) for v in zt))
        for k in range(c):
            p_t = math.exp(zt[k] - norm_t)
            kl += p_t * ((zt[k] - norm_t) - (zs[k] - norm_s))
        logits = [float(v) for v in s[i]]
        ce -= logits[int(y[i])] - math.log(sum(math.exp(v) for v in logits))
    return alpha * temperature**2 * kl / n + (1 - alpha) * ce / n


@pytest.mark.parametrize(
    ("temperature", "alpha"), [(4.0, 0.9), (1.0, 0.5), (0.5, 0.3), (20.0, 1.0), (3.0, 0.0)]
)
def test_the_loss_equals_the_formula_by_hand(temperature: float, alpha: float) -> None:
    generator = torch.Generator().manual_seed(0)
    s = torch.randn(6, 5, generator=generator, dtype=torch.float64) * 3
    t = torch.randn(6, 5, generator=generator, dtype=torch.float64) * 3
    y = torch.randint(0, 5, (6,), generator=generator)
    got = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
    assert float(got) == pytest.approx(_by_hand(s, t, y, temperature, alpha), rel=1e-12)


def test_the_ends_of_alpha_and_temperature() -> None:
    generator = torch.Generator().manual_seed(1)
    s, t = torch.randn(8, 4, generator=generator), torch.randn(8, 4, generator=generator)
    y = torch.randint(0, 4, (8,), generator=generator)
    # alpha 0 is the cross-entropy, bit for bit; alpha 1 is T^2 * KL alone (batchmean).
    assert torch.equal(distillation_loss(s, t, y, alpha=0.0), F.cross_entropy(s, y))
    kl = F.kl_div(F.log_softmax(s / 3, 1), F.softmax(t / 3, 1), reduction="batchmean")
    assert torch.allclose(distillation_loss(s, t, y, temperature=3.0, alpha=1.0), 9 * kl)
    # A teacher that agrees with the student costs nothing; T scales nothing away.
    assert abs(float(distillation_loss(s, s, y, alpha=1.0))) < 1e-6
    # High T: T^2 * KL tends to the logit-matching term sum((s - t)^2) / (2 C) (centred).
    sc, tc = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    matching = ((sc - tc) ** 2).sum(1).mean() / (2 * 4)
    high = soft_target_loss(s.double(), t.double(), 1e3)
    assert torch.allclose(high, matching.double(), rtol=1e-2)
    # The reductions: per sample, and their sum.
    per = soft_target_loss(s, t, 2.0, reduction="none")
    assert per.shape == (8,)
    assert torch.allclose(soft_target_loss(s, t, 2.0, reduction="sum"), per.sum())


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_temperature_and_alpha_are_refused(kwargs: dict[str, float], named: str) -> None:
    s = torch.zeros(2, 3)
    with pytest.raises(RecipeConfigError, match=named):
        distillation_loss(s, s, torch.zeros(2, dtype=torch.long), **kwargs)
    with pytest.raises(RecipeConfigError, match=named):
        Distillation(nn.Linear(2, 3), **kwargs)


def test_bad_teachers_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="No such file"):
        Distillation(str(tmp_path / "missing.ckpt"))
    with pytest.raises(RecipeConfigError, match="does not import"):
        Distillation({"class_path": "torch.nn.NoSuchLayer"})
    with pytest.raises(RecipeConfigError, match=r"not an nn\.Module"):
        Distillation({"class_path": "torch.optim.SGD"})
    with pytest.raises(RecipeConfigError, match="LightningCLI's form"):
        Distillation({"class_path": "torch.nn.Linear", "args": [2, 3]})
    with pytest.raises(RecipeConfigError, match="teacher_class"):
        Distillation(nn.Linear(2, 3), teacher_class="torch.nn.Linear")
    with pytest.raises(RecipeConfigError, match="teacher"):
        Distillation(3)  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="teacher's logits have shape \\(2, 5\\)"):
        distillation_loss(torch.zeros(2, 3), torch.zeros(2, 5), torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------- a user's module


class UserNet(LightningModule):
    """A user's module: ``F.cross_entropy(self(x), y)``; it records what each step saw."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, classes))
        self.steps: list[dict[str, Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        self.received = x
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        path = LossPath._by_module.get(self)
        terms = path.edit.terms if path is not None else ()
        self.steps.append(
            {"x": self.received.detach().clone(), "logits": logits.detach().clone(),
             "y": torch.as_tensor(y).clone(), "loss": loss.detach().clone(),
             "terms": terms})  # type: ignore[dict-item]  # fmt: skip
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loaders(classes: int = 4) -> tuple[DataLoader[Any], DataLoader[Any]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 8, generator=generator)
    y = torch.arange(48) % classes
    y[:3] = 0  # class 0 more frequent: class weights differ
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=12, shuffle=True, generator=generator), DataLoader(data)


def teacher_net(classes: int = 4) -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, classes))


class Watch:
    """What the teacher saw: its mode and grad state at each call."""

    def __init__(self, teacher: nn.Module) -> None:
        self.calls: list[tuple[bool, bool, Tensor]] = []
        teacher.register_forward_hook(self.hook)

    def hook(self, module: nn.Module, args: tuple[Tensor], output: Tensor) -> None:
        self.calls.append((module.training, torch.is_grad_enabled(), args[0].detach().clone()))


def fit(callbacks: list[Any], model: UserNet | None = None, **trainer: Any) -> UserNet:
    seed_everything(0)
    model = model or UserNet()
    Trainer(callbacks=callbacks, **{**FIT, **trainer}).fit(model, *loaders())
    return model


def test_a_plain_cross_entropy_module_trains_on_the_distillation_loss(tmp_path: Path) -> None:
    teacher = teacher_net()
    teacher.train()  # given in train mode with gradients on: frozen for the fit, given back
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    watch = Watch(teacher)
    kd = Distillation(teacher, temperature=3.0, alpha=0.7)
    model = fit([kd], enable_checkpointing=True, default_root_dir=tmp_path)
    assert len(model.steps) == 6
    for step, (training, grad, seen) in zip(model.steps, list(watch.calls), strict=True):
        assert not training  # eval mode, through Lightning's train() calls
        assert not grad
        assert torch.equal(seen, step["x"])  # the inputs the student received
        with torch.no_grad():
            expected = distillation_loss(step["logits"], teacher(step["x"]), step["y"], 3.0, 0.7)
        torch.testing.assert_close(step["loss"], expected)
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key])  # never trained
    assert teacher.training  # given back
    assert all(p.requires_grad for p in teacher.parameters())
    # Never in the student's checkpoint: the weights are the student's own, the callback's
    # state a counter.
    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    saved = torch.load(ckpt, weights_only=False)
    assert set(saved["state_dict"]) == set(model.state_dict())
    assert saved["callbacks"][kd.state_key] == {"batches": 6}
    assert kd.run_summary().facts["batches distilled"] == 6


def test_alpha_zero_trains_as_plain_cross_entropy() -> None:
    plain = fit([])
    zero = fit([Distillation(teacher_net(), alpha=0.0)])
    for a, b in zip(plain.parameters(), zero.parameters(), strict=True):
        assert torch.equal(a, b)


def test_with_class_weights_and_mixup_the_ce_term_is_weighted_and_mixed_in_any_order() -> None:
    runs = []
    for first in (True, False):
        teacher = teacher_net()
        watch = Watch(teacher)
        recipes: list[Any] = [ClassWeighting(), MixUp(alpha=1.0, seed=3)]
        kd = Distillation(teacher, temperature=2.0, alpha=0.6)
        model = fit([kd, *recipes] if first else [*recipes, kd])
        weight = recipes[0].weights
        for step, (_, _, seen) in zip(model.steps, list(watch.calls), strict=True):
            assert torch.equal(seen, step["x"])  # the teacher saw the mixed inputs
            logits, y = step["logits"], step["y"]
            hard = sum(
                term.coef * F.cross_entropy(logits, y if term.index is None else y[term.index],
                                            weight=weight)
                for term in step["terms"]  # type: ignore[attr-defined]
            )  # fmt: skip
            with torch.no_grad():
                soft = soft_target_loss(logits, teacher(seen), 2.0)
            torch.testing.assert_close(step["loss"], 0.4 * hard + 0.6 * soft)
        assert any(len(step["terms"]) == 2 for step in model.steps)  # type: ignore[arg-type]
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs, strict=True):  # either callback order: the same training
        assert torch.equal(a, b)


def test_the_teacher_must_not_be_the_student_nor_part_of_it() -> None:
    model = UserNet()
    with pytest.raises(RecipeConfigError, match="shares its parameters"):
        fit([Distillation(model)], model=model)
    model = UserNet()
    with pytest.raises(RecipeConfigError, match="shares its parameters"):
        fit([Distillation(model.net)], model=model)


def test_a_teacher_of_other_classes_is_refused_at_the_first_step_naming_both_shapes() -> None:
    teacher = teacher_net(classes=6)
    with pytest.raises(RecipeConfigError, match=r"shape \(12, 6\).*shape \(12, 4\)"):
        fit([Distillation(teacher)])
    assert teacher.training  # given back after the error too
    assert all(p.requires_grad for p in teacher.parameters())


def test_two_distillations_and_a_binary_loss_are_refused_at_setup() -> None:
    with pytest.raises(RecipeConfigError, match="several Distillation"):
        fit([Distillation(teacher_net()), Distillation(teacher_net(), temperature=2.0)])
    model = UserNet()
    model.loss_fn = nn.BCEWithLogitsLoss()
    with pytest.raises(RecipeConfigError, match="cannot distil into loss_fn = BCEWithLogitsLoss"):
        fit([Distillation(teacher_net())], model=model)


def test_a_step_that_calls_a_submodule_has_the_teacher_on_the_mixed_batch_inputs() -> None:
    class Sidestep(UserNet):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            logits = self.net(x)  # a submodule: the LightningModule itself is not called
            loss = F.cross_entropy(logits, y)
            self.steps.append({"x": x.clone(), "logits": logits.detach(), "loss": loss.detach()})
            return loss

    teacher = teacher_net()
    watch = Watch(teacher)
    model = fit([Distillation(teacher, alpha=1.0), MixUp(alpha=1.0, seed=3)], model=Sidestep())
    for step, (_, _, seen) in zip(model.steps, list(watch.calls), strict=True):
        assert torch.equal(seen, step["x"])  # the batch's inputs, mixed
        with torch.no_grad():
            expected = soft_target_loss(step["logits"], teacher(seen), 4.0)
        torch.testing.assert_close(step["loss"], expected)


def test_teachers_from_a_class_path_and_from_checkpoints(tmp_path: Path) -> None:
    spec = {"class_path": "torch.nn.Linear", "init_args": {"in_features": 8, "out_features": 4}}
    state = torch.random.get_rng_state()
    built = build_teacher(spec)
    assert torch.equal(torch.random.get_rng_state(), state)  # training's RNG untouched
    assert torch.equal(build_teacher(spec).weight, built.weight)  # the same on every rank
    # A plain state_dict file, its class given as a class_path.
    torch.save(built.state_dict(), tmp_path / "linear.pt")
    loaded = Distillation(str(tmp_path / "linear.pt"), teacher_class=spec).teacher_module
    assert torch.equal(loaded.weight, built.weight)
    # A Lightning checkpoint: the class by import path, or named by LightningCLI in it.
    model = UserNet()
    trainer = Trainer(logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "user.ckpt")
    with pytest.raises(RecipeConfigError, match="teacher_class="):
        Distillation(str(tmp_path / "user.ckpt")).teacher_module  # noqa: B018
    kd = Distillation(str(tmp_path / "user.ckpt"), teacher_class=f"{__name__}.UserNet")
    assert torch.equal(kd.teacher_module.net[0].weight, model.net[0].weight)
    saved = torch.load(tmp_path / "user.ckpt", weights_only=False)
    saved["hyper_parameters"] = {"_class_path": f"{__name__}.UserNet"}
    torch.save(saved, tmp_path / "cli.ckpt")
    teacher = Distillation(str(tmp_path / "cli.ckpt")).teacher_module
    assert isinstance(teacher, UserNet)


def test_a_focal_loss_module_is_the_hard_term_through_the_module_door() -> None:
    # Also the steps after the first, in which the batch holds a view of the labels (the
    # module door once missed it there: MixUp on a FocalLoss failed at its second step).
    from lightning_recipes import FocalLoss

    class Focal(UserNet):
        def __init__(self) -> None:
            super().__init__()
            self.loss_fn = FocalLoss(gamma=2.0)

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            logits = self(x)
            loss = self.loss_fn(logits, y)
            terms = LossPath._by_module[self].edit.terms
            self.steps.append(
                {"x": self.received.detach().clone(), "logits": logits.detach(),
                 "y": torch.as_tensor(y).clone(), "loss": loss.detach(), "terms": terms})  # type: ignore[dict-item]  # fmt: skip
            return loss

    teacher = teacher_net()
    recipes = [Distillation(teacher, temperature=2.0, alpha=0.5), MixUp(alpha=1.0, seed=3)]
    model = fit(recipes, model=Focal())
    assert len(model.steps) == 6
    for step in model.steps:
        y = step["y"]
        with torch.no_grad():  # not training: the loss module is not edited here
            targets = [(t.coef, y if t.index is None else y[t.index]) for t in step["terms"]]  # type: ignore[attr-defined]
            focal = sum(coef * model.loss_fn(step["logits"], target) for coef, target in targets)
            soft = soft_target_loss(step["logits"], teacher(step["x"]), 2.0)
        torch.testing.assert_close(step["loss"], 0.5 * focal + 0.5 * soft)
