"""Metrics that do not hide a neglected class: G-mean of recalls, balanced accuracy.

Plain accuracy rewards a model that ignores a 3% class. The metrics here are built on
per-class recall, computed from a confusion matrix (accumulated by torchmetrics and summed
over ranks, so they are exact under DDP). The `ImbalanceReport` callback, which writes
imbalanced-learn's ``classification_report_imbalanced`` and a per-class recall chart at
the end of testing, is in `lightning_recipes.imbalance.imbalance_report` (its old path
here still works for one release, with a `DeprecationWarning`).
"""

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_confusion_matrix
from typing_extensions import override

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes._core.validate import int_at_least
from lightning_recipes.errors import config_error

__all__ = [
    "BalancedAccuracy",
    "GeometricMeanRecall",
    "PerClassRecall",
    "geometric_mean_recall",
    "labels_from_confusion",
    "per_class_recall",
]


def _predicted_labels(preds: Tensor) -> Tensor:
    """Class ids from class ids, or from ``(N, C)`` logits/probabilities."""
    return preds.argmax(dim=-1) if preds.ndim == 2 else preds


def _target_ids(target: Tensor, predicted: Tensor) -> Tensor:
    """Flat class ids from class ids, or from one-hot/probability rows (argmax over dim 1).

    Checks shapes only (no value is read back to the host).
    """
    if target.is_floating_point() and target.ndim >= 2:
        target = target.argmax(dim=1)
    target = target.reshape(-1)
    if target.numel() != predicted.numel():
        raise config_error(
            "target",
            f"<tensor of shape {tuple(target.shape)}>",
            f"Pass one class id per prediction ({predicted.numel()}), or one-hot/probability "
            "rows of shape (N, num_classes).",
        )
    return target.long()


def per_class_recall(confusion: Tensor) -> Tensor:
    """Recall of each class from a confusion matrix (rows: true class).

    The one implementation of per-class recall in the library: `PerClassRecall`,
    `GeometricMeanRecall`, `BalancedAccuracy`, `ImbalanceReport` and the demo's run report
    use it. Hand-written rather than torchmetrics' ``MulticlassRecall`` because that divides
    in float32 and gives 0 or 1 (``zero_division``), not NaN, for a class without samples,
    so the balanced accuracy and G-mean built on it would count an absent class and would
    not match scikit-learn / imbalanced-learn (tested to 1e-9).

    Args:
        confusion: ``(C, C)`` counts, ``confusion[t, p]`` = samples of class t predicted p.

    Returns:
        ``(C,)`` recalls in float64; NaN for a class with no samples.

    Examples:
        >>> import torch
        >>> per_class_recall(torch.tensor([[3, 1], [0, 2]])).tolist()
        [0.75, 1.0]
    """
    counts = confusion.sum(dim=1).double()
    return confusion.diagonal().double() / counts


def geometric_mean_recall(recall: Tensor) -> Tensor:
    """Geometric mean of per-class recalls, leaving out classes without samples (NaN).

    The one implementation of the G-mean in the library (`GeometricMeanRecall` and
    `ImbalanceReport`'s chart use it).

    Args:
        recall: ``(C,)`` recalls from `per_class_recall`.

    Returns:
        A scalar tensor; NaN when no class has samples.

    Examples:
        >>> import torch
        >>> round(float(geometric_mean_recall(torch.tensor([0.25, 1.0, float("nan")]))), 4)
        0.5
    """
    present = recall[~torch.isnan(recall)]
    if present.numel() == 0:
        return torch.tensor(float("nan"), dtype=torch.float64)
    return present.prod() ** (1.0 / present.numel())


def _check_num_classes(num_classes: int) -> int:
    return int_at_least("num_classes", num_classes, 2, "Pass the number of classes, >= 2.")


