"""Per-class weights for imbalanced classification, computed from class counts.

`class_weights` turns the number of training samples of each class into one weight per
class, for a loss's ``weight=`` argument (``CrossEntropyLoss``, `FocalLoss`) or, through
`sample_weights`, for a ``WeightedRandomSampler``. Three standard schemes:

* ``"balanced"``: scikit-learn's ``n_samples / (n_classes * n_c)``;
* ``"effective_number"``: Cui et al. 2019, ``(1 - beta) / (1 - beta**n_c)``, normalised;
* ``"inverse_sqrt"``: ``1 / sqrt(n_c)``, normalised;

or an explicit ``{class_id: weight}`` mapping. `binary_pos_weight` turns the same schemes
into a BCE-style loss's ``pos_weight``. Pure numpy/torch: no Lightning here.
"""

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from lightning_recipes.errors import choice_error, config_error

__all__ = [
    "WEIGHT_SCHEMES",
    "binary_pos_weight",
    "check_scheme",
    "class_weights",
    "sample_weights",
]

WEIGHT_SCHEMES: tuple[str, ...] = ("balanced", "effective_number", "inverse_sqrt")
"""The named schemes accepted by `class_weights` (besides a ``{class_id: weight}`` mapping)."""

_ZERO_COUNT_CHOICES = ("error", "zero")


def _show(values: npt.NDArray[Any]) -> Any:
    """A short value for error messages: the list itself when small, else a summary."""
    if values.size <= 16:
        return values.tolist()
    return f"<{values.size} values of shape {values.shape}>"


def _as_counts(counts: Sequence[int] | npt.NDArray[Any] | Tensor) -> npt.NDArray[np.float64]:
    """Validate ``counts`` and return them as a float64 numpy vector."""
    if isinstance(counts, Tensor):
        array = counts.detach().cpu().numpy()
    else:
        try:
            array = np.asarray(counts)
        except (TypeError, ValueError) as err:  # ragged nested sequences
            raise config_error(
                "counts", counts, "Pass a 1-D sequence of per-class counts (index = class id)."
            ) from err
    if array.ndim != 1:
        raise config_error(
            "counts",
            _show(array),
            f"Pass a 1-D sequence of per-class counts (index = class id); got {array.ndim} "
            "dimensions.",
        )
    if array.dtype.kind not in "iuf":
        raise config_error(
            "counts", _show(array), "Pass whole-number counts, e.g. from numpy.bincount(labels)."
        )
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise config_error(
            "counts", _show(array), "Pass whole-number counts, e.g. from numpy.bincount(labels)."
        )
    if values.size < 2:
        raise config_error(
            "counts", _show(array), f"Pass counts for at least 2 classes; got {values.size}."
        )
    negative = np.flatnonzero(values < 0)
    if negative.size:
        raise config_error(
            "counts",
            _show(array),
            f"Counts must be >= 0; class ids with a negative count: {negative.tolist()}.",
        )
    if values.sum() <= 0:
        raise config_error("counts", _show(array), "At least one class needs a positive count.")
    return values


def _as_mapping_weights(scheme: Mapping[Any, Any], n_classes: int) -> npt.NDArray[np.float64]:
    """Turn a ``{class_id: weight}`` mapping into a validated weight vector."""
    weights = np.full(n_classes, np.nan)
    unknown: list[Any] = []
    for key, value in scheme.items():
        try:
            class_id = operator.index(key)
        except TypeError:
            unknown.append(key)
            continue
        if not 0 <= class_id < n_classes:
            unknown.append(key)
            continue
        try:
            weight = float(value)
        except (TypeError, ValueError) as err:
            raise config_error(
                "scheme", dict(scheme), f"Weight of class {class_id} is not a number: {value!r}."
            ) from err
        if not math.isfinite(weight) or weight < 0:
            raise config_error(
                "scheme",
                dict(scheme),
                f"Weights must be finite and >= 0; class {class_id} has {value!r}.",
            )
        weights[class_id] = weight
    if unknown:
        raise config_error(
            "scheme",
            dict(scheme),
            f"Keys must be class ids in 0..{n_classes - 1}; unexpected keys: {unknown}.",
        )
    missing = np.flatnonzero(np.isnan(weights))
    if missing.size:
        raise config_error(
            "scheme",
            dict(scheme),
            f"Give a weight for every class id 0..{n_classes - 1}; missing ids: "
            f"{missing.tolist()}.",
        )
    return weights


