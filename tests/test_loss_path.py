"""The loss path: loss recipes on a module that computes its loss itself, unchanged.

A user's ``training_step`` calls ``F.cross_entropy(logits, y)``, builds a local
``nn.CrossEntropyLoss()``, uses ``F.nll_loss`` after ``log_softmax`` or
``F.binary_cross_entropy_with_logits``: ClassWeighting, MixUp, CutMix and LabelSmoothing
must train exactly as they do through ``self.loss_fn``, leave every other loss alone, and
say clearly when they find nothing to act on.
"""

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset, default_collate

from lightning_recipes import ClassWeighting, CutMix, LabelSmoothing, MixUp
from lightning_recipes._core.loss_path import (
    LossPath,
    MixTerm,
    edited_loss,
    uniform_target,
)
from lightning_recipes._core.loss_path import path as loss_path_module
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import RecipeConfigError

FIT: dict[str, Any] = {
    "accelerator": "cpu",
    "max_epochs": 2,
    "limit_train_batches": 2,
    "limit_val_batches": 1,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
    "enable_checkpointing": False,
}

STYLES: dict[str, Callable[["Net", Tensor, Tensor], Tensor]] = {
    "loss_fn": lambda m, z, y: m.loss_fn(z, y),
    "F.cross_entropy": lambda m, z, y: F.cross_entropy(z, y),
    "local CrossEntropyLoss": lambda m, z, y: nn.CrossEntropyLoss()(z, y),
    "NLLLoss attribute": lambda m, z, y: m.loss_fn(F.log_softmax(z, dim=1), y),
    "F.nll_loss": lambda m, z, y: F.nll_loss(F.log_softmax(z, dim=1), y),
}


class Net(LightningModule):
    """A user's digits classifier; ``style`` says how its training step computes the loss."""

    def __init__(self, style: str = "F.cross_entropy") -> None:
        super().__init__()
        self.style = style
        self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
        if style == "loss_fn":
            self.loss_fn = nn.CrossEntropyLoss()
        elif style == "NLLLoss attribute":
            self.loss_fn = nn.NLLLoss()
        self.val_losses: list[tuple[Tensor, Tensor]] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return STYLES[self.style](self, self(x), y)

    def _plain_loss(self, batch: tuple[Tensor, Tensor]) -> None:
        x, y = batch
        z = self(x)
        by_hand = -F.log_softmax(z, dim=1).gather(1, y[:, None]).mean()
        self.val_losses.append((STYLES[self.style](self, z, y), by_hand))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._plain_loss(batch)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._plain_loss(batch)

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        self._plain_loss(batch)
        return self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def digits() -> DigitsDataModule:
    return DigitsDataModule(batch_size=32, imbalance={3: 0.1, 8: 0.1})


def weights_after(style: str, callbacks: list[Callback], **kwargs: Any) -> Tensor:
    seed_everything(0)
    model = Net(style)
    Trainer(callbacks=callbacks, **{**FIT, **kwargs}).fit(model, digits())
    return torch.cat([p.detach().flatten() for p in model.parameters()])


RECIPES: dict[str, Callable[[], list[Callback]]] = {
    "ClassWeighting": lambda: [ClassWeighting()],
    "MixUp": lambda: [MixUp(alpha=0.4)],
    "CutMix": lambda: [CutMix(image_shape=(1, 8, 8))],
    "LabelSmoothing": lambda: [LabelSmoothing(0.2)],
    "all four": lambda: [
        ClassWeighting(),
        MixUp(),
        CutMix(image_shape=(1, 8, 8)),
        LabelSmoothing(0.2),
    ],
    "all four, reversed": lambda: [
        LabelSmoothing(0.2),
        CutMix(image_shape=(1, 8, 8)),
        MixUp(),
        ClassWeighting(),
    ],
}


