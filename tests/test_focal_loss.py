"""Focal loss: equals cross-entropy at gamma=0, matches a naive reference, stays stable."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.imbalance.losses import FocalLoss, focal_loss

REDUCTIONS = ["none", "mean", "sum"]


def _multiclass_batch(
    seed: int, shape: tuple[int, ...] = (16, 5), scale: float = 3.0
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=generator, dtype=torch.float64) * scale
    target_shape = (shape[0], *shape[2:])
    target = torch.randint(0, shape[1], target_shape, generator=generator)
    return logits, target


def _naive_focal(
    logits: torch.Tensor, target: torch.Tensor, gamma: float, alpha: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample focal loss straight from the definition, via softmax probabilities."""
    p = torch.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = -((1 - p) ** gamma) * torch.log(p)
    return loss if alpha is None else alpha[target] * loss


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 5, 6)])
def test_gamma_zero_equals_cross_entropy(
    reduction: str, weighted: bool, shape: tuple[int, ...]
) -> None:
    logits, target = _multiclass_batch(0, shape)
    weight = torch.rand(shape[1], dtype=torch.float64) + 0.1 if weighted else None
    expected = F.cross_entropy(logits, target, weight=weight, reduction=reduction)
    actual = focal_loss(logits, target, gamma=0.0, weight=weight, reduction=reduction)  # type: ignore[arg-type]
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_gamma_zero_equals_cross_entropy_with_ignore_index(
    reduction: str, ignore_index: int
) -> None:
    logits, target = _multiclass_batch(1, (6, 4, 3, 3))
    target[:, 0, :] = ignore_index
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    expected = F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction
    )
    actual = focal_loss(
        logits,
        target,
        gamma=0.0,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,  # type: ignore[arg-type]
    )
    torch.testing.assert_close(actual, expected)
    if reduction == "none":
        assert (actual[:, 0, :] == 0).all()


def test_ignored_targets_do_not_change_the_loss_or_get_gradients() -> None:
    logits, target = _multiclass_batch(2, (8, 3))
    logits.requires_grad_(True)
    kept = focal_loss(logits[:5], target[:5])
    masked = target.clone()
    masked[5:] = -100
    loss = focal_loss(logits, masked)
    torch.testing.assert_close(loss, kept)
    loss.backward()
    assert logits.grad is not None
    assert (logits.grad[5:] == 0).all()


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    gamma=st.sampled_from([0.5, 1.0, 2.0, 5.0]),
    per_class_alpha=st.booleans(),
)
def test_matches_a_naive_reference(seed: int, gamma: float, per_class_alpha: bool) -> None:
    logits, target = _multiclass_batch(seed, (12, 4), scale=2.0)
    alpha = torch.tensor([0.25, 0.5, 1.0, 2.0], dtype=torch.float64) if per_class_alpha else None
    expected = _naive_focal(logits, target, gamma, alpha)
    actual = focal_loss(logits, target, gamma=gamma, alpha=alpha, reduction="none")
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(
        focal_loss(logits, target, gamma=gamma, alpha=alpha), expected.mean()
    )


def test_weighted_mean_divides_by_the_class_weights_not_alpha() -> None:
    logits, target = _multiclass_batch(3, (10, 3))
    weight = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    alpha = torch.tensor([0.5, 1.0, 0.25], dtype=torch.float64)
    per_sample = _naive_focal(logits, target, 2.0, alpha) * weight[target]
    expected = per_sample.sum() / weight[target].sum()
    actual = focal_loss(logits, target, alpha=alpha, weight=weight)
    torch.testing.assert_close(actual, expected)


