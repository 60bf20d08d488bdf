"""Pure index arithmetic on label arrays: stratified splits, K folds and class imbalance.

No Lightning and no torch here: labels in, indices out (K folds come from scikit-learn).
The stratified split and the imbalance maker are exact, not
approximately proportional: see their docstrings for the rounding rule.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from lightning_recipes._core.labels import class_ids
from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import choice_error, config_error

__all__ = [
    "FOLD_KINDS",
    "FoldKind",
    "check_class_fractions",
    "check_fold_args",
    "class_counts",
    "fold_split",
    "make_imbalanced",
    "stratified_split",
]

FoldKind = Literal["stratified", "plain", "grouped"]
FOLD_KINDS: tuple[FoldKind, ...] = ("stratified", "plain", "grouped")


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
    y = class_ids(labels)
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
    y = class_ids(labels)
    fix = "Pass a list of non-negative part sizes summing to 1, e.g. (0.8, 0.2)."
    try:
        parts = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise config_error("fractions", fractions, fix) from err
    if parts.ndim != 1 or parts.size == 0 or np.any(parts < 0) or not np.all(np.isfinite(parts)):
        raise config_error("fractions", fractions, fix)
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


def check_class_fractions(
    argument: str, fractions: Any, num_classes: int | None = None
) -> dict[int, float]:
    """Check a ``{class_id: fraction of the class to keep}`` mapping (``imbalance=``).

    Args:
        argument: The argument's name, for the message.
        fractions: What was passed.
        num_classes: When known, class ids must be below it.

    Returns:
        The mapping, as a dict of ints to floats.

    Raises:
        RecipeConfigError: Unless it maps class ids (ints ``>= 0``, below ``num_classes``)
            to fractions in [0, 1].

    Examples:
        >>> check_class_fractions("imbalance", {3: 0.1})
        {3: 0.1}
        >>> check_class_fractions("imbalance", [0.1])
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: Invalid imbalance=[0.1]. Pass a mapping ...
    """
    ids = "class ids 0-" + str(num_classes - 1) if num_classes else "class ids (ints >= 0)"
    fix = (
        f"Pass a mapping of {ids} to the fraction of the class to keep, in [0, 1], e.g. {{3: 0.1}}."
    )
    if not isinstance(fractions, Mapping):
        raise config_error(argument, fractions, fix)
    out: dict[int, float] = {}
    for cls, fraction in fractions.items():
        if not is_int(cls, numpy_ints=True) or cls < 0:
            raise config_error(argument, dict(fractions), f"Key {cls!r} is not a class id. {fix}")
        if num_classes is not None and cls >= num_classes:
            raise config_error(f"{argument}[{cls}]", fraction, fix)
        if not is_real(fraction) or not 0.0 <= fraction <= 1.0:
            raise config_error(f"{argument}[{cls}]", fraction, fix)
        out[int(cls)] = float(fraction)
    return out


def make_imbalanced(
    labels: npt.ArrayLike,
    fractions: Mapping[int, float],
    *,
    seed: int = 0,
    argument: str = "fractions",
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
        argument: The name under which the caller received ``fractions``, for errors.

    Returns:
        The sorted indices of the kept samples.

    Raises:
        RecipeConfigError: If ``fractions`` is not such a mapping or a class does not occur.

    Examples:
        >>> labels = [0] * 10 + [1] * 10
        >>> kept = make_imbalanced(labels, {1: 0.2})
        >>> class_counts([labels[i] for i in kept]).tolist()
        [10, 2]
    """
    y = class_ids(labels)
    present = set(np.unique(y).tolist())
    check_class_fractions(argument, fractions)
    for cls in fractions:
        if int(cls) not in present:
            raise config_error(
                argument,
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


def check_fold_args(num_folds: int | None, fold: int, fold_kind: str) -> None:
    """Validate the fold arguments shared by the datamodules (raises `RecipeConfigError`).

    Args:
        num_folds: Number of folds ``K >= 2``, or None for no folds.
        fold: The validation fold, in ``[0, K)``.
        fold_kind: One of `FOLD_KINDS`.
    """
    if fold_kind not in FOLD_KINDS:
        raise choice_error("fold_kind", fold_kind, FOLD_KINDS)
    if num_folds is None:
        if fold != 0:
            raise config_error("fold", fold, "Set num_folds (K >= 2) to choose a fold.")
        return
    if isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 2:
        raise config_error("num_folds", num_folds, "Pass an integer K >= 2, or None for no folds.")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise config_error(
            "fold", fold, f"Pass the validation fold's index, 0 <= fold < num_folds={num_folds}."
        )


def fold_split(
    labels: npt.ArrayLike,
    num_folds: int,
    fold: int,
    *,
    kind: FoldKind = "stratified",
    groups: npt.ArrayLike | None = None,
    seed: int = 0,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split sample indices into training folds and one validation fold (K-fold CV).

    The folds come from scikit-learn, shuffled with ``seed`` (the same folds on every
    machine and every rank): ``"stratified"`` is ``StratifiedKFold`` (each fold keeps the
    class proportions), ``"plain"`` is ``KFold``, ``"grouped"`` is
    ``StratifiedGroupKFold`` (all samples of a group fall in the same fold, so no group is
    in both training and validation; classes are kept as balanced as the groups allow).
    The ``K`` validation folds of ``fold = 0 .. K-1`` partition the samples.

    Args:
        labels: 1-D integer class ids, one per sample.
        num_folds: The number of folds ``K >= 2``.
        fold: The index of the validation fold, ``0 <= fold < K``.
        kind: ``"stratified"``, ``"plain"`` or ``"grouped"``.
        groups: One group id per sample; required for (and only for) ``"grouped"``.
        seed: Seed of the shuffle.

    Returns:
        ``(train_indices, val_indices)``, each sorted.

    Raises:
        RecipeConfigError: For bad arguments, or when the data cannot be cut into
            ``num_folds`` folds of that kind (e.g. fewer groups than folds).

    Examples:
        >>> train, val = fold_split([0, 1] * 6, num_folds=3, fold=0)
        >>> len(train), len(val), sorted(set(val.tolist()) & set(train.tolist()))
        (8, 4, [])
    """
    check_fold_args(num_folds, fold, kind)
    y = class_ids(labels)
    if num_folds > y.size:
        raise config_error(
            "num_folds", num_folds, f"Pass at most one fold per sample ({y.size} samples)."
        )
    model_selection = require("sklearn.model_selection", extra="data", feature="K-fold splits")
    group_ids = None
    if kind == "grouped":
        if groups is None:
            raise config_error(
                "groups", None, 'fold_kind="grouped" needs one group id per sample: pass groups.'
            )
        group_ids = np.asarray(groups)
        if group_ids.shape != y.shape:
            raise config_error(
                "groups",
                f"<array of shape {group_ids.shape}>",
                f"Pass one group id per sample ({y.size}).",
            )
        n_groups = np.unique(group_ids).size
        if n_groups < num_folds:
            raise config_error(
                "num_folds", num_folds, f"There are only {n_groups} groups: pass num_folds <= it."
            )
        splitter = model_selection.StratifiedGroupKFold(
            n_splits=num_folds, shuffle=True, random_state=seed
        )
    elif groups is not None:
        raise config_error(
            "groups", "<array>", f'Groups are used by fold_kind="grouped" only, not {kind!r}.'
        )
    elif kind == "stratified":
        smallest = int(np.bincount(y - y.min()).max(initial=0)) if y.size else 0
        if smallest < num_folds:
            raise config_error(
                "num_folds",
                num_folds,
                f"Every class has fewer than {num_folds} samples: pass fewer folds.",
            )
        splitter = model_selection.StratifiedKFold(
            n_splits=num_folds, shuffle=True, random_state=seed
        )
    else:
        splitter = model_selection.KFold(n_splits=num_folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros((y.size, 1)), y, group_ids))
    train_idx, val_idx = splits[fold]
    return np.sort(train_idx).astype(np.int64), np.sort(val_idx).astype(np.int64)