def _normalise(raw: npt.NDArray[np.float64], present: npt.NDArray[np.bool_]) -> None:
    """Scale ``raw`` in place so that its present entries sum to their number."""
    raw[present] *= present.sum() / raw[present].sum()


def check_scheme(scheme: Any) -> str | Mapping[int, float]:
    """Validate ``scheme`` at construction: a known name or a ``{class_id: weight}`` mapping.

    The class ids a mapping must cover are only known with the counts (`class_weights`).

    Args:
        scheme: What was passed as ``scheme``.

    Returns:
        ``scheme`` unchanged.

    Raises:
        RecipeConfigError: For an unknown name, an empty mapping or anything else, or an
            entry that is not ``class id >= 0: finite weight >= 0``.

    Examples:
        >>> check_scheme({0: 1.0, 1: 4.0})
        {0: 1.0, 1: 4.0}
    """
    if isinstance(scheme, str):
        if scheme not in WEIGHT_SCHEMES:
            raise choice_error("scheme", scheme, WEIGHT_SCHEMES)
        return scheme
    if not isinstance(scheme, Mapping) or not scheme:
        raise config_error(
            "scheme",
            scheme,
            f"Pass one of {', '.join(map(repr, WEIGHT_SCHEMES))} or a non-empty mapping "
            "{class_id: weight}.",
        )
    for key, value in scheme.items():
        bad_key = isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0
        bad_value = (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(value)
            or value < 0
        )
        if bad_key or bad_value:
            raise config_error(
                "scheme",
                dict(scheme),
                f"Entry {key!r}: {value!r}: keys are class ids >= 0, weights finite and >= 0.",
            )
    return scheme


def class_weights(
    counts: Sequence[int] | npt.NDArray[Any] | Tensor,
    scheme: str | Mapping[int, float] = "balanced",
    *,
    beta: float = 0.999,
    zero_count: Literal["error", "zero"] = "error",
) -> Tensor:
    """One weight per class from the number of samples of each class.

    Classes with a count of 0 ("absent" classes) are an error by default, as they usually
    mean a wrong number of classes or a bad split. With ``zero_count="zero"`` they get
    weight 0 and take no part in the number of classes ``n_classes`` nor in the
    normalisation; the formulas below then run over the present classes only.

    Args:
        counts: Non-negative whole-number count of each class, index = class id
            (a sequence, numpy array or 1-D tensor, e.g. ``numpy.bincount(labels)``), for
            at least 2 classes.
        scheme: How to turn counts into weights:

            * ``"balanced"``: ``n_samples / (n_classes * n_c)``, scikit-learn's
              ``compute_class_weight("balanced")``: the weighted count of every class is
              ``n_samples / n_classes``.
            * ``"effective_number"``: ``(1 - beta) / (1 - beta**n_c)``, the inverse of the
              "effective number of samples" of Cui et al. 2019 (Class-Balanced Loss),
              normalised so that the weights of present classes sum to ``n_classes``.
              ``beta=0`` gives equal weights; ``beta -> 1`` tends to inverse frequency.
            * ``"inverse_sqrt"``: ``1 / sqrt(n_c)``, normalised the same way: a milder
              rebalancing than inverse frequency.
            * a mapping ``{class_id: weight}`` covering every class id ``0..C-1`` with
              finite weights ``>= 0``, used as given.
        beta: The ``"effective_number"`` hyper-parameter, in ``[0, 1)``; Cui et al. use
            0.9, 0.99, 0.999 or 0.9999 (closer to 1 for more samples).
        zero_count: ``"error"`` to raise on classes with count 0, or ``"zero"`` to give
            them weight 0.

    Returns:
        A float32 tensor of shape ``(C,)``: the weight of class ``c`` at index ``c``.

    Raises:
        RecipeConfigError: If ``counts`` is not a 1-D vector of non-negative whole numbers
            for at least 2 classes with a positive total, if a class has count 0 and
            ``zero_count="error"``, if ``scheme``, ``beta`` or ``zero_count`` is invalid,
            or if a mapping misses class ids or holds negative or non-finite weights.

    Examples:
        >>> class_weights([10, 30])
        tensor([2.0000, 0.6667])
        >>> class_weights([10, 30], "effective_number", beta=0.0).tolist()
        [1.0, 1.0]
        >>> class_weights([4, 0, 1], "inverse_sqrt", zero_count="zero")
        tensor([0.6667, 0.0000, 1.3333])
    """
    values = _as_counts(counts)
    if zero_count not in _ZERO_COUNT_CHOICES:
        raise choice_error("zero_count", zero_count, _ZERO_COUNT_CHOICES)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
        raise config_error(
            "beta", beta, "Pass a value in [0, 1), e.g. 0.999 (closer to 1 for more samples)."
        )
    present = values > 0
    absent = np.flatnonzero(~present)
    if absent.size and zero_count == "error":
        raise config_error(
            "counts",
            _show(values.astype(np.int64)),
            f"Class ids {absent.tolist()} have no samples. Check the number of classes and "
            'the split, or pass zero_count="zero" to give them weight 0.',
        )

    if isinstance(scheme, Mapping):
        weights = _as_mapping_weights(scheme, values.size)
    elif isinstance(scheme, str) and scheme in WEIGHT_SCHEMES:
        n = values[present]
        weights = np.zeros_like(values)
        if scheme == "balanced":
            weights[present] = n.sum() / (n.size * n)
        elif scheme == "effective_number":
            if beta == 0.0:
                weights[present] = 1.0
            else:
                # 1 - beta**n, accurate for beta close to 1 too.
                weights[present] = (1.0 - beta) / -np.expm1(n * math.log(beta))
            _normalise(weights, present)
        else:
            weights[present] = 1.0 / np.sqrt(n)
            _normalise(weights, present)
    elif isinstance(scheme, str):
        raise choice_error("scheme", scheme, WEIGHT_SCHEMES)
    else:
        listed = ", ".join(repr(s) for s in WEIGHT_SCHEMES)
        raise config_error(
            "scheme", scheme, f"Pass one of: {listed}, or a mapping {{class_id: weight}}."
        )
    weights[~present] = 0.0
    return torch.tensor(weights, dtype=torch.float32)


