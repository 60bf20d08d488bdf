"""WeightPenalty: the math, and that it trains exactly as an explicit loss term."""

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn

from lightning_recipes.data import DigitsDataModule
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.regularization import (
    WeightPenalty,
    add_penalty_grad_,
    no_decay_param_groups,
    penalty_value,
    select_modules,
    selected_parameters,
)

# ----------------------------------------------------------------------------- math


def test_penalty_value_matches_the_formula() -> None:
    torch.manual_seed(0)
    params = [torch.randn(3, 4), torch.randn(5)]
    expected = sum(0.3 * p.abs().sum() + 0.2 * p.pow(2).sum() for p in params)
    assert torch.allclose(penalty_value(params, 0.3, 0.2), expected)
    assert penalty_value(params, 0.0, 0.0) == 0
    assert penalty_value([], 1.0, 1.0) == 0


@pytest.mark.parametrize(("l1", "l2"), [(0.1, 0.0), (0.0, 0.1), (0.05, 0.2)])
@pytest.mark.parametrize("scaled", [False, True])
def test_penalty_grad_is_the_autograd_gradient(l1: float, l2: float, scaled: bool) -> None:
    torch.manual_seed(0)
    params = [torch.randn(3, 4, requires_grad=True), torch.randn(5, requires_grad=True)]
    with torch.no_grad():
        params[0][0, 0] = 0.0  # sign(0) = 0, as autograd's abs gradient
    (0.5 * 3.0 * penalty_value(params, l1, l2)).backward() if scaled else penalty_value(
        params, l1, l2
    ).backward()
    grads = [torch.zeros_like(p) for p in params]
    scale = torch.tensor(3.0) if scaled else None
    add_penalty_grad_([p.detach() for p in params], grads, l1, l2, 0.5 if scaled else 1.0, scale)
    for got, p in zip(grads, params, strict=True):
        assert p.grad is not None
        assert torch.allclose(got, p.grad, atol=1e-6), (got, p.grad)


def test_default_selection_is_kernels_not_biases_nor_norms() -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3), nn.LayerNorm(3)
    )
    names = [n for n, _ in selected_parameters(select_modules(net))]
    assert names == ["0.weight", "3.weight"]
    with_bias = [n for n, _ in selected_parameters(select_modules(net), biases=True)]
    assert with_bias == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert [n for n, _ in select_modules(net, ["LayerNorm"])] == ["4"]
    assert [n for n, _ in select_modules(net, names=["3"])] == ["3"]


def test_no_decay_groups() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Embedding(3, 4), nn.Linear(4, 2))
    decay, keep = no_decay_param_groups(net, 0.1)
    assert decay["weight_decay"] == 0.1
    assert keep["weight_decay"] == 0.0
    decayed = {id(p) for p in decay["params"]}
    assert decayed == {id(net[0].weight), id(net[3].weight)}
    assert len(decay["params"]) + len(keep["params"]) == len(list(net.parameters()))
    net[0].weight.requires_grad_(False)
    groups = no_decay_param_groups(net, 0.1, only_trainable=True, no_decay_names=["3.weight"])
    assert [g["weight_decay"] for g in groups] == [0.0]
    torch.optim.AdamW(no_decay_param_groups(net, 0.1), lr=1e-3)  # accepted by torch


# ----------------------------------------------------------------------------- training