def test_float_alpha_scales_the_multiclass_loss() -> None:
    logits, target = _multiclass_batch(4)
    torch.testing.assert_close(
        focal_loss(logits, target, alpha=0.25), 0.25 * focal_loss(logits, target)
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_binary_gamma_zero_equals_bce_with_logits(reduction: str, task: str) -> None:
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(8, 3, generator=generator) * 4
    target = (torch.rand(8, 3, generator=generator) > 0.5).float()
    pos_weight = torch.tensor([0.5, 2.0, 5.0])
    for weight in (None, pos_weight):
        expected = F.binary_cross_entropy_with_logits(
            logits, target, pos_weight=weight, reduction=reduction
        )
        actual = focal_loss(
            logits,
            target,
            gamma=0.0,
            weight=weight,
            reduction=reduction,  # type: ignore[arg-type]
            task=task,  # type: ignore[arg-type]
        )
        torch.testing.assert_close(actual, expected)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.sampled_from([0.5, 2.0]), alpha=st.floats(0, 1))
def test_binary_matches_lin_et_al(seed: int, gamma: float, alpha: float) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(20, generator=generator, dtype=torch.float64) * 2
    target = (torch.rand(20, generator=generator) > 0.7).double()
    p = torch.sigmoid(logits)
    p_t = torch.where(target == 1, p, 1 - p)
    alpha_t = torch.where(target == 1, alpha, 1 - alpha)
    expected = -alpha_t * (1 - p_t) ** gamma * torch.log(p_t)
    actual = focal_loss(logits, target, gamma=gamma, alpha=alpha, task="binary", reduction="none")
    torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_huge_logits_give_finite_loss_and_gradients(gamma: float) -> None:
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [1e4, 1e4, -1e4]])
    logits.requires_grad_(True)
    target = torch.tensor([0, 0, 2])
    loss = focal_loss(logits, target, gamma=gamma, alpha=[0.25, 0.5, 1.0])
    loss.backward()
    assert torch.isfinite(loss)
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    # The wrong predictions cost about their margin, as cross-entropy does.
    assert loss.item() > 1e3

    binary_logits = torch.tensor([1e4, -1e4, 1e4, -1e4], requires_grad=True)
    binary_target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    binary = focal_loss(binary_logits, binary_target, gamma=gamma, alpha=0.25, task="binary")
    binary.backward()
    assert torch.isfinite(binary)
    assert binary_logits.grad is not None
    assert torch.isfinite(binary_logits.grad).all()


def test_focal_down_weights_easy_examples() -> None:
    easy = torch.tensor([[5.0, 0.0, 0.0]])  # p = 0.987
    hard = torch.tensor([[0.0, 1.0, 0.0]])
    target = torch.tensor([0])
    ce_easy, ce_hard = F.cross_entropy(easy, target), F.cross_entropy(hard, target)
    focal_easy, focal_hard = focal_loss(easy, target), focal_loss(hard, target)
    # A confident correct prediction keeps (1 - p)**2 < 0.1% of its cross-entropy...
    p_easy = torch.softmax(easy, dim=1)[0, 0]
    assert (focal_easy / ce_easy).item() == pytest.approx(((1 - p_easy) ** 2).item(), rel=1e-4)
    assert focal_easy < 1e-3 * ce_easy
    # ...a misclassified one keeps most of it.
    assert focal_hard > 0.4 * ce_hard
    binary = focal_loss(torch.tensor([4.0]), torch.tensor([1.0]), task="binary")
    bce = F.binary_cross_entropy_with_logits(torch.tensor([4.0]), torch.tensor([1.0]))
    assert binary < 1e-3 * bce


def test_module_equals_the_function() -> None:
    logits, target = _multiclass_batch(6)
    module = FocalLoss(gamma=1.5, alpha=[1.0, 2.0, 1.0, 0.5, 1.0], weight=[1, 2, 3, 4, 5])
    expected = focal_loss(
        logits, target, gamma=1.5, alpha=[1.0, 2.0, 1.0, 0.5, 1.0], weight=[1, 2, 3, 4, 5]
    )
    torch.testing.assert_close(module(logits, target), expected)


