"""Class weights against scikit-learn and the papers' formulas; sample weights; bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.class_weight import compute_class_weight

from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.imbalance.weights import WEIGHT_SCHEMES, class_weights, sample_weights

label_arrays = st.lists(st.integers(0, 7), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(labels=label_arrays, extra_classes=st.integers(0, 2))
def test_balanced_matches_sklearn(labels: list[int], extra_classes: int) -> None:
    y = np.array(labels)
    n_classes = max(int(y.max()) + 1 + extra_classes, 2)
    counts = np.bincount(y, minlength=n_classes)
    present = np.unique(y)
    expected = compute_class_weight("balanced", classes=present, y=y)

    weights = class_weights(counts, "balanced", zero_count="zero")

    assert weights.dtype == torch.float32
    assert weights.shape == (n_classes,)
    np.testing.assert_allclose(weights[present].numpy(), expected, rtol=1e-6)
    absent = np.setdiff1d(np.arange(n_classes), present)
    assert (weights[absent] == 0).all()


def test_balanced_reweights_every_class_to_the_same_total() -> None:
    counts = np.array([5, 20, 75])
    weights = class_weights(counts).double().numpy()
    np.testing.assert_allclose(weights * counts, [100 / 3] * 3)


@settings(max_examples=100, deadline=None)
@given(
    counts=st.lists(st.integers(1, 10_000), min_size=2, max_size=10),
    beta=st.sampled_from([0.9, 0.99, 0.999, 0.9999]),
)
def test_effective_number_is_the_papers_formula_normalised(counts: list[int], beta: float) -> None:
    # Cui et al. 2019, eq. for the class-balanced term: (1 - beta) / (1 - beta**n).
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    expected = [w * len(counts) / sum(raw) for w in raw]

    weights = class_weights(counts, "effective_number", beta=beta)

    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)
    assert weights.double().sum().item() == pytest.approx(len(counts), rel=1e-6)


def test_effective_number_with_beta_zero_gives_equal_weights() -> None:
    weights = class_weights([1, 10, 1000], "effective_number", beta=0.0)
    assert weights.tolist() == [1.0, 1.0, 1.0]


def test_effective_number_tends_to_inverse_frequency_as_beta_tends_to_one() -> None:
    counts = np.array([10, 100, 1000, 3])
    inverse = 1 / counts
    expected = inverse * len(counts) / inverse.sum()

    weights = class_weights(counts, "effective_number", beta=1 - 1e-10)

    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)


def test_effective_number_lies_between_equal_and_inverse_frequency() -> None:
    counts = [10, 1000]
    equal = class_weights(counts, "effective_number", beta=0.0)
    mild = class_weights(counts, "effective_number", beta=0.99)
    strong = class_weights(counts, "effective_number", beta=1 - 1e-10)
    assert equal[0] < mild[0] < strong[0]


def test_inverse_sqrt_is_normalised_one_over_root_count() -> None:
    counts = np.array([1, 4, 16, 64])
    raw = 1 / np.sqrt(counts)

    weights = class_weights(counts, "inverse_sqrt")

    np.testing.assert_allclose(weights.numpy(), raw * 4 / raw.sum(), rtol=1e-6)
    assert weights.sum().item() == pytest.approx(4.0)
    # Each quadrupling of the count halves the weight.
    np.testing.assert_allclose((weights[:-1] / weights[1:]).numpy(), [2.0, 2.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("scheme", ["effective_number", "inverse_sqrt"])
def test_normalisation_runs_over_present_classes_only(scheme: str) -> None:
    weights = class_weights([7, 0, 30, 0, 2], scheme, zero_count="zero")
    assert weights[[1, 3]].tolist() == [0.0, 0.0]
    assert weights.sum().item() == pytest.approx(3.0)
    # Same weights as for the present classes alone.
    alone = class_weights([7, 30, 2], scheme)
    torch.testing.assert_close(weights[[0, 2, 4]], alone)


def test_balanced_with_absent_classes_counts_present_classes_only() -> None:
    weights = class_weights([30, 0, 10], zero_count="zero")
    torch.testing.assert_close(weights, torch.tensor([40 / 60, 0.0, 40 / 20]))


@pytest.mark.parametrize("scheme", WEIGHT_SCHEMES)
def test_zero_count_error_names_the_empty_classes(scheme: str) -> None:
    with pytest.raises(RecipeConfigError, match=r"\[1, 3\].*zero_count=\"zero\""):
        class_weights([5, 0, 2, 0], scheme)


def test_invalid_zero_count_is_rejected() -> None:
    with pytest.raises(RecipeConfigError, match="zero_count"):
        class_weights([1, 2], zero_count="drop")  # type: ignore[arg-type]


def test_equal_counts_give_equal_weights_for_every_scheme() -> None:
    for scheme in WEIGHT_SCHEMES:
        assert class_weights([8, 8, 8], scheme).tolist() == [1.0, 1.0, 1.0]


def test_accepts_numpy_tensors_and_whole_floats() -> None:
    expected = class_weights([3, 1])
    torch.testing.assert_close(class_weights(np.array([3, 1], dtype=np.uint8)), expected)
    torch.testing.assert_close(class_weights(torch.tensor([3, 1])), expected)
    torch.testing.assert_close(class_weights(torch.bincount(torch.tensor([0, 0, 1, 0]))), expected)
    torch.testing.assert_close(class_weights([3.0, 1.0]), expected)


def test_mapping_is_used_as_given() -> None:
    weights = class_weights([10, 20, 30], {2: 0.5, 0: 3.0, 1: 1.0})
    assert weights.tolist() == [3.0, 1.0, 0.5]
    assert weights.dtype == torch.float32


def test_mapping_with_zero_count_zero_zeroes_absent_classes() -> None:
    weights = class_weights([10, 0], {0: 2.0, 1: 5.0}, zero_count="zero")
    assert weights.tolist() == [2.0, 0.0]


def test_mapping_missing_ids_are_listed() -> None:
    with pytest.raises(RecipeConfigError, match=r"scheme.*missing ids: \[1, 3\]"):
        class_weights([1, 1, 1, 1], {0: 1.0, 2: 1.0})


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_mapping_rejects_negative_or_non_finite_weights(bad: float) -> None:
    with pytest.raises(RecipeConfigError, match="scheme"):
        class_weights([1, 1], {0: 1.0, 1: bad})


def test_mapping_rejects_unknown_class_ids() -> None:
    with pytest.raises(RecipeConfigError, match=r"unexpected keys: \[5\]"):
        class_weights([1, 1], {0: 1.0, 1: 1.0, 5: 1.0})


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, math.nan])
def test_beta_outside_zero_one_is_rejected(beta: float) -> None:
    with pytest.raises(RecipeConfigError, match="beta"):
        class_weights([1, 2], "effective_number", beta=beta)


def test_unknown_scheme_lists_the_choices() -> None:
    with pytest.raises(RecipeConfigError, match=r"scheme='focal'.*'balanced'.*'inverse_sqrt'"):
        class_weights([1, 2], "focal")


def test_scheme_of_the_wrong_type_is_rejected() -> None:
    with pytest.raises(RecipeConfigError, match=r"scheme.*mapping"):
        class_weights([1, 2], 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("counts", "fix"),
    [
        ([3, -1, 2], r"negative count: \[1\]"),
        ([[1, 2], [3, 4]], "1-D"),
        ([5], "at least 2 classes"),
        ([], "at least 2 classes"),
        ([0, 0], "positive count"),
        ([1.5, 2.0], "whole-number"),
        (["a", "b"], "whole-number"),
    ],
)
def test_bad_counts_are_rejected(counts: object, fix: str) -> None:
    with pytest.raises(RecipeConfigError, match=rf"counts.*{fix}"):
        class_weights(counts)  # type: ignore[arg-type]


def test_sample_weights_look_up_each_label() -> None:
    weights = class_weights([3, 1])
    labels = np.array([0, 1, 0, 0])

    per_sample = sample_weights(labels, weights)

    torch.testing.assert_close(per_sample, weights[[0, 1, 0, 0]])
    # Balanced weights give each class the same total weight.
    assert per_sample[labels == 0].sum().item() == pytest.approx(per_sample[labels == 1].sum())


def test_sample_weights_keep_shape_and_float_dtype() -> None:
    labels = torch.tensor([[0, 2], [1, 1]])
    out = sample_weights(labels, torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert out.dtype == torch.float64
    assert out.tolist() == [[1.0, 3.0], [2.0, 2.0]]
    assert sample_weights([1], [1, 4]).dtype == torch.float32


def test_sample_weights_reject_bad_labels() -> None:
    with pytest.raises(RecipeConfigError, match=r"labels.*0\.\.1"):
        sample_weights([0, 2, -1], [1.0, 1.0])
    with pytest.raises(RecipeConfigError, match="labels"):
        sample_weights(torch.tensor([0.0, 1.0]), [1.0, 1.0])
    with pytest.raises(RecipeConfigError, match="weights"):
        sample_weights([0], [[1.0, 1.0]])