class Net(LightningModule):
    """A small MLP; ``explicit`` adds the penalty to the loss by hand (the reference)."""

    def __init__(self, explicit: tuple[float, float] | None = None, unused: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh()
        )
        self.head = nn.Linear(32, 10)
        self.spare = nn.Linear(3, 3) if unused else None  # never used in forward
        self.explicit = explicit

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))  # type: ignore[no-any-return]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        if self.explicit is not None:
            l1, l2 = self.explicit
            layers = [self.body[0], self.body[3], self.head]
            if self.spare is not None:
                layers.append(self.spare)
            for layer in layers:
                loss = loss + l1 * layer.weight.abs().sum() + l2 * layer.weight.pow(2).sum()
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def _fit(
    tmp_path: Path,
    explicit: tuple[float, float] | None,
    callbacks: list[Any],
    unused: bool = False,
    **kwargs: Any,
) -> Net:
    seed_everything(0)
    model = Net(explicit, unused)
    args: dict[str, Any] = {
        "accelerator": "cpu",
        "max_epochs": 2,
        "limit_train_batches": 5,
        "limit_val_batches": 0,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "logger": False,
        "default_root_dir": tmp_path,
        **kwargs,
    }
    Trainer(callbacks=callbacks, **args).fit(model, DigitsDataModule(batch_size=32))
    return model


def _close(a: nn.Module, b: nn.Module, atol: float = 1e-6) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if x.is_floating_point():
            assert torch.allclose(x, y, atol=atol, rtol=1e-5), (name, (x - y).abs().max())
        else:
            assert torch.equal(x, y), name


@pytest.mark.parametrize(
    ("l1", "l2", "kwargs"),
    [
        (0.0, 1e-2, {}),
        (1e-3, 0.0, {}),
        (1e-3, 1e-2, {"accumulate_grad_batches": 3}),
        (0.0, 0.1, {"precision": "bf16-mixed"}),
        (1e-3, 5e-3, {"gradient_clip_val": 0.5, "accumulate_grad_batches": 2}),
    ],
    ids=["l2", "l1", "elastic-accumulate3", "bf16-amp", "clip-accumulate2"],
)
def test_trains_as_an_explicit_loss_term(
    tmp_path: Path, l1: float, l2: float, kwargs: dict[str, Any]
) -> None:
    reference = _fit(tmp_path, (l1, l2), [], **kwargs)
    with_callback = _fit(tmp_path, None, [WeightPenalty(l1=l1, l2=l2)], **kwargs)
    without = _fit(tmp_path, None, [], **kwargs)
    if "precision" in kwargs:  # bf16 matmuls: the two graphs round differently
        diff = (reference.head.weight - with_callback.head.weight).abs().max()
        effect = (reference.head.weight - without.head.weight).abs().max()
        assert diff < 0.05 * effect, (diff, effect)
    else:
        _close(reference, with_callback, 1e-5)
        effect = (reference.head.weight - without.head.weight).abs().max()
        assert effect > 1e-3  # the penalty did change training


def test_unused_layer_gets_the_penalty_gradient(tmp_path: Path) -> None:
    reference = _fit(tmp_path, (0.0, 0.05), [], unused=True)
    penalty = WeightPenalty(l2=0.05)
    with_callback = _fit(tmp_path, None, [penalty], unused=True)
    _close(reference, with_callback, 1e-5)
    assert "spare.weight" in penalty.layers


def test_frozen_and_per_layer(tmp_path: Path) -> None:
    per_layer = {"head": {"l1": 0.01}, "body.3": {"l2": 0.0}}
    penalty = WeightPenalty(l2=0.1, per_layer=per_layer)
    model = _fit(tmp_path, None, [penalty])
    assert penalty.layers == {"body.0.weight": (0.0, 0.1), "head.weight": (0.01, 0.0)}
    assert model.head.weight.grad is not None


def test_logs_every_n_steps_and_reports(tmp_path: Path) -> None:
    penalty = WeightPenalty(l2=1e-2, log_every_n_steps=3)
    logger = CSVLogger(tmp_path, name="csv")
    model = _fit(tmp_path, None, [penalty], logger=logger, accumulate_grad_batches=2)
    # 2 epochs x 5 batches, accumulating 2 -> 3 optimizer steps per epoch: steps 0..5.
    assert [s for s, _ in penalty.history] == [0, 3]
    final = float(penalty.value())
    expected = 1e-2 * sum(
        float(m.weight.pow(2).sum()) for m in (model.body[0], model.body[3], model.head)
    )
    assert math.isclose(final, expected, rel_tol=1e-5)
    logger.save()
    text = (Path(logger.log_dir) / "metrics.csv").read_text()
    assert "penalty" in text
    summary = penalty.run_summary()
    assert summary.facts["penalised parameters"] == 3
    assert summary.facts["backward passes"] == 10


