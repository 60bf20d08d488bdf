"""`MetricRecorder`: the metrics of each validation run of a trial or a fold, recorded in memory."""

import math

from lightning.pytorch import Callback, LightningModule, Trainer
from typing_extensions import override

from lightning_recipes.errors import MissingMetricError

__all__ = ["MetricRecorder", "not_logged"]


class MetricRecorder(Callback):
    """Record the scalar metrics after every validation run: a trial's or a fold's history.

    At the end of the training epoch the record is completed with the epoch's training
    aggregates (which Lightning computes only then). With ``monitor``, a first validation
    that did not log it fails at once, naming the metrics that were logged.

    Args:
        monitor: The metric every record must hold, or None.
        owner: Who records, for the error (``"tune"``, ``"cross_validate"``).
    """

    def __init__(self, monitor: str | None = None, owner: str = "cross_validate") -> None:
        self.monitor = monitor
        self.owner = owner
        self.records: list[dict[str, float]] = []
        self.epochs: list[int] = []
        self._epoch_of_last = -1

    @staticmethod
    def _scalars(trainer: Trainer) -> dict[str, float]:
        # Once per validation run, not per step: reading the values to the host is fine here.
        return {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if getattr(value, "numel", lambda: 1)() == 1
        }

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.records.append(self._scalars(trainer))
        self.epochs.append(trainer.current_epoch)
        self._epoch_of_last = trainer.current_epoch
        if self.monitor is not None and self.monitor not in self.records[-1]:
            # At the first validation, not after the fold has trained to the end.
            raise MissingMetricError(not_logged(self.owner, self.monitor, self.records))

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.records and self._epoch_of_last == trainer.current_epoch:
            # The epoch's training aggregates are ready now; the validation values stay.
            self.records[-1] = {**self._scalars(trainer), **self.records[-1]}

    def values(self, monitor: str) -> list[float]:
        """``monitor``'s value at each validation run (NaN where a record lacks it)."""
        return [r.get(monitor, math.nan) for r in self.records]


def not_logged(owner: str, monitor: str, records: list[dict[str, float]]) -> str:
    """The message of a monitored metric that was never logged, listing those that were."""
    logged = sorted({name for r in records for name in r})
    return (
        f"{owner}: monitor={monitor!r} was not logged during validation; "
        f"logged metrics: {logged}. Pass one of them as monitor."
    )
