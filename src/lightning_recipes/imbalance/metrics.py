"""Metrics that do not hide a neglected class: G-mean of recalls, balanced accuracy, report.

Plain accuracy rewards a model that ignores a 3% class. The metrics here are built on
per-class recall, computed from a confusion matrix (accumulated by torchmetrics and summed
over ranks, so they are exact under DDP), and the `ImbalanceReport` callback writes
imbalanced-learn's ``classification_report_imbalanced`` and a per-class recall chart at
the end of testing.
"""

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_confusion_matrix
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.optional import new_figure, require
from lightning_recipes._core.validate import batch_key, flag, int_at_least
from lightning_recipes.errors import config_error
from lightning_recipes.imbalance.labels import (
    LabelKey,
    batch_labels,
    check_label_key,
)

__all__ = [
    "BalancedAccuracy",
    "GeometricMeanRecall",
    "ImbalanceReport",
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


class ImbalanceReport(Callback):
    """At the end of testing, write imbalanced-learn's report and a per-class recall chart.

    During ``trainer.test`` the callback accumulates a confusion matrix from the module's
    predictions (the ``preds`` / ``logits`` of ``test_step``'s output when it returns
    them, else ``pl_module(inputs)``), sums it over ranks, and on rank zero writes
    ``<run dir>/imbalance_report.txt`` with ``classification_report_imbalanced``
    (precision, recall, specificity, F1, geometric mean, index of balanced accuracy per
    class) and the figure ``imbalance/recall`` (PNG and TensorBoard). The run dir is the
    logger's log dir, else the Trainer's ``default_root_dir``; with neither, nothing is
    written (the text stays in ``report``), never into the current folder. Needs the
    ``imbalanced`` extra (and ``plots`` for the figure).

    The labels of a test batch are never guessed: they are ``batch[label_key]``, the
    second element of an ``(inputs, labels)`` pair, or the one ``label`` / ``labels`` /
    ``y`` / ``target`` / ``targets`` key of a dict batch; a batch such as
    ``(x, y, sample_weight)`` without ``label_key`` is refused at the first test batch.
    One-hot or probability targets count as their argmax.

    Args:
        num_classes: Number of classes.
        class_names: Names for the report and chart (default: the class ids).
        plot: Draw the per-class recall chart.
        label_key: The label's index in a tuple/list batch or key in a dict batch.
        input_key: The inputs' index or key, for the forward pass when ``test_step``
            returns no ``preds``/``logits`` (0, as every recipe's; None, the old default,
            is read as 0).

    Attributes:
        confusion: The last test's confusion matrix (numpy), None before.
        report: The last report's text, None before.
        path: Where the report was written (rank zero), None before or when there is
            no run dir.
    """

    def __init__(
        self,
        num_classes: int,
        class_names: list[str] | None = None,
        plot: bool = True,
        *,
        label_key: int | str | None = None,
        input_key: int | str | None = 0,
    ) -> None:
        super().__init__()
        _check_num_classes(num_classes)
        if class_names is not None and (
            isinstance(class_names, str)
            or not isinstance(class_names, list | tuple)
            or len(class_names) != num_classes
            or not all(isinstance(name, str) and name for name in class_names)
            or len(set(class_names)) != len(class_names)
        ):
            raise config_error(
                "class_names",
                class_names,
                f"Pass a list of {num_classes} distinct, non-empty names (one per class).",
            )
        flag("plot", plot)
        self.label_key: LabelKey = check_label_key(label_key)
        self.input_key = batch_key("input_key", 0 if input_key is None else input_key)
        require("imblearn.metrics", extra="imbalanced", feature="ImbalanceReport")
        if plot:
            new_figure("ImbalanceReport(plot=True)")
        self.num_classes = num_classes
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.plot = plot
        self.confusion: npt.NDArray[np.int64] | None = None
        self.report: str | None = None
        self.path: Path | None = None
        self._matrix: Tensor | None = None

    @override
    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._matrix = torch.zeros(
            self.num_classes, self.num_classes, dtype=torch.long, device=pl_module.device
        )

    @override
    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._matrix is None:
            return
        target = batch_labels(batch, self.label_key, owner="ImbalanceReport")
        scores = None
        if isinstance(outputs, dict):
            scores = outputs.get("preds", outputs.get("logits"))
        if not isinstance(scores, Tensor):
            inputs = batch_inputs(batch, self.input_key, "ImbalanceReport", floating=False)
            scores = pl_module(inputs)
        self._matrix += _confusion(scores.detach(), target, self.num_classes)

    @override
    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._matrix is None:
            return
        self.confusion = helpers.reduce_sum(trainer, self._matrix).cpu().numpy()
        metrics = require("imblearn.metrics", extra="imbalanced", feature="ImbalanceReport")
        y_true, y_pred = labels_from_confusion(self.confusion)
        self.report = str(
            metrics.classification_report_imbalanced(
                y_true,
                y_pred,
                labels=list(range(self.num_classes)),
                target_names=self.class_names,
                zero_division=0,
            )
        )
        if trainer.global_rank != 0:
            return
        folder = helpers.run_dir(trainer)
        if folder is not None:  # no logger and no default_root_dir: keep it in memory only
            folder.mkdir(parents=True, exist_ok=True)
            self.path = folder / "imbalance_report.txt"
            self.path.write_text(self.report)
        if self.plot:
            helpers.log_figure(trainer, self._figure(), "imbalance/recall")

    def _figure(self) -> Any:
        assert self.confusion is not None
        support = self.confusion.sum(axis=1)
        recall = per_class_recall(torch.from_numpy(self.confusion))
        gmean = float(geometric_mean_recall(recall))
        balanced = float(recall[~torch.isnan(recall)].mean())
        recall = torch.nan_to_num(recall, nan=0.0)  # a bar of height 0 for an empty class
        figure = new_figure("ImbalanceReport", figsize=(max(4.0, 0.6 * self.num_classes), 3.5))
        ax = figure.add_subplot()
        bars = ax.bar(self.class_names, recall.numpy(), color="C0")
        for bar, count in zip(bars, support, strict=True):
            ax.annotate(f"n={count}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)  # fmt: skip
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("recall")
        ax.set_title(f"Per-class recall (balanced acc {balanced:.3f}, "
                     f"G-mean {gmean:.3f})")  # fmt: skip
        return figure
