"""ResamplingSampler and ClassBalancedSampler: resampling, determinism and DDP sharding."""

import random
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import DistributedSampler

from lightning_recipes.errors import MissingExtraError, RecipeConfigError
from lightning_recipes.imbalance.samplers import ClassBalancedSampler, ResamplingSampler

# 11 / 6 / 4 samples: oversampled to 33 (not divisible by 2), undersampled to 12.
LABELS = np.array([0] * 11 + [1] * 6 + [2] * 4)
rng = np.random.default_rng(0)
rng.shuffle(LABELS)


def imblearn_samplers() -> tuple[Any, Any]:
    pytest.importorskip("imblearn")
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    return RandomOverSampler, RandomUnderSampler


def scramble_global_rng(value: int) -> None:
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


# --- ResamplingSampler ----------------------------------------------------------------


def test_random_oversampler_brings_every_class_to_the_majority_count() -> None:
    over, _ = imblearn_samplers()
    sampler = ResamplingSampler(LABELS, over(), seed=3)
    indices = sampler.epoch_indices(0)
    assert sampler.resampled_counts().tolist() == [11, 11, 11]
    assert len(sampler) == len(indices) == 33
    assert Counter(LABELS[indices].tolist()) == {0: 11, 1: 11, 2: 11}
    # Every original sample is kept; minority samples are repeated.
    assert set(indices.tolist()) == set(range(len(LABELS)))


def test_default_sampler_is_random_oversampling() -> None:
    imblearn_samplers()
    assert ResamplingSampler(LABELS).resampled_counts().tolist() == [11, 11, 11]


def test_random_undersampler_brings_every_class_to_the_minority_count() -> None:
    _, under = imblearn_samplers()
    sampler = ResamplingSampler(LABELS, under(), seed=3)
    indices = sampler.epoch_indices(0)
    assert sampler.resampled_counts().tolist() == [4, 4, 4]
    assert len(indices) == len(set(indices.tolist())) == 12  # no repeats
    assert indices.min() >= 0
    assert indices.max() < len(LABELS)


def test_iteration_yields_python_ints_of_the_epoch_list() -> None:
    over, _ = imblearn_samplers()
    sampler = ResamplingSampler(torch.as_tensor(LABELS), over())
    drawn = list(sampler)
    assert all(type(index) is int for index in drawn)
    assert drawn == sampler.epoch_indices(0).tolist()
    assert not sampler.epoch_indices(0).flags.writeable


def test_resampling_is_a_function_of_seed_and_epoch_only() -> None:
    _, under = imblearn_samplers()
    scramble_global_rng(1)
    first = ResamplingSampler(LABELS, under(), seed=5)
    epoch0 = list(first)
    assert list(first) == epoch0  # same epoch, same list
    scramble_global_rng(2)
    second = ResamplingSampler(LABELS, under(), seed=5)
    assert list(second) == epoch0  # another "rank" with another global RNG state
    first.set_epoch(1)
    epoch1 = list(first)
    assert epoch1 != epoch0
    scramble_global_rng(3)
    second.set_epoch(1)
    assert list(second) == epoch1
    first.set_epoch(0)
    assert list(first) == epoch0  # revisiting an epoch (resume) replays it
    assert list(ResamplingSampler(LABELS, under(), seed=6)) != epoch0


def test_the_sampler_own_random_state_is_replaced_not_modified() -> None:
    over, _ = imblearn_samplers()
    template = over(random_state=42)
    a = ResamplingSampler(LABELS, template, seed=0).epoch_indices(0)
    b = ResamplingSampler(LABELS, template, seed=1).epoch_indices(0)
    assert template.random_state == 42
    assert not np.array_equal(a, b)