@pytest.mark.parametrize("recipes", list(RECIPES), ids=list(RECIPES))
def test_every_way_of_writing_the_loss_trains_the_same_weights(recipes: str) -> None:
    reference = weights_after("loss_fn", RECIPES[recipes]())
    for style in ("F.cross_entropy", "local CrossEntropyLoss"):
        assert torch.equal(weights_after(style, RECIPES[recipes]()), reference), style
    assert not torch.equal(weights_after("F.cross_entropy", []), reference)  # the recipe acted
    # log_softmax + NLL: the functional call equals the NLLLoss attribute to the last bit
    nll = weights_after("NLLLoss attribute", RECIPES[recipes]())
    assert torch.equal(weights_after("F.nll_loss", RECIPES[recipes]()), nll)
    assert torch.allclose(nll, reference, atol=1e-5)  # and CE's math, to rounding


class Binary(LightningModule):
    """A binary classifier on logits of shape (N, 1), in either loss style."""

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.functional = functional
        self.layer = nn.Linear(4, 1)
        if not functional:
            self.loss_fn = nn.BCEWithLogitsLoss()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logit = self.layer(x).squeeze(1)
        if self.functional:
            return F.binary_cross_entropy_with_logits(logit, y.float())
        return self.loss_fn(logit, y.float())  # type: ignore[no-any-return]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_binary_logits_are_weighted_mixed_and_smoothed_alike() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = (torch.arange(96) % 8 == 0).long()  # 12 positives
    results = []
    for functional, recipes in ((True, True), (False, True), (True, False)):
        seed_everything(0)
        model = Binary(functional)
        callbacks: list[Callback] = (
            [ClassWeighting(), MixUp(), LabelSmoothing(0.1)] if recipes else []
        )
        loader = DataLoader(TensorDataset(x, y), batch_size=32)
        Trainer(callbacks=callbacks, **{**FIT, "limit_val_batches": 0}).fit(model, loader)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])
    assert not torch.equal(results[0], results[2])


def test_validation_test_and_predict_losses_are_never_changed() -> None:
    for style in ("F.cross_entropy", "F.nll_loss"):
        seed_everything(0)
        model = Net(style)
        callbacks: list[Callback] = [ClassWeighting(), MixUp(), LabelSmoothing(0.3)]
        trainer = Trainer(callbacks=callbacks, **FIT)
        data = digits()
        trainer.fit(model, data)
        trainer.test(model, data, verbose=False)
        trainer.predict(model, data.test_dataloader())
        assert len(model.val_losses) > 3
        for loss, by_hand in model.val_losses:
            assert torch.allclose(loss, by_hand, atol=1e-6)


class WithExtraLosses(Net):
    """A training step with an auxiliary loss and a distillation term beside the main one."""

    def __init__(self) -> None:
        super().__init__("F.cross_entropy")
        self.extras: list[tuple[Tensor, Tensor]] = []

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        z = self(x)
        teacher = torch.softmax(torch.linspace(-1, 1, 10).expand(len(y), 10), dim=1)
        rotated = (y + 1) % 10  # an auxiliary target that is not the labels
        distill = F.cross_entropy(z, teacher)
        aux = F.cross_entropy(z, rotated)
        logp = F.log_softmax(z.detach(), dim=1)
        self.extras.append((distill.detach(), -(teacher * logp).sum(1).mean()))
        self.extras.append((aux.detach(), -logp.gather(1, rotated[:, None]).mean()))
        return F.cross_entropy(z, y) + 0.1 * distill + 0.1 * aux


def test_calls_whose_target_is_not_the_labels_are_left_alone() -> None:
    seed_everything(0)
    model = WithExtraLosses()
    callbacks = [ClassWeighting(), MixUp(), LabelSmoothing(0.3)]
    Trainer(callbacks=callbacks, **FIT).fit(model, digits())
    assert len(model.extras) == 8
    for value, by_hand in model.extras:
        assert torch.allclose(value, by_hand, atol=1e-6)


