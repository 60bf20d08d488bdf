"""The units GradientMonitor is made of, each on its own: statistics, clipping, the
non-finite guard, the anomaly alarm and the figure."""

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch import LightningModule, Trainer
from torch import nn

from lightning_recipes import NonFiniteGradientError
from lightning_recipes.gradients import (
    GradientMonitor,
    clip_by_norm_,
    clip_by_value_,
    dense_grads,
    grad_stats,
    norms_figure,
    step_norms,
)
from lightning_recipes.gradients.anomaly import Anomaly, anomaly_warning
from lightning_recipes.gradients.clipping import GradientClipper
from lightning_recipes.gradients.guard import NonFiniteGuard

shapes = st.lists(
    st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple), min_size=1, max_size=6
)


def _params(shape_list: list[tuple[int, ...]], seed: int, scale: float = 1.0) -> list[nn.Parameter]:
    generator = torch.Generator().manual_seed(seed)
    params = []
    for shape in shape_list:
        param = nn.Parameter(torch.randn(shape, generator=generator))
        param.grad = torch.randn(shape, generator=generator) * scale
        params.append(param)
    return params


def _grads(params: list[nn.Parameter] | list[torch.Tensor]) -> list[torch.Tensor]:
    return dense_grads(params)[0]


# Statistics ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    shape_list=shapes,
    p=st.sampled_from([1.0, 2.0, math.inf]),
    seed=st.integers(0, 10_000),
)
def test_grad_stats_reusing_step_norms_equals_a_fresh_computation(
    shape_list: list[tuple[int, ...]], p: float, seed: int
) -> None:
    grads = _grads(_params(shape_list, seed))
    group_index = torch.tensor([i % 2 for i in range(len(grads))])
    norms = step_norms(grads, p)
    reused = grad_stats(grads, p, group_index, 2, norms=norms)
    fresh = grad_stats(grads, p, group_index, 2)
    for field in ("per_tensor", "groups", "total", "max_abs", "zero_fraction", "finite"):
        assert torch.equal(getattr(reused, field), getattr(fresh, field)), field
    assert reused.total is norms.total  # the p-norm pass was not run twice


# Clipping -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(shape_list=shapes, seed=st.integers(0, 10_000), max_norm=st.floats(1e-2, 1e2))
def test_clipper_norm_is_torch_clip_grad_norm_and_clip_by_norm(
    shape_list: list[tuple[int, ...]], seed: int, max_norm: float
) -> None:
    mine, reference, listed = (_params(shape_list, seed) for _ in range(3))
    total = torch.nn.utils.clip_grad_norm_(reference, max_norm)
    clip_by_norm_(_grads(listed), step_norms(_grads(listed)).total, max_norm)
    clipper = GradientClipper("norm", max_norm)
    clipper(mine, _grads(mine), step_norms(_grads(mine)))
    for a, b, c in zip(mine, reference, listed, strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7)  # type: ignore[arg-type]
        assert torch.allclose(a.grad, c.grad, rtol=1e-5, atol=1e-7)  # type: ignore[arg-type]
    assert clipper.clipped_steps == int(total > max_norm)


def test_clipper_leaves_a_non_finite_step_unscaled_and_uncounted() -> None:
    (param,) = _params([(3,)], 0)
    param.grad = torch.tensor([math.nan, 100.0, 1.0])
    clipper = GradientClipper("norm", 1.0)
    clipper([param], [param.grad], step_norms([param.grad]))
    assert param.grad[1:].tolist() == [100.0, 1.0]
    assert clipper.clipped_steps == 0


def test_clipper_value_and_agc_count_what_they_clip() -> None:
    small, large = _params([(4,)], 1, scale=0.1), _params([(4,)], 1, scale=10.0)
    listed = _params([(4,)], 1, scale=10.0)
    value = GradientClipper("value", 1.0)
    for params in (small, large):
        value(params, _grads(params), step_norms(_grads(params)))
    clip_by_value_(_grads(listed), 1.0)
    assert torch.equal(large[0].grad, listed[0].grad)  # type: ignore[arg-type]
    assert float(large[0].grad.abs().max()) == 1.0  # type: ignore[union-attr]
    assert value.clipped_steps == 1  # the small step was left alone
    agc = GradientClipper("agc", 0.01)
    weight = nn.Parameter(torch.ones(2, 3))
    weight.grad = torch.full((2, 3), 5.0)
    agc([weight], [weight.grad], step_norms([weight.grad]))
    assert agc.clipped_steps == 1
    assert weight.grad.norm(dim=1).tolist() == pytest.approx([0.01 * math.sqrt(3)] * 2, rel=1e-4)
    agc.load(7)
    assert agc.clipped_steps == 7
    agc([weight], [weight.grad], step_norms([weight.grad]))  # now within bounds
    assert agc.clipped_steps == 7


def test_clipper_clips_sparse_gradients() -> None:
    # `dense_grads` measures a sparse gradient through a coalesced copy of its values;
    # scaling that copy would leave the parameter's own gradient unclipped.
    embedding = nn.Embedding(10, 3, sparse=True)
    embedding(torch.tensor([1, 1, 4])).sum().backward()
    grads = _grads([embedding.weight])
    GradientClipper("norm", 0.5)([embedding.weight], grads, step_norms(grads))
    assert embedding.weight.grad is not None
    assert float(embedding.weight.grad.coalesce().values().norm()) == pytest.approx(0.5, rel=1e-4)


class _SparseEmbedding(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 4, sparse=True)
        self.seen: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        (index,) = batch
        loss: torch.Tensor = self.embedding(index).pow(2).sum()
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        grad = self.embedding.weight.grad
        assert grad is not None
        self.seen.append(float(grad.coalesce().values().norm()))