def _confusion(preds: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """The ``(C, C)`` confusion matrix of one batch (torchmetrics), from ids or scores."""
    if preds.ndim == 2 and preds.shape[1] != num_classes:
        raise config_error(
            "preds",
            f"<tensor of shape {tuple(preds.shape)}>",
            f"Pass class ids (N,) or scores with one column per class (N, {num_classes}).",
        )
    predicted = _predicted_labels(preds).reshape(-1)
    # validate_args=False: torchmetrics' value checks read tensors back to the host on
    # every update; shapes are checked above and in _target_ids without a sync.
    return multiclass_confusion_matrix(
        predicted, _target_ids(target, predicted), num_classes, validate_args=False
    )


class PerClassRecall(Metric):
    """Recall of every class, from a confusion matrix summed over batches and ranks.

    The matrix is accumulated with torchmetrics' ``multiclass_confusion_matrix`` and
    synchronised by summation, so the result is exact under DDP; the recall is
    `per_class_recall` of it.

    Args:
        num_classes: Number of classes.
        **kwargs: Passed to ``torchmetrics.Metric``.

    Examples:
        >>> import torch
        >>> metric = PerClassRecall(num_classes=3)
        >>> metric.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]))
        >>> metric.compute().tolist()
        [1.0, 1.0, 0.5]
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    confmat: Tensor

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.add_state(
            "confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    @override
    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add the batch's confusion matrix.

        Args:
            preds: Class ids ``(N,)`` or scores ``(N, C)``.
            target: Class ids ``(N,)``, or one-hot/probability rows ``(N, C)`` (counted
                as their argmax).

        Raises:
            RecipeConfigError: If ``target`` does not have one entry per prediction, or
                scores do not have one column per class.
        """
        self.confmat += _confusion(preds, target, self.num_classes)

    @override
    def compute(self) -> Tensor:
        """Per-class recall; NaN for a class without samples."""
        return per_class_recall(self.confmat)


class GeometricMeanRecall(PerClassRecall):
    """Geometric mean of the per-class recalls (imbalanced-learn's ``geometric_mean_score``).

    Zero as soon as one class is never recognised, which accuracy and even macro F1 can
    hide. Classes without samples are left out.

    Examples:
        >>> import torch
        >>> metric = GeometricMeanRecall(num_classes=2)
        >>> metric.update(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 0]))
        >>> round(float(metric.compute()), 4)  # sqrt(2/3 * 1)
        0.8165
    """

    @override
    def compute(self) -> Tensor:
        """The geometric mean over classes with samples."""
        return geometric_mean_recall(super().compute())


class BalancedAccuracy(PerClassRecall):
    """Balanced accuracy: the mean of the per-class recalls (macro recall).

    Examples:
        >>> import torch
        >>> metric = BalancedAccuracy(num_classes=2)
        >>> metric.update(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 0, 1]))
        >>> float(metric.compute())  # accuracy would say 0.75
        0.5
    """

    @override
    def compute(self) -> Tensor:
        """The mean over classes with samples."""
        recall = super().compute()
        return recall[~torch.isnan(recall)].mean()


def labels_from_confusion(
    confusion: npt.ArrayLike,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(y_true, y_pred)`` arrays having exactly the given confusion matrix.

    Args:
        confusion: ``confusion[t, p]`` = number of samples of class t predicted as p.

    Returns:
        Label arrays whose confusion matrix is ``confusion`` (in sorted order).

    Examples:
        >>> y_true, y_pred = labels_from_confusion([[2, 1], [0, 1]])
        >>> y_true.tolist(), y_pred.tolist()
        ([0, 0, 0, 1], [0, 0, 1, 1])
    """
    matrix = np.asarray(confusion, dtype=np.int64)
    classes = matrix.shape[0]
    true = np.repeat(np.repeat(np.arange(classes), classes), matrix.reshape(-1))
    pred = np.repeat(np.tile(np.arange(classes), classes), matrix.reshape(-1))
    return true, pred


def __getattr__(name: str) -> Any:
    # Deprecated (one release): the callback moved to a module named after it.
    if name == "ImbalanceReport":
        return moved_attribute(__name__, name, "lightning_recipes.imbalance.imbalance_report")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