@pytest.mark.parametrize(
    ("loss", "outputs"),
    [(nn.MSELoss(), 1), (nn.MSELoss(), 0), (nn.L1Loss(), 1), (nn.KLDivLoss(), 10)],
    ids=["MSE (N, 1)", "MSE (N,)", "L1", "KLDiv"],
)
@pytest.mark.parametrize("recipe", [LabelSmoothing, MixUp, ClassWeighting])
def test_losses_that_cannot_be_edited_are_refused_at_setup(
    loss: nn.Module, outputs: int, recipe: type[Callback]
) -> None:
    class Regression(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(64, max(outputs, 1))
            self.loss_fn = loss
            self.steps = 0

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            self.steps += 1
            out = self.layer(batch[0])
            return self.loss_fn(out if outputs else out.squeeze(1), batch[1].float())  # type: ignore[no-any-return]

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Regression()
    with pytest.raises(RecipeConfigError, match=rf"cannot .* loss_fn = {type(loss).__name__}"):
        Trainer(callbacks=[recipe()], **FIT).fit(model, digits())
    assert model.steps == 0  # refused before training


def test_a_functional_loss_that_cannot_be_edited_is_named_in_the_error() -> None:
    class Squared(Net):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            return F.mse_loss(self(x), F.one_hot(y, 10).float())

    for recipe in (ClassWeighting(), LabelSmoothing()):
        with pytest.raises(RecipeConfigError, match=r"F\.cross_entropy.*mse_loss"):
            Trainer(callbacks=[recipe], **FIT).fit(Squared(), digits())
        assert torch._C._len_torch_function_stack() == 0  # the mode is gone after the error


@pytest.mark.parametrize(
    ("recipe", "call", "message"),
    [
        (ClassWeighting, lambda z, y: F.cross_entropy(z, y, weight=torch.ones(10)), "weight="),
        (LabelSmoothing, lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1), "smooths"),
    ],
    ids=["weight twice", "smoothing twice"],
)
def test_a_call_that_already_does_it_is_refused(
    recipe: type[Callback], call: Callable[[Tensor, Tensor], Tensor], message: str
) -> None:
    class Already(Net):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            return call(self(batch[0]), batch[1])

    with pytest.raises(RecipeConfigError, match=message):
        Trainer(callbacks=[recipe()], **FIT).fit(Already(), digits())


def test_labels_in_a_dict_batch_and_under_label_key() -> None:
    class Dict(Net):
        def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
            return F.cross_entropy(self(batch["image"]), batch["label"].long())

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 64, generator=generator), torch.arange(64) % 10
    rows = [
        {"image": a, "label": b, "weight": torch.tensor(1.0)} for a, b in zip(x, y, strict=True)
    ]
    results = []
    for callbacks in ([MixUp(input_key="image")], []):
        seed_everything(0)
        model = Dict()
        loader = DataLoader(rows, batch_size=16)  # type: ignore[arg-type]
        Trainer(callbacks=callbacks, **{**FIT, "limit_val_batches": 0}).fit(model, loader)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert not torch.equal(results[0], results[1])

    class Triple(Net):
        def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
            x, y, _group = batch
            return F.cross_entropy(self(x), y)

    triples = DataLoader(TensorDataset(x, y, y), batch_size=16)  # (x, y, group): which one?
    with pytest.raises(RecipeConfigError, match="label_key"):
        Trainer(callbacks=[MixUp()], **{**FIT, "limit_val_batches": 0}).fit(Triple(), triples)
    Trainer(callbacks=[MixUp(label_key=1)], **{**FIT, "limit_val_batches": 0}).fit(
        Triple(), triples
    )


# ---------------------------------------------------------------- torch.compile


def _owner_with_weights() -> tuple[nn.Module, LossPath, Tensor]:
    owner = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    path = LossPath.attach(owner, object())
    weight = torch.tensor([1.0, 2.0, 3.0])
    path.set_class_weights(None, weight, None)
    return owner, path, weight


