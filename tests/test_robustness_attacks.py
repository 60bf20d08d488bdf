"""FGSM and PGD: the properties every correct attack has (issue 17, first part)."""

from typing import Any

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from lightning_recipes import RecipeConfigError
from lightning_recipes.robustness import correct_counts, fgsm, pgd, robust_accuracy


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model, x[:256], y[:256]


def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def test_pgd_hurts_more_than_fgsm_which_hurts_more_than_nothing(trained: Any) -> None:
    model, x, y = trained
    generator = torch.Generator().manual_seed(0)
    clean = loss(model, x, y)
    one_step = loss(model, fgsm(model, x, y, 0.1, clip=(0.0, 1.0)), y)
    many = loss(model, pgd(model, x, y, 0.1, steps=10, clip=(0.0, 1.0), generator=generator), y)
    assert clean < one_step < many


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("random_start", [True, False])
def test_the_perturbation_stays_in_the_ball_and_the_range(
    trained: Any, norm: str, random_start: bool
) -> None:
    model, x, y = trained
    eps = 0.2 if norm == "linf" else 1.0
    adv = pgd(
        model, x, y, eps, norm=norm, clip=(0.0, 1.0), random_start=random_start,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    delta = adv - x
    size = delta.abs().amax(dim=1) if norm == "linf" else delta.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(adv.min()) >= 0.0
    assert float(adv.max()) <= 1.0
    assert float(size.mean()) > 0.1 * eps  # it did move


@pytest.mark.parametrize("random_start", [True, False])
def test_fgsm_stays_in_the_ball_and_the_range(trained: Any, random_start: bool) -> None:
    model, x, y = trained
    generator = torch.Generator().manual_seed(2)
    adv = fgsm(model, x, y, 0.2, clip=(0.0, 1.0), random_start=random_start, generator=generator)
    delta = adv - x
    assert float(delta.abs().max()) <= 0.2 + 1e-6  # the 1.25 eps step is projected back
    assert float(adv.min()) >= 0.0
    assert float(adv.max()) <= 1.0
    assert float(delta.abs().mean()) > 0.02  # it did move


def test_zero_epsilon_is_the_identity(trained: Any) -> None:
    model, x, y = trained
    assert torch.equal(fgsm(model, x, y, 0.0), x)
    assert torch.equal(pgd(model, x, y, 0.0), x)


def test_attacks_touch_neither_gradients_nor_modes_nor_the_global_rng(trained: Any) -> None:
    model, x, y = trained
    model.train()
    state = torch.get_rng_state()
    with torch.inference_mode():  # as inside trainer.validate/test
        pgd(model, x, y, 0.1, steps=3, generator=torch.Generator().manual_seed(0))
        fgsm(model, x, y, 0.1, random_start=True, generator=torch.Generator().manual_seed(0))
    assert all(p.grad is None for p in model.parameters())
    assert all(m.training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), state)


def test_the_attack_runs_in_eval_mode(trained: Any) -> None:
    model, x, y = trained
    model.train()  # dropout on: a train-mode attack would be random
    first = pgd(model, x, y, 0.1, steps=3, random_start=False)
    second = pgd(model, x, y, 0.1, steps=3, random_start=False)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_accuracy_under_attack_is_scored_in_eval_mode_and_leaves_the_model_alone(
    trained: Any, name: str
) -> None:
    _, x, y = trained
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10)
    )
    model.train()  # as after trainer.test: dropout on, BatchNorm on batch statistics
    model[3].eval()  # a submodule with its own mode keeps it
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    settings: dict[str, Any] = {"steps": 2} if name == "pgd" else {}
    results = []
    for _ in range(2):
        settings["generator"] = torch.Generator().manual_seed(0)
        results.append(robust_accuracy(model, x, y, [0.0, 0.1], name, **settings))
        assert [m.training for m in model] == [True, True, True, False, True]
        for key, buffer in model.named_buffers():
            assert torch.equal(buffer, buffers[key]), key
    model.eval()
    settings["generator"] = torch.Generator().manual_seed(0)
    assert results == [robust_accuracy(model, x, y, [0.0, 0.1], name, **settings)] * 2
    counts = correct_counts(model.train(), x, y, [0.0], name)
    assert float(counts[0]) / len(y) == results[0][0.0]


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"eps": -0.1}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"eps": "0.1"}, "eps"),
        ({"eps": True}, "eps"),
        ({"eps": 0.1, "clip": (1.0, 0.0)}, "clip"),
        ({"eps": 0.1, "clip": (0.0,)}, "clip"),
        ({"eps": 0.1, "steps": 0}, "steps"),
        ({"eps": 0.1, "steps": 2.5}, "steps"),
        ({"eps": 0.1, "norm": "l1"}, "norm"),
        ({"eps": 0.1, "step_size": 0.0}, "step_size"),
    ],
)
def test_bad_arguments_are_refused(trained: Any, kwargs: dict[str, Any], argument: str) -> None:
    model, x, y = trained
    with pytest.raises(RecipeConfigError, match=argument):
        pgd(model, x, y, **kwargs)


def test_the_attack_is_named_attack_as_in_the_callbacks_and_name_still_works(
    trained: Any,
) -> None:
    model, x, y = trained
    settings: dict[str, Any] = {"steps": 2, "generator": torch.Generator().manual_seed(0)}
    current = robust_accuracy(model, x, y, [0.0, 0.1], attack="fgsm", **settings)
    with pytest.warns(DeprecationWarning, match=r"robust_accuracy\(name=...\).*pass attack="):
        old = robust_accuracy(model, x, y, [0.0, 0.1], name="fgsm", **settings)
    assert old == current != robust_accuracy(model, x, y, [0.0, 0.1], attack="pgd", **settings)
    with pytest.warns(DeprecationWarning, match=r"correct_counts\(name=...\)"):
        assert torch.equal(
            correct_counts(model, x, y, [0.1], name="fgsm"),
            correct_counts(model, x, y, [0.1], attack="fgsm"),
        )
    with pytest.raises(RecipeConfigError, match="not both"):
        robust_accuracy(model, x, y, [0.1], attack="fgsm", name="pgd")
