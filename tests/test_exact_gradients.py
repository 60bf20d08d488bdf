"""Exact values of the gradient tools: alarms at their boundaries, norms by hand."""

import pytest
import torch

from lightning_recipes.gradients import adaptive_clip_, clip_by_norm_, step_norms, unitwise_norm
from lightning_recipes.gradients.anomaly import AnomalyTracker
from lightning_recipes.gradients.clipping import GradientClipper


@pytest.mark.parametrize("patience", [1, 2, 3])
def test_an_alarm_fires_at_exactly_patience_consecutive_checks(patience: int) -> None:
    tracker = AnomalyTracker(vanish=1e-3, explode=10.0, patience=patience)
    for check in range(1, patience + 2):
        found = tracker.update({"a": 1e-6, "b": 100.0, "c": 1.0})
        if check == patience:
            assert sorted((x.group, x.kind, x.checks) for x in found) == [
                ("a", "vanishing", patience),
                ("b", "exploding", patience),
            ]
        else:
            assert found == []  # not before patience, and reported once only


def test_a_norm_exactly_at_a_bound_is_inside() -> None:
    tracker = AnomalyTracker(vanish=0.5, explode=2.0, patience=1)
    assert tracker.update({"low": 0.5, "high": 2.0}) == []
    found = tracker.update({"low": 0.25, "high": 4.0})
    assert sorted((x.group, x.kind, x.bound) for x in found) == [
        ("high", "exploding", 2.0),
        ("low", "vanishing", 0.5),
    ]


def test_a_streak_restarts_after_a_check_in_bounds() -> None:
    tracker = AnomalyTracker(vanish=None, explode=1.0, patience=2)
    assert tracker.update({"g": 5.0}) == []
    assert tracker.update({"g": 0.5}) == []  # back inside: the streak starts again
    assert tracker.update({"g": 5.0}) == []
    assert [x.checks for x in tracker.update({"g": 5.0})] == [2]


def test_relative_bounds_are_the_median_of_the_window_times_the_factor() -> None:
    tracker = AnomalyTracker(vanish=0.5, explode=4.0, mode="relative", patience=1,
                             window=3, min_history=3)  # fmt: skip
    assert tracker.update({"g": 100.0}) == []  # no bounds before min_history checks
    assert tracker.update({"g": 1.0}) == []
    assert tracker.update({"g": 2.0}) == []
    # window [100, 1, 2]: median 2, bounds 1 and 8; exactly 8 is inside
    assert tracker.update({"g": 8.0}) == []
    # window [1, 2, 8]: median 2, so 8.5 is out and its bound is 8
    found = tracker.update({"g": 8.5})
    assert [(x.kind, x.bound) for x in found] == [("exploding", 8.0)]


def test_relative_bounds_wait_for_exactly_min_history_checks() -> None:
    tracker = AnomalyTracker(vanish=None, explode=2.0, mode="relative", patience=1,
                             min_history=2)  # fmt: skip
    assert tracker.update({"g": 1.0}) == []
    assert tracker.update({"g": 100.0}) == []  # one check of history: no bound yet
    assert [x.bound for x in tracker.update({"g": 200.0})] == [101.0]  # median(1, 100) * 2


def test_clip_by_norm_flags_only_a_total_strictly_above_max_norm() -> None:
    grads = [torch.tensor([3.0, 4.0])]
    assert not bool(clip_by_norm_(grads, torch.tensor(5.0), 5.0))
    assert bool(clip_by_norm_([torch.tensor([3.0, 4.0])], torch.tensor(5.0), 4.0))


@pytest.mark.parametrize(
    ("mode", "at_the_bound", "beyond"),
    [
        ("norm", [3.0, 4.0], [3.0, 4.5]),  # total norm 5 vs max 5
        ("value", [5.0, -5.0], [5.0, -5.5]),  # largest |g| 5 vs max 5
    ],
)
def test_the_clipper_counts_only_steps_beyond_the_bound(
    mode: str, at_the_bound: list[float], beyond: list[float]
) -> None:
    clipper = GradientClipper(mode, 5.0)  # type: ignore[arg-type]
    for values in (at_the_bound, beyond, at_the_bound):
        param = torch.nn.Parameter(torch.zeros(2))
        param.grad = torch.tensor(values)
        clipper([param], [param.grad], step_norms([param.grad]))
    assert clipper.clipped_steps == 1


def test_unitwise_norm_is_per_output_unit() -> None:
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    torch.testing.assert_close(unitwise_norm(w), torch.tensor([[5.0], [1.0]]))
    torch.testing.assert_close(unitwise_norm(torch.tensor([3.0, 4.0])), torch.tensor(5.0))


def test_adaptive_clipping_caps_each_unit_at_factor_times_its_weight_norm() -> None:
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # unit norms 5 and 1
    g = torch.tensor([[6.0, 8.0], [0.05, 0.0]])  # unit norms 10 and 0.05
    assert bool(adaptive_clip_([w], [g], clip_factor=0.1))
    torch.testing.assert_close(g, torch.tensor([[0.3, 0.4], [0.05, 0.0]]), atol=1e-6, rtol=0)


def test_relative_vanishing_bound_is_the_median_times_the_factor() -> None:
    tracker = AnomalyTracker(vanish=0.25, explode=None, mode="relative", patience=1,
                             window=3, min_history=3)  # fmt: skip
    for value in (4.0, 8.0, 6.0):  # median 6: the bound is 1.5
        assert tracker.update({"g": value}) == []
    assert tracker.update({"g": 1.5}) == []  # at the bound: inside; window [8, 6, 1.5]
    found = tracker.update({"g": 1.25})
    assert [(x.kind, x.bound) for x in found] == [("vanishing", 1.5)]