def test_a_compiled_model_traces_without_graph_breaks_and_its_loss_is_edited() -> None:
    dynamo = pytest.importorskip("torch._dynamo")
    owner, path, weight = _owner_with_weights()
    x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    compiled = torch.compile(owner, backend="aot_eager")
    dynamo.utils.counters.clear()
    path.begin_batch((x, y), (0, 0))
    try:
        loss = F.cross_entropy(compiled(x), y)
    finally:
        path.close()
    assert not dynamo.utils.counters["graph_break"]
    assert dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert torch.allclose(loss, F.cross_entropy(owner(x), y, weight=weight))
    assert path.matched == 1
    dynamo.reset()


def test_a_loss_inside_a_compiled_function_is_not_seen_and_the_step_says_so() -> None:
    dynamo = pytest.importorskip("torch._dynamo")
    owner, path, _ = _owner_with_weights()
    x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    step = torch.compile(lambda a, b: F.cross_entropy(owner(a), b), backend="aot_eager")
    path.begin_batch((x, y), (0, 0))
    step(x, y)
    path.leave_step()
    with pytest.raises(RecipeConfigError, match=r"torch\.compile"):
        path.end_batch((0, 0), produced_loss=True)
    dynamo.reset()


# ---------------------------------------------------------------- the pure math


def test_smoothing_log_probabilities_equals_smoothing_the_logits() -> None:
    generator = torch.Generator().manual_seed(0)
    z, y = torch.randn(6, 4, generator=generator), torch.tensor([0, 1, 2, 3, 0, 1])
    weight, index = torch.tensor([1.0, 2.0, 0.5, 1.5]), torch.tensor([1, 0, 3, 2, 5, 4])
    terms = [MixTerm(0.7), MixTerm(0.3, index)]
    logp = F.log_softmax(z, dim=1)
    from_logits = edited_loss(
        lambda t: F.cross_entropy(z, t, weight=weight),
        y,
        terms,
        0.2,
        lambda: F.cross_entropy(z, uniform_target("multiclass", z), weight=weight),
    )
    by_hand = (
        0.8
        * (
            0.7 * F.nll_loss(logp, y, weight=weight)
            + 0.3 * F.nll_loss(logp, y[index], weight=weight)
        )
        + 0.2 * -(weight * logp / 4).sum(1).mean()
    )
    assert torch.allclose(from_logits, by_hand, atol=1e-6)
    assert uniform_target("binary_logits", z).unique().tolist() == [0.5]


# ---------------------------------------------------------------- the path, without a Trainer


def _path(weight: Tensor | None = None) -> tuple[nn.Module, LossPath]:
    owner = nn.Linear(2, 3)
    path = LossPath.attach(owner, object())
    if weight is not None:
        path.set_class_weights(None, weight, None)
    return owner, path


def test_only_training_mode_calls_on_the_labels_or_their_derivatives_are_edited() -> None:
    weight = torch.tensor([1.0, 5.0, 0.2])
    owner, path = _path(weight)
    z, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    plain, weighted = F.cross_entropy(z, y), F.cross_entropy(z, y, weight=weight)
    path.begin_batch((z, y), (0, 0))
    try:
        assert torch.equal(F.cross_entropy(z, y), weighted)
        assert torch.equal(F.cross_entropy(z, y.view(-1).long()), weighted)  # derived
        assert torch.equal(F.cross_entropy(z, y.clone().add(0)), plain)  # computed: not labels
        assert torch.equal(F.cross_entropy(z, y[[0, 1, 2, 3]]), plain)  # indexed: not labels
        owner.eval()  # an attack or a consistency pass in eval mode
        assert torch.equal(F.cross_entropy(z, y), plain)
        owner.train()
        assert path.matched == 2
    finally:
        path.close()
    assert torch.equal(F.cross_entropy(z, y), plain)  # the mode is gone


