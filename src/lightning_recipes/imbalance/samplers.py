"""Resampling samplers that draw the same list on every DDP rank, epoch after epoch.

Under DDP, Lightning wraps a training DataLoader's custom sampler in
``DistributedSamplerWrapper``: every rank materialises the *whole* wrapped sampler
(``list(sampler)``), and the wrapper then hands rank ``r`` the positions ``r, r + W, ...``
of a permutation that is the same on all ranks. The shards only partition the data if
every rank drew the identical list, so a sampler that draws from a global random state
(seeded differently per rank, or advanced by other code) silently duplicates some samples
and drops others.

The samplers here make each epoch's list a pure function of the constructor arguments,
``seed`` and the epoch: the epoch's random generator is
``numpy.random.default_rng([seed, epoch])``, and nothing reads torch's, NumPy's or Python's
global random state. The wrapper forwards ``set_epoch`` (which Lightning calls at every
epoch start) to them, so every rank draws the same fresh list each epoch, and a resumed run
(whose epoch Lightning restores) replays the lists of the run it continues.

- `ResamplingSampler`: an imbalanced-learn under- or over-sampler
  (``RandomUnderSampler``, ``RandomOverSampler``) refitted on the labels each epoch.
- `ClassBalancedSampler`: two-stage sampling with replacement, first a class (with
  per-class weights), then a sample of that class; vectorised, for any number of samples.

Both expose ``epoch_indices(epoch)``, the epoch's list as a NumPy array, which
``__iter__`` yields as Python ints.
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import positive_int
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error
from lightning_recipes.imbalance.epoch_sampler import (
    _CHUNK,
    _WEIGHT_SCHEMES,
    ClassWeights,
    IndexArray,
    Labels,
    _EpochSampler,
    _small_ints,
)

__all__ = ["ClassBalancedSampler", "ResamplingSampler"]

# imbalanced-learn samplers (and their bases) that return new, synthetic rows.
_SYNTHETIC = frozenset(
    {"BaseSMOTE", "SMOTE", "ADASYN", "SMOTEENN", "SMOTETomek", "ClusterCentroids"}
)
# The imbalanced-learn samplers that choose rows from the labels alone.
_LABEL_ONLY = frozenset({"RandomOverSampler", "RandomUnderSampler"})


def _synthetic_error(sampler: Any) -> RecipeConfigError:
    return config_error(
        "sampler",
        sampler,
        "It synthesises new rows, and a sampler can only return indices of existing ones. "
        "For synthetic oversampling of 2-D features, use "
        "ResampledDataModule(datamodule, sampler=SMOTE(...)); ResamplingSampler takes "
        "samplers that pick existing rows, such as RandomOverSampler() or "
        "RandomUnderSampler().",
    )


def _check_resampler(sampler: Any) -> None:
    """Reject samplers that cannot be expressed as a list of row indices."""
    names = {cls.__name__ for cls in type(sampler).__mro__}
    if names & _SYNTHETIC:
        raise _synthetic_error(sampler)
    if not callable(getattr(sampler, "fit_resample", None)):
        raise config_error(
            "sampler",
            sampler,
            "Pass an imbalanced-learn sampler such as RandomOverSampler() or "
            "RandomUnderSampler(), or any object whose fit_resample(X, y) sets "
            "sample_indices_.",
        )
    if type(sampler).__module__.startswith("imblearn") and not names & _LABEL_ONLY:
        raise config_error(
            "sampler",
            sampler,
            "It chooses rows by their features, which ResamplingSampler does not see (it "
            "fits on the labels alone). Use ResampledDataModule(datamodule, sampler=...) to "
            "resample on the features, or RandomOverSampler() / RandomUnderSampler() here.",
        )
    if getattr(sampler, "shrinkage", None) is not None:
        raise config_error(
            "sampler",
            sampler,
            "shrinkage adds noise to the features of the copied rows (a smoothed bootstrap), "
            "which a sampler of indices cannot do. Use RandomOverSampler() without "
            "shrinkage, or ResampledDataModule(datamodule, sampler=...).",
        )


class ResamplingSampler(_EpochSampler):
    """An imbalanced-learn sampler refitted on the labels every epoch, the same on all ranks.

    Each epoch the sampler is cloned (``sklearn.base.clone``), its ``random_state`` set
    to ``default_rng([seed, epoch]).integers(2**31 - 1)``, and fitted on the labels (with
    a placeholder feature column); its ``sample_indices_`` (the rows kept or repeated) are
    then shuffled with the same generator. ``RandomOverSampler()`` (the default) repeats
    minority samples until every class matches the majority; ``RandomUnderSampler()``
    drops majority samples down to the minority count; their ``sampling_strategy``
    options apply. Any object with ``fit_resample(X, y)`` that sets ``sample_indices_``
    works too (its ``random_state``, if any, is replaced per epoch); it must not look at
    ``X``, and its list must have the same length every epoch (the distributed wrapper
    fixes the shard size once).

    Samplers that synthesise rows (SMOTE, ADASYN, ...) or choose them by their features
    (NearMiss, TomekLinks, ...) are rejected: resample the features with
    ``ResampledDataModule(datamodule, sampler=SMOTE(...))`` instead.

    Needs the ``imbalanced`` extra (imbalanced-learn and scikit-learn).

    Args:
        labels: The class id of every training sample, in dataset order.
        sampler: An imbalanced-learn under- or over-sampler; ``None`` for
            ``RandomOverSampler()``.
        seed: Base seed; the list of epoch ``e`` depends only on it, ``e`` and the labels.

    Raises:
        RecipeConfigError: If ``labels`` are not 1-D non-negative integers, ``seed`` is
            negative, or ``sampler`` synthesises rows, chooses them by features or has no
            ``fit_resample``.
        MissingExtraError: If imbalanced-learn or scikit-learn is not installed.

    Examples:
        >>> from imblearn.under_sampling import RandomUnderSampler
        >>> sampler = ResamplingSampler([0, 0, 0, 0, 1, 1], RandomUnderSampler(), seed=0)
        >>> len(sampler), sampler.resampled_counts().tolist()
        (4, [2, 2])
        >>> sorted(ResamplingSampler([0, 0, 0, 1]))  # oversampled: sample 3 four times
        [0, 1, 2, 3, 3, 3]
    """

    def __init__(self, labels: Labels, sampler: Any = None, *, seed: int = 0) -> None:
        super().__init__(labels, seed)
        self._clone = require("sklearn.base", extra="imbalanced", feature="ResamplingSampler").clone
        if sampler is None:
            over = require(
                "imblearn.over_sampling", extra="imbalanced", feature="ResamplingSampler"
            )
            sampler = over.RandomOverSampler()
        _check_resampler(sampler)
        self.sampler = sampler

    def _draw(self, rng: np.random.Generator) -> IndexArray:
        fitted = self._clone(self.sampler, safe=False)
        state = int(rng.integers(2**31 - 1))
        get_params = getattr(fitted, "get_params", None)
        if callable(get_params) and "random_state" in get_params(deep=False):
            fitted.set_params(random_state=state)
        elif hasattr(fitted, "random_state"):
            fitted.random_state = state
        n = len(self._labels)
        # The rows' content is irrelevant to label-only samplers: one byte per row.
        placeholder = np.zeros((n, 1), dtype=np.int8)
        try:
            fitted.fit_resample(placeholder, self._labels)
        except ValueError as err:
            raise config_error(
                "sampler", self.sampler, f"Its fit_resample failed on the labels: {err}"
            ) from err
        chosen = getattr(fitted, "sample_indices_", None)
        if chosen is None:
            raise _synthetic_error(self.sampler)
        indices = np.asarray(chosen, dtype=np.int64)
        # imbalanced-learn's array is the clone's own: shuffle it in place, saving a copy.
        in_place = type(fitted).__module__.startswith("imblearn.") and indices.flags.writeable
        if not in_place:
            indices = indices.copy()
        if indices.ndim != 1 or (indices.size and (indices.min() < 0 or indices.max() >= n)):
            raise config_error(
                "sampler", self.sampler, "Its sample_indices_ are not row numbers of the labels."
            )
        rng.shuffle(indices)
        return indices


def _class_mass(weights: ClassWeights, counts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Unnormalised class probabilities ``count_c * w_c`` (zero for absent classes)."""
    if isinstance(weights, str):
        if weights == "balanced":
            return (counts > 0).astype(np.float64)
        if weights == "sqrt":
            return np.sqrt(counts.astype(np.float64))
        raise choice_error("weights", weights, _WEIGHT_SCHEMES)
    values: npt.NDArray[np.float64]
    try:
        if isinstance(weights, torch.Tensor):
            values = weights.detach().cpu().double().numpy()
        else:
            values = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise config_error(
            "weights", weights, "Pass 'balanced', 'sqrt' or one weight per class."
        ) from err
    if values.ndim != 1 or len(values) < len(counts):
        raise config_error(
            "weights",
            weights,
            f"Pass one weight per class: at least {len(counts)} (the largest class id in "
            "labels plus one).",
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise config_error("weights", weights, "Pass finite, non-negative weights.")
    padded = np.zeros(len(values), dtype=np.float64)
    padded[: len(counts)] = counts
    return padded * values


class ClassBalancedSampler(_EpochSampler):
    """Sample with replacement, first a class, then a sample of that class.

    Each draw picks class ``c`` with probability proportional to ``count_c * w_c``, then
    one of that class's samples uniformly. ``weights="balanced"`` (``w_c = 1 / count_c``)
    makes every class present equally likely; ``"sqrt"`` (``w_c = 1 / sqrt(count_c)``)
    draws classes in proportion to the square root of their size, a milder correction;
    or pass one non-negative weight per class (as a sequence, array or tensor; entries
    beyond the largest class id in ``labels`` belong to absent classes, which are never
    drawn).

    The draws are vectorised in NumPy with memory linear in the number of samples and no
    limit on it (``WeightedRandomSampler`` relies on ``torch.multinomial``, which refuses
    more than 2**24 samples). The epoch's generator is ``default_rng([seed, epoch])``.

    Args:
        labels: The class id of every training sample, in dataset order.
        weights: ``"balanced"``, ``"sqrt"``, or a non-negative weight per class.
        num_samples: Draws per epoch; ``None`` for ``len(labels)``.
        seed: Base seed; the list of epoch ``e`` depends only on it, ``e`` and the
            other arguments.

    Raises:
        RecipeConfigError: If ``labels`` are not 1-D non-negative integers, ``weights``
            is an unknown name, too short, negative or zero for every class present,
            ``num_samples`` is below 1, or ``seed`` is negative.

    Examples:
        >>> sampler = ClassBalancedSampler([0, 0, 0, 0, 0, 0, 1, 1], num_samples=6)
        >>> sampler.class_probabilities.tolist()
        [0.5, 0.5]
        >>> first = list(sampler)
        >>> len(first), first == list(sampler)
        (6, True)
        >>> sampler.set_epoch(1)
        >>> list(sampler) != first
        True
    """

    def __init__(
        self,
        labels: Labels,
        weights: ClassWeights = "balanced",
        *,
        num_samples: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(labels, seed)
        if num_samples is None:
            num_samples = len(self._labels)
        else:
            positive_int("num_samples", num_samples, "Pass a positive count.", numpy_ints=True)
        self.num_samples = int(num_samples)
        counts = np.bincount(self._labels).astype(np.int64)
        mass = _class_mass(weights, counts)
        total = float(mass.sum())
        if not total > 0.0:
            raise config_error(
                "weights", weights, "Give at least one class present in labels a positive weight."
            )
        self._probabilities: npt.NDArray[np.float64] = mass / total
        self._probabilities.flags.writeable = False
        cdf = np.cumsum(mass)
        self._cdf = cdf / cdf[-1]  # exact ties for zero-mass classes: never drawn
        self._counts = np.zeros(len(mass), dtype=np.float64)
        self._counts[: len(counts)] = counts
        self._starts = np.zeros(len(mass), dtype=np.int64)
        self._starts[1 : len(counts)] = np.cumsum(counts)[:-1]
        self._order = np.argsort(_small_ints(self._labels), kind="stable")

    @property
    def class_probabilities(self) -> npt.NDArray[np.float64]:
        """The probability of each class per draw (read-only; zero for absent classes)."""
        return self._probabilities

    @property
    def num_classes(self) -> int:
        """The number of classes: the length of ``class_probabilities``."""
        return len(self._probabilities)

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, rng: np.random.Generator) -> IndexArray:
        out = np.empty(self.num_samples, dtype=np.int64)
        uniform = np.empty(min(self.num_samples, _CHUNK), dtype=np.float64)
        for start in range(0, self.num_samples, _CHUNK):
            stop = min(start + _CHUNK, self.num_samples)
            u = uniform[: stop - start]
            rng.random(out=u)
            cls = np.searchsorted(self._cdf, u, side="right")
            rng.random(out=u)
            u *= self._counts[cls]  # uniform in [0, count) within the class
            position = u.astype(np.int64)
            position += self._starts[cls]
            np.take(self._order, position, out=out[start:stop])
        return out
