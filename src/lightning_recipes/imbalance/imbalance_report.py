"""ImbalanceReport: at the end of testing, imbalanced-learn's report and a recall chart.

The metrics it reports are computed in `lightning_recipes.imbalance.metrics` (a confusion
matrix summed over ranks, per-class recall, their geometric mean).
"""

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.optional import new_figure, require
from lightning_recipes._core.validate import batch_key, flag
from lightning_recipes.errors import config_error
from lightning_recipes.imbalance.labels import LabelKey, batch_labels, check_label_key
from lightning_recipes.imbalance.metrics import (
    _check_num_classes,
    _confusion,
    geometric_mean_recall,
    labels_from_confusion,
    per_class_recall,
)

__all__ = ["ImbalanceReport"]


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
