"""MetricHistory: the per-epoch record of every logged scalar, like Keras' ``History``."""

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from typing_extensions import override

from lightning_recipes._core.validate import unknown_sentence
from lightning_recipes.errors import config_error

__all__ = ["MetricHistory", "metric_series"]


def metric_series(
    records: Sequence[Mapping[str, float]], name: str
) -> tuple[list[float], list[float]]:
    """``(epochs, values)`` of metric ``name`` in per-epoch records, where it was recorded.

    Args:
        records: Records as kept by `MetricHistory`.
        name: A metric name, e.g. ``"val_loss"``.

    Returns:
        Two lists of equal length.

    Examples:
        >>> metric_series([{"epoch": 0.0, "a": 1.0}, {"epoch": 1.0}], "a")
        ([0.0], [1.0])
    """
    pairs = [(r["epoch"], r[name]) for r in records if name in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


class MetricHistory(Callback):
    """Record every scalar in ``trainer.callback_metrics`` once per training epoch.

    Each record is ``{"epoch": e, "step": s, "lr": ..., <metric>: value, ...}`` (``lr`` is
    the learning rate after the epoch's scheduler steps, i.e. the one the next epoch
    starts with), taken at
    the end of the training epoch, when the epoch's training and validation metrics are
    both final (and already reduced across ranks where they were logged with
    ``sync_dist=True`` or as torchmetrics objects). The host sync that reading them costs
    happens once per epoch, never per step. The history is part of the checkpoint, so a
    resumed run keeps the epochs before the interruption.

    Examples:
        >>> history = MetricHistory()
        >>> # Trainer(callbacks=[history]).fit(...); then history.records[-1]["val_loss"]
        >>> history.records
        []
    """

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints."""
        return "MetricHistory"

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        record: dict[str, float] = {"epoch": float(trainer.current_epoch)}
        record["step"] = float(trainer.global_step)
        for name, value in sorted(trainer.callback_metrics.items()):
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                record[name] = float(value.item())
        for opt_idx, optimizer in enumerate(trainer.optimizers):
            for group_idx, group in enumerate(optimizer.param_groups):
                suffix = "" if opt_idx == group_idx == 0 else f"_opt{opt_idx}_group{group_idx}"
                record[f"lr{suffix}"] = float(group["lr"])
        self.records.append(record)

    def series(self, name: str) -> tuple[list[float], list[float]]:
        """Return ``(epochs, values)`` for the epochs where ``name`` was recorded.

        Args:
            name: A metric name, e.g. ``"val_loss"``.

        Returns:
            Two lists of equal length (empty before the first record).

        Raises:
            RecipeConfigError: If there are records and none holds ``name`` (a misspelt
                name would otherwise give an empty, plausible-looking series); the message
                lists the recorded names.

        Examples:
            >>> history = MetricHistory()
            >>> history.records = [{"epoch": 0.0, "val_loss": 0.5}]
            >>> history.series("val_loss")
            ([0.0], [0.5])
            >>> history.series("val_los")
            Traceback (most recent call last):
            ...
            lightning_recipes.errors.RecipeConfigError: Invalid name='val_los'. ... 'val_loss'.
        """
        recorded = {key for record in self.records for key in record}
        if self.records and name not in recorded:
            raise config_error("name", name, unknown_sentence(name, recorded, "recorded metrics"))
        return metric_series(self.records, name)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"records": [dict(r) for r in self.records]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.records = [dict(r) for r in state_dict["records"]]
