"""Pure gradient math against naive references: norms, groups, clipping, anomalies."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_recipes.gradients import (
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    combine_norms,
    dense_grads,
    grad_stats,
    unitwise_norm,
    zero_if_,
)
from lightning_recipes.gradients.anomaly import AnomalyTracker

shapes = st.lists(
    st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=6
)
norm_types = st.sampled_from([1.0, 2.0, 3.0, math.inf])


def _tensors(shape_list: list[tuple[int, ...]], seed: int, zero_share: float) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    out = []
    for shape in shape_list:
        t = torch.randn(shape, generator=generator) * 10 ** torch.randint(
            -3, 3, (), generator=generator
        )
        t[torch.rand(shape, generator=generator) < zero_share] = 0.0
        out.append(t)
    return out


def _naive_norm(tensors: list[torch.Tensor], p: float) -> float:
    flat = torch.cat([t.reshape(-1).double() for t in tensors])
    if math.isinf(p):
        return float(flat.abs().max()) if flat.numel() else 0.0
    return float(flat.abs().pow(p).sum() ** (1 / p))


@settings(max_examples=120, deadline=None)
@given(shape_list=shapes, p=norm_types, seed=st.integers(0, 10_000), zeros=st.floats(0, 0.9))
def test_grad_stats_match_a_naive_reference(
    shape_list: list[tuple[int, ...]], p: float, seed: int, zeros: float
) -> None:
    grads = _tensors(shape_list, seed, zeros)
    n_groups = 3
    group_of = [i % n_groups for i in range(len(grads))]
    stats = grad_stats(grads, p, torch.tensor(group_of), n_groups)
    assert stats.total.item() == pytest.approx(_naive_norm(grads, p), rel=1e-4, abs=1e-6)
    for g in range(n_groups):
        members = [t for t, k in zip(grads, group_of, strict=True) if k == g]
        expected = _naive_norm(members, p) if members else 0.0
        assert stats.groups[g].item() == pytest.approx(expected, rel=1e-4, abs=1e-6)
    for t, norm in zip(grads, stats.per_tensor.tolist(), strict=True):
        assert norm == pytest.approx(_naive_norm([t], p), rel=1e-4, abs=1e-6)
    assert stats.max_abs.item() == pytest.approx(_naive_norm(grads, math.inf), rel=1e-6)
    flat = torch.cat([t.reshape(-1) for t in grads])
    assert stats.zero_fraction.item() == pytest.approx(float((flat == 0).double().mean()), abs=1e-6)
    assert bool(stats.finite)


def test_non_finite_gradients_are_flagged() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        stats = grad_stats([torch.ones(3), torch.tensor([1.0, bad])])
        assert not bool(stats.finite)
        assert not math.isfinite(stats.per_tensor[1].item())
        assert stats.per_tensor[0].item() > 0


def test_dense_grads_skips_none_and_densifies_sparse() -> None:
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    linear = torch.nn.Linear(3, 1)
    unused = torch.nn.Parameter(torch.ones(2))
    linear(embedding(torch.tensor([1, 1, 4]))).sum().backward()
    params = [embedding.weight, unused, linear.weight, linear.bias]
    grads, positions = dense_grads(params)
    assert positions == [0, 2, 3]
    dense_embedding_grad = embedding.weight.grad.to_dense()  # type: ignore[union-attr]
    stats = grad_stats(grads)
    expected = _naive_norm([dense_embedding_grad, linear.weight.grad, linear.bias.grad], 2.0)  # type: ignore[list-item]
    assert stats.total.item() == pytest.approx(expected, rel=1e-5)


def test_combine_norms_empty_groups_are_zero() -> None:
    assert combine_norms(torch.tensor([2.0]), 2.0, torch.tensor([1]), 3).tolist() == [0.0, 2.0, 0.0]
    assert combine_norms(torch.tensor([2.0, 5.0]), math.inf, torch.tensor([0, 0]), 1).tolist() == [
        5.0
    ]


@settings(max_examples=80, deadline=None)
@given(shape_list=shapes, seed=st.integers(0, 10_000), max_norm=st.floats(1e-3, 1e3))
def test_clip_by_norm_caps_the_total_norm(
    shape_list: list[tuple[int, ...]], seed: int, max_norm: float
) -> None:
    grads = _tensors(shape_list, seed, 0.0)
    before = _naive_norm(grads, 2.0)
    directions = [t / (t.norm() + 1e-30) for t in grads]
    clipped = clip_by_norm_(grads, grad_stats(grads).total, max_norm)
    after = _naive_norm(grads, 2.0)
    assert bool(clipped) == (before > max_norm)
    assert after <= max_norm * (1 + 1e-5) or after == pytest.approx(before, rel=1e-5)
    if before <= max_norm:
        assert after == pytest.approx(before, rel=1e-5)  # untouched below the bound
    for t, d in zip(grads, directions, strict=True):  # directions kept
        if t.norm() > 0:
            assert torch.allclose(t / t.norm(), d, atol=1e-4)


def test_clip_by_value_and_zero_if() -> None:
    grads = [torch.tensor([-5.0, 0.1, 3.0]), torch.tensor([[7.0]])]
    clip_by_value_(grads, 1.0)
    assert grads[0].tolist() == [-1.0, pytest.approx(0.1), 1.0]
    assert grads[1].item() == 1.0
    zero_if_(grads, torch.tensor(False))
    assert grads[1].item() == 1.0
    bad = [torch.tensor([math.nan, math.inf, 2.0])]
    zero_if_(bad, torch.tensor(True))
    assert bad[0].tolist() == [0.0, 0.0, 0.0]


def test_adaptive_clipping_bounds_each_unit() -> None:
    torch.manual_seed(0)
    weight = torch.randn(4, 6)
    grad = torch.randn(4, 6)
    grad[0] *= 100  # only unit 0 is too large
    original = grad.clone()
    factor = 0.5
    clipped = adaptive_clip_([weight], [grad], clip_factor=factor)
    ratio = (unitwise_norm(grad) / unitwise_norm(weight)).flatten()
    assert bool(clipped)
    assert ratio[0].item() == pytest.approx(factor, rel=1e-4)
    small = (unitwise_norm(original) / unitwise_norm(weight)).flatten() <= factor
    assert torch.equal(grad[small], original[small])  # units within bounds untouched
    assert (ratio <= factor * (1 + 1e-5)).all()


def test_anomaly_tracker_patience_reports_once_and_resumes() -> None:
    tracker = AnomalyTracker(vanish=1e-6, explode=10.0, patience=3)
    assert tracker.update({"a": 1e-9, "b": 100.0}) == []
    assert tracker.update({"a": 1e-9, "b": 1.0}) == []  # b's streak is broken
    restored = AnomalyTracker(vanish=1e-6, explode=10.0, patience=3)
    restored.load_state_dict(tracker.state_dict())
    found = restored.update({"a": 1e-9, "b": 100.0})
    assert [(a.group, a.kind, a.checks) for a in found] == [("a", "vanishing", 3)]
    assert found[0].describe() == "a: vanishing (norm 1e-09 < 1e-06 for 3 checks)"
    assert restored.update({"a": 1e-9, "b": 100.0}) == []  # reported once
    assert restored.update({"a": math.nan, "b": 100.0})[0].kind == "exploding"


def test_anomaly_tracker_relative_to_running_median() -> None:
    tracker = AnomalyTracker(vanish=1e-3, explode=100.0, mode="relative", patience=1, min_history=3)
    for _ in range(3):
        assert tracker.update({"a": 1.0}) == []
    assert tracker.update({"a": 50.0}) == []  # below 100x the median
    (spike,) = tracker.update({"a": 500.0})
    assert spike.kind == "exploding"
    assert spike.bound == pytest.approx(100.0)
    assert tracker.update({"a": 1e-4})[0].kind == "vanishing"