def test_refuses_manual_optimization(tmp_path: Path) -> None:
    class Manual(Net):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
            return torch.zeros(())

    trainer = Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        callbacks=[WeightPenalty(l2=0.1)],
        default_root_dir=tmp_path,
    )
    with pytest.raises(RecipeConfigError, match="manual optimization"):
        trainer.fit(Manual(), DigitsDataModule(batch_size=32))


def test_nothing_selected_fails_at_fit_start(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="types"):
        _fit(tmp_path, None, [WeightPenalty(l2=0.1, types=["Conv2d"])])


BAD: list[tuple[dict[str, Any], str]] = [
    ({}, "l2"),
    ({"l1": -1.0}, "l1"),
    ({"l2": float("nan")}, "l2"),
    ({"l2": float("inf")}, "l2"),
    ({"l2": True}, "l2"),
    ({"l2": "0.1"}, "l2"),
    ({"l2": 0.1, "types": "Linear"}, "types"),
    ({"l2": 0.1, "types": []}, "types"),
    ({"l2": 0.1, "types": [3]}, "types"),
    ({"l2": 0.1, "names": "head"}, "names"),
    ({"l2": 0.1, "exclude": [""]}, "exclude"),
    ({"l2": 0.1, "biases": 1}, "biases"),
    ({"l2": 0.1, "per_layer": {"head": 0.1}}, "per_layer"),
    ({"l2": 0.1, "per_layer": {"head": {"l3": 0.1}}}, "per_layer"),
    ({"l2": 0.1, "per_layer": {"head": {"l2": -0.1}}}, "per_layer"),
    ({"per_layer": {"head": {"l2": 0.0}}}, "l2"),
    ({"l2": 0.1, "log_every_n_steps": 0}, "log_every_n_steps"),
    ({"l2": 0.1, "log_every_n_steps": 2.0}, "log_every_n_steps"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD)
def test_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        WeightPenalty(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"weight_decay": -1}, "weight_decay"),
        ({"weight_decay": "x"}, "weight_decay"),
        ({"weight_decay": 0.1, "no_decay_types": "LayerNorm"}, "no_decay_types"),
        ({"weight_decay": 0.1, "no_decay_names": "bias"}, "no_decay_names"),
        ({"weight_decay": True}, "weight_decay"),
        ({"weight_decay": float("nan")}, "weight_decay"),
    ],
)
def test_no_decay_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        no_decay_param_groups(nn.Linear(2, 2), **kwargs)


def test_two_penalties_keep_separate_state() -> None:
    assert WeightPenalty(l2=0.1).state_key != WeightPenalty(l2=0.2).state_key
    assert WeightPenalty(l2=0.1).state_key != WeightPenalty(l2=0.1, names=["head"]).state_key


def test_classifier_can_leave_biases_and_norms_undecayed() -> None:
    from lightning_recipes.modules import MLP, Classifier

    backbone = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU())
    backbone.out_features = 16  # type: ignore[assignment]
    model = Classifier(backbone, 10, weight_decay=0.1, decay_biases_and_norms=False)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    decays = [(g["weight_decay"], len(g["params"])) for g in optimizer.param_groups]
    assert decays == [(0.1, 2), (0.0, 4)]  # two kernels; two biases and the BN pair
    plain = Classifier(MLP(64, hidden=(16,)), 10, weight_decay=0.1).configure_optimizers()
    assert isinstance(plain, torch.optim.Optimizer)
    assert len(plain.param_groups) == 1
    with pytest.raises(RecipeConfigError, match="decay_biases_and_norms"):
        Classifier(MLP(64, hidden=(16,)), 10, decay_biases_and_norms=1)  # type: ignore[arg-type]