class HalfSampler:
    """Not an estimator: keeps a random half of the rows."""

    random_state: int | None = None

    def fit_resample(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = np.random.default_rng(self.random_state).permutation(len(y))[: len(y) // 2]
        self.sample_indices_ = chosen
        return x[chosen], y[chosen]


def test_any_object_with_fit_resample_and_sample_indices_works() -> None:
    pytest.importorskip("sklearn")
    template = HalfSampler()
    first = ResamplingSampler(LABELS, template, seed=2)
    scramble_global_rng(9)
    second = ResamplingSampler(LABELS, HalfSampler(), seed=2)
    assert len(first) == 10
    assert list(first) == list(second)
    assert template.random_state is None
    assert not hasattr(template, "sample_indices_")


def test_missing_imblearn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "imblearn.over_sampling", None)
    with pytest.raises(MissingExtraError, match=r"lightning-recipes\[imbalanced\]"):
        ResamplingSampler(LABELS)


# --- DDP: every rank draws the same list, the wrapper shards it without loss ------------


def shard_and_check(make: Callable[[], Any], world: int, epoch: int) -> int:
    """Shard like Lightning under DDP, one sampler per rank; returns the padding size."""
    reference = make().epoch_indices(epoch).tolist()
    n = len(reference)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).tolist()
    padding = -n % world
    padded_positions = permutation[:padding]  # DistributedSampler repeats these
    all_positions: list[int] = []
    all_values: list[int] = []
    for rank in range(world):
        scramble_global_rng(100 + rank)  # each process has its own global RNG state
        wrapper = DistributedSamplerWrapper(
            make(), num_replicas=world, rank=rank, shuffle=True, seed=0
        )
        wrapper.set_epoch(epoch)
        values = list(wrapper)
        positions = list(DistributedSampler.__iter__(wrapper))
        assert len(values) == len(wrapper) == -(-n // world)
        assert values == [reference[p] for p in positions]  # this rank drew the same list
        all_positions += positions
        all_values += values
    # The shards cover every position once, except the padding which appears twice.
    assert Counter(all_positions) == Counter(range(n)) + Counter(padded_positions)
    without_padding = Counter(all_values) - Counter(reference[p] for p in padded_positions)
    assert without_padding == Counter(reference)
    return padding


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("kind", ["over", "under"])
def test_resampling_shards_union_to_the_resampled_list(world: int, kind: str) -> None:
    over, under = imblearn_samplers()
    make_sampler = over if kind == "over" else under
    paddings = [
        shard_and_check(lambda: ResamplingSampler(LABELS, make_sampler(), seed=7), world, epoch)
        for epoch in (0, 1, 4)
    ]
    expected = -(33 if kind == "over" else 12) % world
    assert paddings == [expected] * 3


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("num_samples", [50, 51])
def test_class_balanced_shards_union_to_the_drawn_list(world: int, num_samples: int) -> None:
    for epoch in (0, 2):
        padding = shard_and_check(
            lambda: ClassBalancedSampler(LABELS, "sqrt", num_samples=num_samples, seed=1),
            world,
            epoch,
        )
        assert padding == -num_samples % world


# --- ClassBalancedSampler -------------------------------------------------------------

SKEWED = np.repeat(np.arange(3), [9000, 700, 300])
np.random.default_rng(1).shuffle(SKEWED)
COUNTS = np.array([9000, 700, 300])
DRAWS = 200_000


@pytest.mark.parametrize(
    ("weights", "target"),
    [
        ("balanced", np.full(3, 1 / 3)),
        ("sqrt", np.sqrt(COUNTS) / np.sqrt(COUNTS).sum()),
        ([1.0, 2.0, 10.0], COUNTS * [1, 2, 10] / (COUNTS * [1, 2, 10]).sum()),
        (torch.tensor([0.0, 1.0, 3.0]), np.array([0.0, 700, 900]) / 1600),
    ],
)
def test_class_frequencies_match_the_target_probabilities(weights: Any, target: Any) -> None:
    sampler = ClassBalancedSampler(SKEWED, weights, num_samples=DRAWS, seed=0)
    np.testing.assert_allclose(sampler.class_probabilities, target, rtol=1e-12)
    frequencies = sampler.resampled_counts() / DRAWS
    np.testing.assert_allclose(frequencies, target, atol=0.006)


def test_draws_within_a_class_are_uniform() -> None:
    sampler = ClassBalancedSampler(SKEWED, num_samples=DRAWS, seed=0)
    indices = sampler.epoch_indices(0)
    for label in (1, 2):
        members = np.flatnonzero(np.equal(SKEWED, label))
        hits = np.bincount(indices, minlength=len(SKEWED))[members]
        expected = hits.sum() / len(members)
        chi2 = float(((hits - expected) ** 2 / expected).sum())
        dof = len(members) - 1
        assert chi2 < dof + 6 * np.sqrt(2 * dof)
        assert hits.min() > 0


def test_class_balanced_is_a_function_of_seed_and_epoch_only() -> None:
    scramble_global_rng(1)
    sampler = ClassBalancedSampler(SKEWED, num_samples=500, seed=4)
    epoch0 = list(sampler)
    assert all(type(index) is int for index in epoch0)
    assert len(sampler) == len(epoch0) == 500
    scramble_global_rng(2)
    assert list(sampler) == epoch0
    assert list(ClassBalancedSampler(SKEWED, num_samples=500, seed=4)) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    assert list(ClassBalancedSampler(SKEWED, num_samples=500, seed=5)) != epoch0


def test_absent_classes_are_never_drawn() -> None:
    labels = [1, 1, 1, 3, 3, 1]  # classes 0 and 2 absent, 4 only in the weights
    sampler = ClassBalancedSampler(labels, [1.0, 1.0, 1.0, 1.0, 5.0], num_samples=5000)
    assert sampler.class_probabilities.tolist() == pytest.approx([0, 2 / 3, 0, 1 / 3, 0])
    assert sampler.num_classes == 5
    counts = sampler.resampled_counts()
    assert counts[[0, 2, 4]].tolist() == [0, 0, 0]
    assert counts.sum() == 5000
    balanced = ClassBalancedSampler(labels, num_samples=5000)
    assert balanced.class_probabilities.tolist() == [0.0, 0.5, 0.0, 0.5]
    assert set(np.asarray(labels)[balanced.epoch_indices(3)].tolist()) == {1, 3}


def test_more_than_2_to_the_24_labels() -> None:
    n = 2**24 + 10
    labels = np.zeros(n, dtype=np.int8)
    labels[::5] = 1
    labels[-1] = 2
    sampler = ClassBalancedSampler(labels, num_samples=1000, seed=0)
    indices = sampler.epoch_indices(0)
    assert len(indices) == 1000
    assert indices.min() >= 0
    assert indices.max() == n - 1  # the single sample of class 2, drawn ~333 times
    assert (indices == n - 1).sum() > 250
    assert (labels[indices[indices != n - 1]] != 2).all()


# --- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((3, 2), dtype=int), "labels=<2-D array"),
        ([0.0, 1.0, 1.0], "labels=<array of dtype float64>"),
        (torch.tensor([0.5, 1.0]), "labels=<array of dtype float32>"),
        ([], "labels=<empty>"),
        ([0, -1, 2], "labels=<array with minimum -1>"),
        ([True, False], "labels=<array of dtype bool>"),
    ],
)
def test_bad_labels_are_rejected(labels: Any, message: str) -> None:
    with pytest.raises(RecipeConfigError, match=message):
        ClassBalancedSampler(labels)
    with pytest.raises(RecipeConfigError, match=message):
        ResamplingSampler(labels, HalfSampler())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1.0, -1.0, 1.0]}, "Invalid weights"),
        ({"weights": [1.0, float("nan"), 1.0]}, "Invalid weights"),
        ({"weights": [1.0, 1.0]}, r"Invalid weights=\[1.0, 1.0\]. Pass one weight per class"),
        ({"weights": [[1.0, 1.0, 1.0]]}, "Invalid weights"),
        ({"weights": "inverse"}, "Invalid weights='inverse'. Choose one of: 'balanced'"),
        ({"weights": [0.0, 0.0, 0.0, 1.0]}, "positive weight"),
        ({"num_samples": 0}, "Invalid num_samples=0"),
        ({"num_samples": 2.5}, "Invalid num_samples=2.5"),
        ({"seed": -1}, "Invalid seed=-1"),
    ],
)
def test_bad_class_balanced_arguments_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RecipeConfigError, match=message):
        ClassBalancedSampler([0, 1, 1, 2], **kwargs)


