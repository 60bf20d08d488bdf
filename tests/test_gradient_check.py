"""check_gradients and BatchMixingCheck catch what they claim and pass clean models."""

from collections.abc import Callable
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from torch import nn

from lightning_recipes import RecipeConfigError
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.gradients import (
    BatchMixingCheck,
    BatchMixingError,
    batch_mixing,
    check_gradients,
)
from lightning_recipes.gradients.check import evaluation_mode
from lightning_recipes.modules import MLP, Classifier


class _WrongSquare(torch.autograd.Function):
    """x**2 with a backward that forgets the factor 2."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * x  # should be 2 * x


class _Buggy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 3)
        self.second = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(_WrongSquare.apply(self.first(x)))


def test_check_gradients_passes_a_correct_model() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3), nn.LayerNorm(3))
    report = check_gradients(model, torch.randn(2, 5))
    assert report.ok
    assert report.mismatches == []
    assert [r.name for r in report.rows] == [
        "input",
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "3.weight",
        "3.bias",
    ]
    assert "OK" in str(report)
    assert next(model.parameters()).dtype == torch.float32  # the model itself is untouched


def test_check_gradients_finds_a_wrong_backward() -> None:
    torch.manual_seed(0)
    report = check_gradients(_Buggy(), torch.randn(2, 4))
    assert not report.ok
    bad = {r.name for r in report.mismatches}
    assert bad == {"input", "first.weight", "first.bias"}  # upstream of the bad op only
    assert {"second.weight", "second.bias"}.isdisjoint(bad)
    worst = report.mismatches[0]
    assert worst.numeric == pytest.approx(2 * worst.autograd, rel=1e-3)  # the missing 2
    assert "MISMATCH" in str(report)
    assert "first.weight" in str(report)


def test_check_gradients_samples_large_tensors_and_rejects_integer_input() -> None:
    report = check_gradients(nn.Linear(50, 40), torch.randn(2, 50), max_entries=10)
    assert [r.checked for r in report.rows] == [10, 10, 10]
    with pytest.raises(RecipeConfigError, match="Invalid example_input="):
        check_gradients(nn.Embedding(5, 2), torch.tensor([1, 2]))


class _MixesBatch(nn.Module):
    """The classic bug: a view that moves features across the batch dimension."""

    def __init__(self) -> None:
        super().__init__()
        self.out_features = 16
        self.linear = nn.Linear(64, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = x.t().contiguous().view(x.shape[0], -1)  # should be x.view(x.shape[0], -1)
        return self.linear(mixed)


def test_batch_mixing_function() -> None:
    x = torch.randn(6, 64)
    assert batch_mixing(_MixesBatch(), x) == {0: [1, 2, 3, 4, 5], 5: [0, 1, 2, 3, 4]}
    clean = MLP(64, hidden=(8,), batch_norm=True)
    with evaluation_mode(clean):
        assert batch_mixing(clean, x) == {0: [], 5: []}
    clean.train()
    assert batch_mixing(clean, x)[0] == [1, 2, 3, 4, 5]  # train-mode BatchNorm mixes
    assert batch_mixing(lambda t: t.reshape(-1), x)[0] == [1, 2, 3, 4, 5]  # batch dim lost


def _fit_with_check(
    make_trainer: Callable[..., Trainer], backbone: nn.Module, **kw: Any
) -> Classifier:
    seed_everything(0)
    model = Classifier(backbone, num_classes=10)
    trainer = make_trainer(
        callbacks=[BatchMixingCheck(**kw)], limit_train_batches=2, limit_val_batches=0
    )
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
    return model


def test_batch_mixing_check_raises_on_a_mixing_model(make_trainer: Callable[..., Trainer]) -> None:
    with pytest.raises(
        BatchMixingError, match=r"output of sample 0 depends on input sample\(s\) \[1, 2"
    ):
        _fit_with_check(make_trainer, _MixesBatch())


def test_batch_mixing_check_passes_batchnorm_and_restores_train_mode(
    make_trainer: Callable[..., Trainer],
) -> None:
    check = BatchMixingCheck()
    seed_everything(0)
    model = Classifier(MLP(64, hidden=(16,), batch_norm=True, dropout=0.2), num_classes=10)
    modes: list[bool] = []

    class _Spy(BatchMixingCheck):
        def on_train_start(self, trainer: Trainer, pl_module: Any) -> None:
            check.on_train_start(trainer, pl_module)
            modes.extend(m.training for m in pl_module.modules())

    make_trainer(callbacks=[_Spy()], limit_train_batches=2, limit_val_batches=0).fit(
        model, datamodule=DigitsDataModule(batch_size=16)
    )
    assert check.result == {0: [], 15: []}
    assert modes
    assert all(modes)


def test_batch_mixing_check_warn_mode_and_bad_arguments(
    make_trainer: Callable[..., Trainer],
) -> None:
    with pytest.warns(UserWarning, match="mixes samples across the batch"):
        _fit_with_check(make_trainer, _MixesBatch(), on_mixing="warn")
    with pytest.raises(RecipeConfigError, match="Invalid on_mixing="):
        BatchMixingCheck(on_mixing="ignore")  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="Invalid samples="):
        BatchMixingCheck(samples=())
    with pytest.raises(RecipeConfigError, match="Invalid input_fn=None"):
        BatchMixingCheck()._inputs({"x": torch.zeros(2)})


def test_batch_mixing_check_leaves_the_run_unchanged(make_trainer: Callable[..., Trainer]) -> None:
    def train(callbacks: list[Any]) -> dict[str, torch.Tensor]:
        seed_everything(0)
        model = Classifier(MLP(64, hidden=(32,), dropout=0.3), num_classes=10)
        trainer = make_trainer(callbacks=callbacks, limit_train_batches=5, limit_val_batches=0)
        trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
        return model.state_dict()

    plain, checked = train([]), train([BatchMixingCheck()])
    for name, value in plain.items():
        assert torch.equal(value, checked[name]), name  # same dropout masks, same weights


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"on_mixing": "nope"}, "on_mixing"),
        ({"on_mixing": None}, "on_mixing"),
        ({"on_mixing": True}, "on_mixing"),
        ({"samples": ()}, "samples"),
        ({"samples": []}, "samples"),
        ({"samples": "01"}, "samples"),
        ({"samples": 5}, "samples"),
        ({"samples": None}, "samples"),
        ({"samples": (0, 1.5)}, "samples"),
        ({"samples": (True,)}, "samples"),
        ({"input_fn": 42}, "input_fn"),
        ({"input_fn": "batch[0]"}, "input_fn"),
    ],
)
def test_batch_mixing_check_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        BatchMixingCheck(**kwargs)


def test_two_batch_mixing_checks_have_distinct_state_keys() -> None:
    assert BatchMixingCheck().state_key != BatchMixingCheck(samples=(1,)).state_key
    assert BatchMixingCheck().state_key != BatchMixingCheck(on_mixing="warn").state_key


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        ((nn.Linear(3, 2), [[1.0, 2.0, 3.0]]), {}, "example_input"),
        ((nn.Linear(3, 2), torch.ones(2, 3, dtype=torch.long)), {}, "example_input"),
        ((lambda x: x, torch.ones(2, 3)), {}, "module"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"eps": 0.0}, "eps"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"eps": -1e-6}, "eps"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"eps": "1e-6"}, "eps"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"atol": -1.0}, "atol"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"rtol": float("nan")}, "rtol"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"max_entries": 0}, "max_entries"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"max_entries": 2.5}, "max_entries"),
        ((nn.Linear(3, 2), torch.ones(2, 3)), {"seed": 1.5}, "seed"),
    ],
)
def test_check_gradients_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        check_gradients(*args, **kwargs)