def test_two_labels_keep_their_own_weights_and_share_the_mix() -> None:
    owner = nn.Linear(2, 3)
    first, second = object(), object()
    path = LossPath.attach(owner, first, label_key=1)
    LossPath.attach(owner, second, label_key=2)
    w1, w2 = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])
    path.set_class_weights(1, w1, None)
    path.set_class_weights(2, w2, None)
    z, y1, y2 = torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), torch.tensor([2, 2, 0, 1])
    index = torch.tensor([1, 0, 3, 2])
    expected = [
        0.75 * F.cross_entropy(z, y, weight=w) + 0.25 * F.cross_entropy(z, y[index], weight=w)
        for y, w in ((y1, w1), (y2, w2))
    ]
    path.begin_batch((z, y1, y2), (0, 0))
    path.mix(index, 0.75)
    try:
        assert torch.allclose(F.cross_entropy(z, y1), expected[0])
        assert torch.allclose(F.cross_entropy(z, y2), expected[1])
    finally:
        path.detach(first)
        path.detach(second)
    assert torch._C._len_torch_function_stack() == 0


def test_a_mixed_batch_refuses_targets_flattened_past_the_batch() -> None:
    _, path = _path()
    tokens = torch.randint(0, 3, (4, 5))  # a label per token
    path.begin_batch((torch.randn(4, 5, 2), tokens), (0, 0))
    path.mix(torch.tensor([1, 0, 3, 2]), 0.5)
    try:
        with pytest.raises(RecipeConfigError, match="one target per sample"):
            F.cross_entropy(torch.randn(20, 3), tokens.view(-1))
    finally:
        path.close()


def test_the_mode_is_active_in_the_training_step_only() -> None:
    stack: dict[str, list[int]] = {}

    def record(where: str) -> None:
        stack.setdefault(where, []).append(torch._C._len_torch_function_stack())

    class Probe(Callback):
        def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
            record("backward")

        def on_before_optimizer_step(self, *args: Any) -> None:
            record("optimizer step")

        def on_validation_batch_start(self, *args: Any) -> None:
            record("validation")

    class Recording(Net):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            record("training_step")
            return super().training_step(batch, batch_idx)

    Trainer(callbacks=[ClassWeighting(), MixUp(), Probe()], **FIT).fit(Recording(), digits())
    # the first step of each epoch in the mode; the second a labels step (no mode)
    assert stack["training_step"] == [1, 0, 1, 0]
    assert set(stack["backward"]) == set(stack["optimizer step"]) == {0}
    assert set(stack["validation"]) == {0}


def test_weights_held_by_the_loss_object_skip_the_mode_once_checked_each_epoch() -> None:
    """ClassWeighting alone on ``self.loss_fn`` costs nothing per step after a checked step."""
    depth: dict[str, list[int]] = {}

    def recording(style: str) -> Net:
        class Recording(Net):
            def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
                depth.setdefault(style, []).append(torch._C._len_torch_function_stack())
                return super().training_step(batch, batch_idx)

        return Recording(style)

    fit = {**FIT, "limit_train_batches": 3, "limit_val_batches": 0}
    weights = []
    for style in ("loss_fn", "F.cross_entropy"):
        seed_everything(0)
        model = recording(style)
        Trainer(callbacks=[ClassWeighting()], **fit).fit(model, digits())
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert depth["loss_fn"] == [1, 0, 0, 1, 0, 0]  # checked at each epoch's first step
    # the call needs weight= every step: the mode at each epoch's first, labels steps after
    assert depth["F.cross_entropy"] == [1, 0, 0, 1, 0, 0]
    assert torch.equal(weights[0], weights[1])
    seed_everything(0)
    mixed = recording("mixup")
    mixed.style = "loss_fn"
    mixed.loss_fn = nn.CrossEntropyLoss()
    Trainer(callbacks=[ClassWeighting(), MixUp()], **fit).fit(mixed, digits())
    assert depth["mixup"] == [1, 0, 0, 1, 0, 0]  # a mixed batch: checked, then labels steps


