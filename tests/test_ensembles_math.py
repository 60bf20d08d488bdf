"""The ensemble math: averaged probabilities and the cyclic cosine schedule."""

import math

import pytest
import torch

from lightning_recipes.ensembles import (
    average_probabilities,
    cosine_cycle_lr,
    cycle_end_epochs,
)
from lightning_recipes.lr import snapshot_schedule


def test_average_is_mean_of_softmax_and_a_distribution() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = [torch.randn(7, 5, generator=gen) * s for s in (0.5, 3.0, 10.0)]
    probs = average_probabilities(logits)
    expected = torch.stack([torch.softmax(x, -1) for x in logits]).mean(0)
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(-1), torch.ones(7))
    assert (probs >= 0).all()


def test_average_of_one_member_is_its_softmax_and_differs_from_logit_mean() -> None:
    x = torch.tensor([[2.0, 0.0, -1.0]])
    torch.testing.assert_close(average_probabilities([x]), torch.softmax(x, -1))
    a, b = torch.tensor([[20.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # Averaging probabilities is not averaging logits.
    assert not torch.allclose(average_probabilities([a, b]), torch.softmax((a + b) / 2, -1))


def test_weights_are_normalised_and_zero_weight_drops_a_member() -> None:
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(average_probabilities([a, b], [2.0, 0.0]), torch.softmax(a, -1))
    torch.testing.assert_close(
        average_probabilities([a, b], [3.0, 1.0]),
        0.75 * torch.softmax(a, -1) + 0.25 * torch.softmax(b, -1),
    )


def test_half_precision_logits_average_in_float32() -> None:
    probs = average_probabilities([torch.randn(2, 3).half(), torch.randn(2, 3).half()])
    assert probs.dtype == torch.float32


def test_cosine_cycle_matches_closed_form_and_restarts() -> None:
    for step in range(12):
        t = step % 4
        expected = 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * t / 4)) / 2
        assert cosine_cycle_lr(step, 4, 0.1, 0.01) == pytest.approx(expected)
    assert cosine_cycle_lr(4, 4, 0.1) == cosine_cycle_lr(0, 4, 0.1) == 0.1


def test_cycle_end_epochs() -> None:
    assert cycle_end_epochs(2, 6) == [1, 3, 5]
    assert cycle_end_epochs(4, 3) == []
    assert cycle_end_epochs(1, 3, skip_cycles=2) == [2]


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_snapshot_schedule_follows_the_cosine_cycle(interval: str) -> None:
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    steps = 3 if interval == "step" else None
    config = snapshot_schedule(opt, 2, eta_min=0.001, interval=interval, steps_per_epoch=steps)  # type: ignore[arg-type]
    assert config["interval"] == interval
    assert config["frequency"] == 1
    scheduler = config["scheduler"]
    period = 2 * (steps or 1)
    for step in range(3 * period):
        assert opt.param_groups[0]["lr"] == pytest.approx(cosine_cycle_lr(step, period, 0.1, 0.001))
        opt.step()
        scheduler.step()


def test_snapshot_schedule_moved_to_lr_and_its_old_paths_still_work_deprecated() -> None:
    import importlib

    from lightning_recipes import lr

    for module in ("lightning_recipes.ensembles", "lightning_recipes.ensembles.schedule"):
        with pytest.warns(DeprecationWarning, match=r"import it from lightning_recipes\.lr"):
            old = importlib.import_module(module).snapshot_schedule
        assert old is lr.snapshot_schedule
    with pytest.raises(AttributeError):
        importlib.import_module("lightning_recipes.ensembles").no_such_name  # noqa: B018