def binary_pos_weight(
    positives: npt.ArrayLike, total: int, scheme: str | Mapping[int, float], beta: float
) -> torch.Tensor:
    """``pos_weight`` for BCE-style losses: the positive class's weight over the negative's.

    Args:
        positives: Number of positives per label (one label for binary tasks).
        total: Number of samples.
        scheme: A scheme of `class_weights`.
        beta: Its ``beta``.

    Returns:
        One ratio per label; ``"balanced"`` gives ``negatives / positives``.

    Examples:
        >>> binary_pos_weight([10, 50], 100, "balanced", 0.999).tolist()
        [9.0, 1.0]
    """
    ratios = []
    for count in np.atleast_1d(np.asarray(positives, dtype=np.int64)):
        weights = class_weights([total - int(count), int(count)], scheme, beta=beta)
        ratios.append(float(weights[1] / weights[0]))
    return torch.tensor(ratios, dtype=torch.float32)


def sample_weights(
    labels: Sequence[int] | npt.NDArray[Any] | Tensor,
    weights: Sequence[float] | npt.NDArray[Any] | Tensor,
) -> Tensor:
    """The weight of each sample's class: ``weights[labels]``, e.g. for a weighted sampler.

    Args:
        labels: Integer class id of each sample, any shape.
        weights: One weight per class, index = class id (e.g. from `class_weights`).

    Returns:
        A tensor of the shape of ``labels``, on the device of ``weights``, with the
        dtype of ``weights`` (float32 when ``weights`` are not floating point).

    Raises:
        RecipeConfigError: If ``weights`` is not 1-D, or ``labels`` are not integers in
            ``[0, len(weights))``.

    Examples:
        >>> sample_weights([0, 1, 1, 0], [2.0, 0.5]).tolist()
        [2.0, 0.5, 0.5, 2.0]
    """
    table = torch.as_tensor(weights)
    if not table.is_floating_point():
        table = table.float()
    if table.ndim != 1:
        raise config_error(
            "weights",
            tuple(table.shape),
            "Pass one weight per class as a 1-D sequence (index = class id).",
        )
    ids = torch.as_tensor(labels)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise config_error(
            "labels", ids.dtype, "Pass integer class ids (e.g. torch.long or numpy int64)."
        )
    ids = ids.to(device=table.device, dtype=torch.long)
    out_of_range = ids[(ids < 0) | (ids >= table.numel())]
    if out_of_range.numel():
        raise config_error(
            "labels",
            sorted(set(out_of_range.tolist()))[:10],
            f"Class ids must be in 0..{table.numel() - 1} (one weight per class); these are not.",
        )
    return table[ids]