# ---------------------------------------------------------------- labels steps


LABELS: dict[str, Callable[[], list[Callback]]] = {
    "ClassWeighting": RECIPES["ClassWeighting"],
    "MixUp": RECIPES["MixUp"],
    "all four": RECIPES["all four"],
    "MixUp(p=0.5) + LabelSmoothing": lambda: [MixUp(p=0.5, seed=1), LabelSmoothing(0.1)],
}


@pytest.mark.parametrize("recipes", list(LABELS), ids=list(LABELS))
def test_labels_steps_train_the_same_weights_as_the_mode_on_every_step(
    recipes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a checked step the labels' subclass alone edits the loss: bit for bit the mode."""
    fit = {"limit_train_batches": 4, "limit_val_batches": 0}
    styles = ("F.cross_entropy", "loss_fn", "local CrossEntropyLoss")
    fast = {style: weights_after(style, LABELS[recipes](), **fit) for style in styles}
    monkeypatch.setattr(loss_path_module, "LABELS_STEPS", False)
    for style in styles:
        assert torch.equal(fast[style], weights_after(style, LABELS[recipes](), **fit)), style


def _depths(module: LightningModule, callbacks: list[Callback], data: Any = None) -> list[int]:
    """Per training step: 1 in the mode, 0 without it; the labels' type at batch end."""
    depths: list[int] = []
    step = module.training_step

    def recording(batch: Any, batch_idx: int) -> Tensor:
        depths.append(torch._C._len_torch_function_stack())
        return step(batch, batch_idx)

    class BatchEnd(Callback):
        def on_train_batch_end(
            self, trainer: Trainer, pl: Any, out: Any, batch: Any, i: int
        ) -> None:
            assert type(batch[1]) is Tensor  # the batch has its own labels back

    module.training_step = recording  # type: ignore[method-assign]
    fit = {**FIT, "limit_train_batches": 3, "limit_val_batches": 0}
    Trainer(callbacks=[*callbacks, BatchEnd()], **fit).fit(module, data or digits())
    return depths


def test_steps_the_labels_cannot_follow_stay_in_the_mode() -> None:
    """Derived labels, or a tuple batch (no slot for the view): the mode every step."""

    class Derived(Net):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            return F.cross_entropy(self(x), y.long())  # a new tensor: only the mode knows it

    class Tuples(DigitsDataModule):
        def train_dataloader(self) -> DataLoader[Any]:
            loader = super().train_dataloader()
            return DataLoader(
                loader.dataset, batch_size=32, collate_fn=lambda r: tuple(default_collate(r))
            )

    def recipes() -> list[Callback]:
        return [ClassWeighting(), MixUp(), LabelSmoothing(0.1)]

    fit = {"limit_train_batches": 3, "limit_val_batches": 0}
    reference = weights_after("F.cross_entropy", recipes(), **fit)  # checked, then labels steps
    seed_everything(0)
    module = Derived()
    assert _depths(module, recipes()) == [1] * 6
    trained = torch.cat([p.detach().flatten() for p in module.parameters()])
    assert torch.equal(trained, reference)
    seed_everything(0)
    assert _depths(Net("F.cross_entropy"), [MixUp()]) == [1, 0, 0, 1, 0, 0]  # the contrast
    seed_everything(0)
    assert _depths(Net("F.cross_entropy"), [MixUp()], Tuples(batch_size=32)) == [1] * 6


def test_a_labels_step_that_finds_no_loss_says_so() -> None:
    """A step that reaches the labels by another way than the checked one is not unedited."""

    class Changing(Net):
        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            x, y = batch
            target = y if batch_idx == 0 else y.view(-1)  # the checked step saw y itself
            return F.cross_entropy(self(x), target)

    seed_everything(0)
    with pytest.raises(RecipeConfigError, match="found no training loss"):
        _depths(Changing(), [MixUp()])
