"""SnapshotEnsemble: a CPU copy of the weights at the end of every cycle (Huang et al. 2017)."""

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes._contract import RecipeSummary
from lightning_recipes._validate import is_int
from lightning_recipes.ensembles.average import cycle_end_epochs
from lightning_recipes.ensembles.module import EnsembleModule
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["SnapshotEnsemble"]

StateDict = dict[str, Tensor]


class SnapshotEnsemble(Callback):
    """Keep a snapshot of the weights at the end of every learning-rate cycle.

    Snapshot ensembles (Huang et al. 2017, "Train 1, get M for free"): train with a cyclic
    cosine schedule with restarts (`snapshot_schedule`, same ``cycle_epochs``), and at
    the end of each cycle, where the rate is lowest and the model sits in a minimum, keep
    a copy of the weights. `ensemble` then builds an `EnsembleModule` that averages the
    snapshots' predicted probabilities for validate/test/predict.

    - Snapshots are detached CPU copies of ``pl_module.state_dict()`` (parameters and
      buffers such as BatchNorm statistics), taken in ``on_train_epoch_end`` of the
      epochs ``cycle_epochs - 1, 2 * cycle_epochs - 1, ...`` (0-based). Training is not
      changed: this callback observes; the schedule is the module's.
    - Resumable: the snapshots and their epochs are in the callback's ``state_dict``, so
      a checkpoint grows by one model per kept snapshot (bound it with
      ``max_snapshots``). A resumed run ends with the same snapshots.
    - DDP: every rank holds the same weights and keeps the same snapshots. Sharded
      strategies (FSDP, DeepSpeed, model parallel) are refused at ``setup``: a rank holds
      only a shard.

    Args:
        cycle_epochs: Epochs per learning-rate cycle.
        max_snapshots: Keep only the most recent this many (None: all).
        skip_cycles: Leading cycles without a snapshot (the first is often poor).

    Examples:
        >>> SnapshotEnsemble(cycle_epochs=5, max_snapshots=3).state_key
        "SnapshotEnsemble{'cycle_epochs': 5, 'max_snapshots': 3, 'skip_cycles': 0}"
    """

    def __init__(
        self, cycle_epochs: int, max_snapshots: int | None = None, skip_cycles: int = 0
    ) -> None:
        if not is_int(cycle_epochs) or cycle_epochs < 1:
            raise config_error(
                "cycle_epochs",
                cycle_epochs,
                "Pass the positive number of epochs per learning-rate cycle (as given to "
                "snapshot_schedule).",
            )
        if max_snapshots is not None and (not is_int(max_snapshots) or max_snapshots < 1):
            raise config_error(
                "max_snapshots", max_snapshots, "Pass a positive integer, or None to keep all."
            )
        if not is_int(skip_cycles) or skip_cycles < 0:
            raise config_error(
                "skip_cycles", skip_cycles, "Pass the number of leading cycles to skip, >= 0."
            )
        self.cycle_epochs = cycle_epochs
        self.max_snapshots = max_snapshots
        self.skip_cycles = skip_cycles
        self.snapshots: list[StateDict] = []
        self.snapshot_epochs: list[int] = []

    @property
    @override
    def state_key(self) -> str:
        """One checkpoint slot per configuration (two ensembles in one Trainer coexist)."""
        return self._generate_state_key(
            cycle_epochs=self.cycle_epochs,
            max_snapshots=self.max_snapshots,
            skip_cycles=self.skip_cycles,
        )

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        helpers.refuse_sharded(
            trainer,
            recipe="SnapshotEnsemble",
            reason="each rank holds only a shard of the weights; use DDP or one device.",
        )
        max_epochs = trainer.max_epochs
        if max_epochs is not None and max_epochs >= 0:
            ends = cycle_end_epochs(self.cycle_epochs, max_epochs, self.skip_cycles)
            if not ends:
                raise RecipeConfigError(
                    f"SnapshotEnsemble(cycle_epochs={self.cycle_epochs}, "
                    f"skip_cycles={self.skip_cycles}) takes no snapshot in a run of "
                    f"max_epochs={max_epochs}. Pass a smaller cycle_epochs or skip_cycles, "
                    "or train longer."
                )

    def is_cycle_end(self, epoch: int) -> bool:
        """Whether a snapshot is taken at the end of the 0-based ``epoch``."""
        cycle, position = divmod(epoch + 1, self.cycle_epochs)
        return position == 0 and cycle > self.skip_cycles

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if not self.is_cycle_end(epoch) or epoch in self.snapshot_epochs:
            return
        # Once per cycle, not per step: the copy to the host is the point.
        snapshot = {
            name: value.detach().to("cpu", copy=True)
            for name, value in pl_module.state_dict().items()
        }
        self.snapshots.append(snapshot)
        self.snapshot_epochs.append(epoch)
        if self.max_snapshots is not None and len(self.snapshots) > self.max_snapshots:
            del self.snapshots[0]
            del self.snapshot_epochs[0]

    def ensemble(
        self, template: torch.nn.Module, weights: list[float] | None = None
    ) -> EnsembleModule:
        """An `EnsembleModule` of the snapshots, each loaded into a copy of ``template``.

        Args:
            template: A module of the trained architecture (the trained module itself).
            weights: Optional weight per snapshot (see `average_probabilities`).

        Raises:
            RecipeConfigError: If no snapshot was taken yet.
        """
        if not self.snapshots:
            raise RecipeConfigError(
                "SnapshotEnsemble has no snapshot yet: they are taken at the end of each "
                f"cycle of {self.cycle_epochs} epochs; train at least that long."
            )
        return EnsembleModule.from_state_dicts(template, self.snapshots, weights=weights)

    def run_summary(self) -> RecipeSummary:
        """How many snapshots were kept and at which epochs."""
        facts: dict[str, Any] = {
            "cycle epochs": self.cycle_epochs,
            "snapshots": len(self.snapshots),
            "snapshot epochs": list(self.snapshot_epochs),
        }
        notes = [] if self.snapshots else ["No snapshot was taken (the run ended before a cycle)."]
        return RecipeSummary("Snapshot ensemble", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"snapshots": list(self.snapshots), "snapshot_epochs": list(self.snapshot_epochs)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.snapshots = [
            {k: v.to("cpu") for k, v in snapshot.items()}
            for snapshot in state_dict.get("snapshots", [])
        ]
        self.snapshot_epochs = [int(e) for e in state_dict.get("snapshot_epochs", [])]
