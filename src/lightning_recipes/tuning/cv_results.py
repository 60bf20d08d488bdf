"""What a cross-validation returns: each fold's result and their summary (`CVResult`)."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from lightning.pytorch import Callback

from lightning_recipes._core.tables import markdown_table
from lightning_recipes.errors import (
    config_error,
)

if TYPE_CHECKING:
    pass

__all__ = ["CVResult", "FoldResult"]

Use = Literal["best", "last"]
CallbacksFactory = Callable[[int], Sequence[Callback]]
ReporterFactory = Callable[[int], Callback | None]


@dataclass(frozen=True)
class FoldResult:
    """What one fold produced.

    Attributes:
        fold: The index of the validation fold.
        value: The monitored metric at the selected epoch.
        epoch: The selected epoch (0-based): the best by ``mode``, or the last.
        metrics: Every scalar metric at the end of the selected epoch (validation and
            the epoch's training aggregates).
        train_size: Samples in the training folds (after any imbalance).
        val_size: Samples in the validation fold.
        history: The monitored value after each validation run.
        checkpoint: The fold's best checkpoint (its ModelCheckpoint's
            ``best_model_path``, else its last), when ``out_dir`` keeps the folds' files;
            None otherwise.
    """

    fold: int
    value: float
    epoch: int
    metrics: dict[str, float]
    train_size: int | None
    val_size: int | None
    history: list[float] = field(default_factory=list)
    checkpoint: str | None = None


@dataclass(frozen=True)
class CVResult:
    """The outcome of a cross-validation: one `FoldResult` per fold and their summary.

    The spread is the sample standard deviation over folds (``ddof=1``).

    Attributes:
        monitor: The metric that selects each fold's epoch and is averaged.
        mode: ``"min"`` or ``"max"``.
        kind: The fold kind (``"stratified"``, ``"plain"``, ``"grouped"``).
        folds: One result per fold, in fold order.
    """

    monitor: str
    mode: str
    kind: str
    folds: list[FoldResult]

    @property
    def values(self) -> list[float]:
        """The monitored value of every fold."""
        return [f.value for f in self.folds]

    @property
    def mean(self) -> float:
        """The mean of the monitored value over the folds."""
        return float(np.mean(self.values))

    @property
    def checkpoints(self) -> list[str]:
        """Every fold's checkpoint, in fold order: the members of a K-fold ensemble.

        For example ``EnsembleModule.from_checkpoints(template, result.checkpoints)``.
        Each fold's model saw its own fold's preprocessing (a scaler fitted on its
        training folds); an ensemble feeds all of them the same inputs.

        Raises:
            RecipeConfigError: If a fold kept no checkpoint (no ``out_dir``, or no
                ModelCheckpoint in the config).
        """
        missing = [f.fold for f in self.folds if f.checkpoint is None]
        if missing:
            raise config_error(
                "out_dir",
                None,
                f"Folds {missing} kept no checkpoint. Pass cross_validate(out_dir=...) so the "
                "fold files are kept, with a ModelCheckpoint in the config's callbacks "
                "(enable_checkpointing adds one).",
            )
        return [f.checkpoint for f in self.folds if f.checkpoint is not None]

    @property
    def std(self) -> float:
        """The sample standard deviation (ddof=1) of the monitored value over the folds."""
        return _std(self.values)

    def summary(self) -> dict[str, tuple[float, float]]:
        """``{metric: (mean, std)}`` over the folds, for every metric that all folds have."""
        names = _common_metrics(self.folds)
        return {
            name: (
                float(np.mean([f.metrics[name] for f in self.folds])),
                _std([f.metrics[name] for f in self.folds]),
            )
            for name in names
        }

    def table(self) -> str:
        """A Markdown table: one row per fold, then the mean ± std of every metric."""
        names = _common_metrics(self.folds)
        headers = ["fold", "epoch", "train", "val", *names]
        rows: list[list[Any]] = [
            [
                f.fold,
                f.epoch,
                "" if f.train_size is None else f.train_size,
                "" if f.val_size is None else f.val_size,
                *(f.metrics[n] for n in names),
            ]
            for f in self.folds
        ]
        summary = self.summary()
        rows.append(
            [
                "mean ± std",
                "",
                "",
                "",
                *(f"{summary[n][0]:.4f} ± {summary[n][1]:.4f}" for n in names),
            ]
        )
        return markdown_table(headers, rows)

    def __str__(self) -> str:
        return (
            f"{len(self.folds)}-fold {self.kind} CV: {self.monitor} = "
            f"{self.mean:.4f} ± {self.std:.4f} ({self.mode})"
        )


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _common_metrics(folds: Sequence[FoldResult]) -> list[str]:
    if not folds:
        return []
    common = set(folds[0].metrics)
    for f in folds[1:]:
        common &= set(f.metrics)
    return sorted(common)