def test_module_buffers_follow_to_and_state_dict() -> None:
    module = FocalLoss(alpha=[0.25, 0.75], weight=[1.0, 3.0])
    assert set(module.state_dict()) == {"alpha", "weight"}
    module.to(torch.float64)
    assert module.weight is not None
    assert module.weight.dtype == torch.float64
    assert isinstance(module.alpha, torch.Tensor)
    assert module.alpha.dtype == torch.float64

    restored = FocalLoss(alpha=[1.0, 1.0], weight=[1.0, 1.0])
    restored.load_state_dict(module.state_dict())
    torch.testing.assert_close(restored.weight, torch.tensor([1.0, 3.0]))


def test_assigning_weight_changes_the_loss() -> None:
    logits, target = _multiclass_batch(7, (32, 3))
    target[:16] = 0
    module = FocalLoss()
    unweighted = module(logits, target)
    assert "weight" not in module.state_dict()

    module.weight = torch.tensor([1.0, 10.0, 10.0], dtype=torch.float64)

    assert "weight" in module.state_dict()
    weighted = module(logits, target)
    assert not torch.allclose(weighted, unweighted)
    expected = focal_loss(logits, target, weight=torch.tensor([1.0, 10.0, 10.0]))
    torch.testing.assert_close(weighted, expected.double())


def test_pos_weight_is_an_alias_of_weight_for_binary_tasks() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    module = FocalLoss(gamma=0.0, task="multilabel")
    assert module.pos_weight is None
    module.pos_weight = torch.tensor([3.0, 0.5])
    torch.testing.assert_close(module.weight, torch.tensor([3.0, 0.5]))
    expected = F.binary_cross_entropy_with_logits(logits, target, pos_weight=module.weight)
    torch.testing.assert_close(module(logits, target), expected)

    multiclass = FocalLoss()
    assert not hasattr(multiclass, "pos_weight")
    with pytest.raises(AttributeError, match="weight"):
        multiclass.pos_weight = torch.ones(2)


def test_repr_shows_the_settings() -> None:
    text = repr(FocalLoss(gamma=1.0, alpha=0.25, task="binary"))
    assert text == "FocalLoss(task='binary', gamma=1.0, alpha=0.25, weight=None, reduction='mean')"
    assert "weight=<tensor of shape (100,)>" in repr(FocalLoss(weight=torch.ones(100)))


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"gamma": -1.0}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"reduction": "avg"}, "reduction"),
        ({"task": "regression"}, "task"),
        ({"alpha": -0.5}, "alpha"),
        ({"alpha": [[1.0, 2.0]]}, "alpha"),
        ({"alpha": [1.0, -2.0]}, "alpha"),
        ({"alpha": 1.5, "task": "binary"}, "alpha"),
        ({"alpha": [0.5, 0.5], "task": "multilabel"}, "alpha"),
        ({"weight": [1.0, float("inf")]}, "weight"),
        ({"weight": torch.tensor([1.0, -1.0])}, "weight"),
        ({"ignore_index": 1.5}, "ignore_index"),
    ],
)
def test_bad_arguments_are_rejected_at_construction(
    kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        FocalLoss(**kwargs)  # type: ignore[arg-type]


def test_reduction_error_lists_the_choices() -> None:
    logits, target = _multiclass_batch(8)
    with pytest.raises(RecipeConfigError, match=r"'none', 'mean', 'sum'"):
        focal_loss(logits, target, reduction="avg")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("logits", "target", "kwargs", "argument"),
    [
        (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), {}, "target.shape"),
        (torch.zeros(4, 3), torch.zeros(4), {}, "target.dtype"),
        (torch.zeros(3), torch.zeros((), dtype=torch.long), {}, "logits.shape"),
        (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), {"weight": [1.0, 1.0]}, "weight"),
        (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), {"alpha": [1.0, 1.0]}, "alpha"),
        (torch.zeros(4, 3), torch.zeros(4, 2), {"task": "binary"}, "target.shape"),
        (torch.zeros(4, 3), torch.zeros(4, 3), {"task": "binary", "weight": [1.0, 2.0]}, "weight"),
    ],
)
def test_mismatched_inputs_are_rejected(
    logits: torch.Tensor, target: torch.Tensor, kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        focal_loss(logits, target, **kwargs)  # type: ignore[arg-type]