def test_monitor_clips_a_sparse_gradient(make_trainer: Callable[..., Trainer]) -> None:
    model = _SparseEmbedding()
    data = torch.utils.data.TensorDataset(torch.tensor([[1, 1, 4, 7]] * 3))
    monitor = GradientMonitor(clip="norm", max_norm=0.5, log_every_n_steps=1, plot=False)
    trainer = make_trainer(callbacks=[monitor], limit_train_batches=3, limit_val_batches=0)
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=None))
    assert model.seen == pytest.approx([0.5] * 3, rel=1e-4)
    assert monitor.clipped_steps == 3


# Non-finite guard ---------------------------------------------------------------------


@contextmanager
def _host_reads() -> Iterator[list[str]]:
    """Count tensor->host conversions made from the gradients package."""
    calls: list[str] = []
    names = ("item", "tolist", "__bool__", "__float__", "__int__")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def wrap(name: str) -> Any:
        def counted(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if "lightning_recipes/gradients" in sys._getframe(1).f_code.co_filename:
                calls.append(name)
            return originals[name](self, *args, **kwargs)

        return counted

    for name in names:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("mode", ["skip", "stop", "warn"])
def test_guard_records_the_first_bad_step_and_zeroes_without_host_reads(mode: str) -> None:
    guard = NonFiniteGuard(mode)  # type: ignore[arg-type]
    names = ["a", "b", "c"]
    index = torch.tensor([0, 1, 2])
    steps = {
        3: [torch.ones(2), torch.ones(1), torch.ones(2)],
        4: [torch.ones(2), torch.tensor([math.inf]), torch.tensor([math.nan, 1.0])],
        5: [torch.tensor([math.nan, 1.0]), torch.ones(1), torch.ones(2)],
    }
    with _host_reads() as reads:
        for step, grads in steps.items():
            guard.check_(grads, step_norms(grads), index, step, names)
    assert reads == []
    zeroed = mode in ("skip", "stop")
    assert all(bool((g == 0).all()) == zeroed for g in steps[4] + steps[5])
    assert bool((steps[3][0] == 1).all())
    state = guard.state(torch.device("cpu")).tolist()
    assert guard.read(state, names) == (4, "b")  # the first bad step, its first bad tensor
    assert guard.skipped_steps == (2 if zeroed else 0)
    message = guard.message(guard.skipped_steps)
    assert message is not None
    assert "parameter 'b' at global step 4" in message
    assert guard.message(guard.skipped_steps) is None  # once


def test_guard_raise_names_the_parameter_and_step_and_resumes() -> None:
    guard = NonFiniteGuard("raise")
    grads = [torch.ones(1), torch.tensor([math.nan])]
    with pytest.raises(NonFiniteGradientError, match=r"parameter 'head.bias' at global step 9"):
        guard.check_(grads, step_norms(grads), torch.tensor([0, 1]), 9, ["w", "head.bias"])
    assert math.isnan(grads[1].item())  # "raise" leaves the gradients as they are
    resumed = NonFiniteGuard("skip")
    resumed.load(3, (9, "head.bias"), reported=True)
    assert resumed.skipped_steps == 3
    assert resumed.state(torch.device("cpu")).tolist() == [3, -1, -1]
    assert resumed.message(3) is None
    off = NonFiniteGuard(None)
    off.check_(grads, step_norms(grads), torch.tensor([0, 1]), 1, ["w", "b"])
    assert off.read(off.state(torch.device("cpu")).tolist(), ["w", "b"]) is None
    assert not off.active


# Alarms -------------------------------------------------------------------------------


def test_anomaly_warning_names_groups_remedies_and_stop() -> None:
    found = [
        Anomaly("backbone.0", "vanishing", 1e-9, 1e-8, 3),
        Anomaly("head", "exploding", 500.0, 100.0, 3),
    ]
    text = anomaly_warning(found, 42, stopping=True)
    assert text.startswith("GradientMonitor: exploding and vanishing gradients at global step 42")
    assert "backbone.0: vanishing (norm 1e-09 < 1e-08 for 3 checks)" in text
    assert "head: exploding (norm 500 > 100 for 3 checks)" in text
    assert "ReLU/GELU instead of sigmoid" in text
    assert "gradient clipping" in text
    assert text.endswith("Stopping training (on_anomaly='stop').")
    assert "Stopping" not in anomaly_warning(found[:1], 42, stopping=False)
    assert "gradient clipping" not in anomaly_warning(found[:1], 42, stopping=False)


# Figure -------------------------------------------------------------------------------


def test_norms_figure_draws_groups_where_recorded_and_names_the_quiet_ones() -> None:
    history = [
        (0, {"total": 1.0, "backbone": 0.6, "head": 0.8}),
        (5, {"total": 0.5, "head": 0.5}),
        (10, {"total": 0.4, "backbone": 0.1, "head": 0.3}),
    ]
    figure = norms_figure(history, ["backbone", "head", "unused"], {"backbone"}, {"unused": 3})
    ax = figure.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"backbone (frozen)", "head", "unused", "total"}
    assert list(lines["backbone (frozen)"].get_xdata()) == [0, 10]  # a gap, not a zero
    assert list(lines["total"].get_ydata()) == [1.0, 0.5, 0.4]
    assert ax.get_yscale() == "log"
    assert "frozen or without gradient at some logging steps" in ax.get_title()
    assert "backbone, unused" in ax.get_title()
    single = norms_figure([(0, {"total": 1.0})], ["all"], norm_type=math.inf)
    assert [line.get_label() for line in single.axes[0].get_lines()] == ["total"]
    assert single.axes[0].get_ylabel() == "gradient inf-norm"