def test_bad_epoch_is_rejected() -> None:
    sampler = ClassBalancedSampler([0, 1])
    with pytest.raises(RecipeConfigError, match="Invalid epoch=-1"):
        sampler.set_epoch(-1)


def test_synthesising_samplers_are_rejected() -> None:
    pytest.importorskip("imblearn")
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    for synthetic in (SMOTE(), ADASYN(), BorderlineSMOTE()):
        with pytest.raises(RecipeConfigError, match=r"ResampledDataModule\(datamodule"):
            ResamplingSampler(LABELS, synthetic)
    with pytest.raises(RecipeConfigError, match="shrinkage"):
        ResamplingSampler(LABELS, RandomOverSampler(shrinkage=1.0))


def test_feature_based_samplers_are_rejected() -> None:
    pytest.importorskip("imblearn")
    from imblearn.under_sampling import NearMiss, TomekLinks

    for sampler in (NearMiss(), TomekLinks()):
        with pytest.raises(RecipeConfigError, match="chooses rows by their features"):
            ResamplingSampler(LABELS, sampler)


class NoIndices:
    def fit_resample(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x, y


def test_samplers_without_sample_indices_or_fit_resample_are_rejected() -> None:
    pytest.importorskip("sklearn")
    sampler = ResamplingSampler(LABELS, NoIndices())
    with pytest.raises(RecipeConfigError, match="synthesises new rows"):
        len(sampler)
    with pytest.raises(RecipeConfigError, match=r"Invalid sampler=.*fit_resample"):
        ResamplingSampler(LABELS, object())


# --- a nonzero rank draws the list of rank zero (issue 13: mutation "seed + rank") -----


def as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int = 2) -> None:
    """Make this process look like rank ``rank`` of a ``world``-process job to any code
    that asks: torch.distributed, the launchers' environment and Lightning's rank_zero_only.
    """
    import torch.distributed as dist
    from lightning.fabric.utilities.rank_zero import rank_zero_only as fabric_rank
    from lightning.pytorch.utilities.rank_zero import rank_zero_only as pytorch_rank

    environment = {"RANK": rank, "LOCAL_RANK": rank, "GLOBAL_RANK": rank, "NODE_RANK": 0,
                   "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world}  # fmt: skip
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world)
    for flag in (fabric_rank, pytorch_rank):
        monkeypatch.setattr(flag, "rank", rank, raising=False)


@pytest.mark.parametrize("kind", ["resampling", "class_balanced"])
def test_a_nonzero_rank_draws_the_list_of_rank_zero(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    def make() -> Any:
        if kind == "resampling":
            over, _ = imblearn_samplers()
            return ResamplingSampler(LABELS, over(), seed=7)
        return ClassBalancedSampler(LABELS, "sqrt", num_samples=51, seed=7)

    epochs = (0, 1, 3)
    reference = {epoch: make().epoch_indices(epoch).tolist() for epoch in epochs}
    with monkeypatch.context() as patch:
        as_rank(patch, 1)
        scramble_global_rng(101)
        sampler = make()  # built and drawn as rank 1 builds and draws it
        wrapper = DistributedSamplerWrapper(sampler, num_replicas=2, rank=1, shuffle=True, seed=0)
        for epoch in epochs:
            wrapper.set_epoch(epoch)
            shard = list(wrapper)
            assert sampler.epoch_indices(epoch).tolist() == reference[epoch]
            positions = list(DistributedSampler.__iter__(wrapper))
            assert shard == [reference[epoch][p] for p in positions]
