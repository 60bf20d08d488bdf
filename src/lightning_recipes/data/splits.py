"""Pure index arithmetic on label arrays: stratified splits and class imbalance.

No Lightning and no torch here: labels in, indices out. Both functions are exact, not
approximately proportional: see their docstrings for the rounding rule.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from lightning_recipes.errors import config_error

__all__ = ["class_counts", "make_imbalanced", "stratified_split"]


def _as_labels(labels: npt.ArrayLike) -> npt.NDArray[np.int64]:
    array = np.asarray(labels)
    if array.ndim != 1:
        raise config_error("labels", f"<array of shape {array.shape}>", "Pass a 1-D array.")
    if (
        array.size
        and not np.issubdtype(array.dtype, np.integer)
        and not np.all(np.equal(np.mod(array, 1), 0))
    ):
        raise config_error("labels", f"<{array.dtype} array>", "Pass integer class ids.")
    return array.astype(np.int64, copy=False)


def class_counts(labels: npt.ArrayLike, num_classes: int | None = None) -> npt.NDArray[np.int64]:
    """Count how many samples each class has.

    Args:
        labels: 1-D integer class ids.
        num_classes: Length of the result; defaults to ``max(labels) + 1``.

    Returns:
        ``counts[c]`` = number of samples of class ``c``.

    Examples:
        >>> class_counts([0, 2, 2]).tolist()
        [1, 0, 2]
    """
    y = _as_labels(labels)
    if y.size and y.min() < 0:
        raise config_error("labels", int(y.min()), "Class ids must be >= 0.")
    return np.bincount(y, minlength=num_classes or 0).astype(np.int64)


def _largest_remainder(total: int, fractions: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Split ``total`` into integer parts proportional to ``fractions``, summing exactly."""
    raw = fractions * total
    parts = np.floor(raw).astype(np.int64)
    short = total - int(parts.sum())
    # Ties go to the earlier part (stable sort), so the result is deterministic.
    order = np.argsort(-(raw - parts), kind="stable")
    parts[order[:short]] += 1
    return parts


def stratified_split(
    labels: npt.ArrayLike, fractions: Sequence[float], *, seed: int = 0
) -> list[npt.NDArray[np.int64]]:
    """Split sample indices into parts that keep every class's proportion.

    Each class's samples are shuffled with ``seed`` and cut into parts whose sizes are the
    class count times ``fractions``, rounded by the largest-remainder rule: the part sizes
    of every class sum exactly to its count and each differs from the exact proportion by
    less than one sample. The same ``labels`` and ``seed`` give the same split on every
    machine and every rank.

    Args:
        labels: 1-D integer class ids, one per sample.
        fractions: Non-negative part sizes summing to 1, e.g. ``(0.7, 0.15, 0.15)``.
        seed: Seed of the shuffle.

    Returns:
        One sorted index array per part; together they partition ``range(len(labels))``.

    Raises:
        RecipeConfigError: If a fraction is negative or they do not sum to 1.

    Examples:
        >>> train, val = stratified_split([0, 0, 0, 0, 1, 1], (0.5, 0.5), seed=0)
        >>> sorted(len(part) for part in (train, val))
        [3, 3]
    """
    y = _as_labels(labels)
    parts = np.asarray(fractions, dtype=np.float64)
    if parts.ndim != 1 or parts.size == 0 or np.any(parts < 0) or not np.all(np.isfinite(parts)):
        raise config_error("fractions", tuple(fractions), "Pass non-negative part sizes.")
    if not np.isclose(parts.sum(), 1.0):
        raise config_error("fractions", tuple(fractions), "The part sizes must sum to 1.")
    rng = np.random.default_rng(seed)
    out: list[list[npt.NDArray[np.int64]]] = [[] for _ in parts]
    for cls in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == cls))
        sizes = _largest_remainder(members.size, parts)
        for k, chunk in enumerate(np.split(members, np.cumsum(sizes)[:-1])):
            out[k].append(chunk)
    return [
        np.sort(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.int64) for chunks in out
    ]


def make_imbalanced(
    labels: npt.ArrayLike, fractions: Mapping[int, float], *, seed: int = 0
) -> npt.NDArray[np.int64]:
    """Select indices that shrink chosen classes to a fraction of their size.

    Class ``c`` keeps ``round(fractions[c] * count_c)`` randomly chosen samples (at least one
    when the fraction is positive, so a class never vanishes by rounding); classes not in
    ``fractions`` keep every sample. Apply it to the training split only: validation and
    test sets should keep the true distribution so that the damage is measurable.

    Args:
        labels: 1-D integer class ids, one per sample.
        fractions: ``{class_id: fraction in [0, 1]}``.
        seed: Seed of the random choice.

    Returns:
        The sorted indices of the kept samples.

    Raises:
        RecipeConfigError: If a fraction is outside [0, 1] or a class does not occur.

    Examples:
        >>> labels = [0] * 10 + [1] * 10
        >>> kept = make_imbalanced(labels, {1: 0.2})
        >>> class_counts([labels[i] for i in kept]).tolist()
        [10, 2]
    """
    y = _as_labels(labels)
    present = set(np.unique(y).tolist())
    for cls, fraction in fractions.items():
        if not 0.0 <= float(fraction) <= 1.0:
            raise config_error(
                f"imbalance[{cls}]", fraction, "Pass the fraction of the class to keep, in [0, 1]."
            )
        if int(cls) not in present:
            raise config_error(
                "imbalance",
                dict(fractions),
                f"Class {cls} does not occur; classes: {sorted(present)}.",
            )
    rng = np.random.default_rng(seed)
    keep = np.ones(y.size, dtype=bool)
    for cls in sorted(fractions):
        members = np.flatnonzero(y == int(cls))
        fraction = float(fractions[cls])
        n_keep = round(fraction * members.size)
        if fraction > 0:
            n_keep = max(n_keep, 1)
        dropped = rng.choice(members, size=members.size - n_keep, replace=False)
        keep[dropped] = False
    return np.flatnonzero(keep).astype(np.int64)
