"""SnapshotEnsemble: the weights at the end of every cycle (Huang et al. 2017).

Kept as CPU copies in memory, or as files in a folder (``save_dir``).
"""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import non_negative_int, positive_int
from lightning_recipes.ensembles.average import cycle_end_epochs
from lightning_recipes.ensembles.module import EnsembleModule
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["SnapshotEnsemble"]

StateDict = dict[str, Tensor]


class SnapshotEnsemble(Recipe):
    """Keep a snapshot of the weights at the end of every learning-rate cycle.

    Snapshot ensembles (Huang et al. 2017, "Train 1, get M for free"): train with a cyclic
    cosine schedule with restarts (``lightning_recipes.lr.snapshot_schedule``, same
    ``cycle_epochs``), and at
    the end of each cycle, where the rate is lowest and the model sits in a minimum, keep
    a copy of the weights. `ensemble` then builds an `EnsembleModule` that averages the
    snapshots' predicted probabilities for validate/test/predict.

    - Snapshots are detached CPU copies of ``pl_module.state_dict()`` (parameters and
      buffers such as BatchNorm statistics), taken in ``on_train_epoch_end`` of the
      epochs ``cycle_epochs - 1, 2 * cycle_epochs - 1, ...`` (0-based). Training is not
      changed: this callback observes; the schedule is the module's.
    - In memory (``save_dir=None``, the default): the snapshots and their epochs are in
      the callback's ``state_dict``, so a checkpoint grows by one model per kept snapshot
      (bound it with ``max_snapshots``).
    - As files (``save_dir="some/folder"``): each snapshot is written to
      ``<save_dir>/snapshot-epoch=<k>.pt`` (the module's ``state_dict`` on the CPU, for
      ``torch.load(..., weights_only=True)``) by global rank 0, the other ranks wait at a
      barrier; only the files' absolute paths and epochs are in the callback's state and
      in memory. ``max_snapshots`` deletes the file of a dropped snapshot. `ensemble`
      loads the files. The folder must be visible to every rank that calls `ensemble`
      (a shared filesystem across nodes). A file of the same name left by an earlier run
      is overwritten (with a warning at the start of training).
    - Checks the schedule: the snapshots are distinct minima only if the learning rate
      anneals within each cycle and restarts. The callback reads the optimizers' rates
      before every training step (plain Python numbers, no device sync); if a whole cycle
      ran at one constant rate, it warns once, with the rate and the epochs.
    - Resumable: a resumed run ends with the same snapshots. With ``save_dir`` the files
      written before the checkpoint are kept, not re-written; a file the checkpoint
      names that is gone (deleted by ``max_snapshots`` after an older checkpoint was
      saved, or moved) fails at the start of training, not at `ensemble`.
    - DDP: every rank keeps the same snapshots (the buffers, such as BatchNorm running
      statistics, which DDP lets drift apart between ranks within a step, are rank 0's,
      broadcast once per snapshot, as in rank 0's checkpoint). Sharded
      strategies (FSDP, DeepSpeed, model parallel) are refused at ``setup``: a rank holds
      only a shard.

    Args:
        cycle_epochs: Epochs per learning-rate cycle.
        max_snapshots: Keep only the most recent this many (None: all).
        skip_cycles: Leading cycles without a snapshot (the first is often poor).
        save_dir: Folder to write the snapshots to as files (created if needed); None
            keeps them in memory and in the checkpoint.

    Examples:
        >>> SnapshotEnsemble(cycle_epochs=5, max_snapshots=3).state_key
        "SnapshotEnsemble{'cycle_epochs': 5, 'max_snapshots': 3, 'skip_cycles': 0}"
    """

    identity = ("cycle_epochs", "max_snapshots", "skip_cycles")
    refused_strategies = helpers.SHARDED
    refusal_reason = "each rank holds only a shard of the weights; use DDP or one device."

    def __init__(
        self,
        cycle_epochs: int,
        max_snapshots: int | None = None,
        skip_cycles: int = 0,
        save_dir: str | None = None,
    ) -> None:
        positive_int(
            "cycle_epochs",
            cycle_epochs,
            "Pass the positive number of epochs per learning-rate cycle (as given to "
            "snapshot_schedule).",
        )
        if max_snapshots is not None:
            positive_int(
                "max_snapshots", max_snapshots, "Pass a positive integer, or None to keep all."
            )
        non_negative_int(
            "skip_cycles", skip_cycles, "Pass the number of leading cycles to skip, >= 0."
        )
        if save_dir is not None:
            if not isinstance(save_dir, str | os.PathLike) or not os.fspath(save_dir):
                raise config_error(
                    "save_dir",
                    save_dir,
                    "Pass the path of a folder for the snapshot files, or None to keep the "
                    "snapshots in memory.",
                )
            if Path(save_dir).exists() and not Path(save_dir).is_dir():
                raise config_error(
                    "save_dir", os.fspath(save_dir), "It is a file: pass a folder (new or not)."
                )
        self.cycle_epochs = cycle_epochs
        self.max_snapshots = max_snapshots
        self.skip_cycles = skip_cycles
        self.save_dir: str | None = None if save_dir is None else os.fspath(save_dir)
        self.snapshots: list[StateDict] = []
        self.snapshot_epochs: list[int] = []
        self.snapshot_paths: list[str] = []
        # (lowest, highest) rate of each (optimizer, group) seen since the cycle began,
        # and the first epoch of the cycle when it was watched from its start.
        self._rates: dict[tuple[int, int], tuple[float, float]] = {}
        self._cycle_watched_from: int | None = None
        self._warned_constant_lr = False

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.check_strategy(trainer)
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

    def snapshot_path(self, epoch: int) -> Path:
        """The file of the snapshot of the 0-based ``epoch`` (with ``save_dir``).

        Raises:
            RecipeConfigError: Without ``save_dir``.
        """
        if self.save_dir is None:
            raise RecipeConfigError(
                "SnapshotEnsemble keeps its snapshots in memory; pass save_dir= to write "
                "them as files."
            )
        return Path(self.save_dir).resolve() / f"snapshot-epoch={epoch}.pt"

    @staticmethod
    def _same_on_every_rank(trainer: Trainer, pl_module: LightningModule) -> StateDict:
        """A CPU copy of the state, with rank 0's buffers (as in its checkpoint) on every rank."""
        snapshot = _cpu_copy(pl_module)
        if trainer.world_size > 1:
            buffers = helpers.rank_zero_buffers(trainer, pl_module)
            snapshot.update({k: v.to("cpu") for k, v in buffers.items() if k in snapshot})
        return snapshot

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.save_dir is None:
            return
        # After a resume: the files the checkpoint names must still be there. Rank 0
        # decides for every rank, so that all raise together instead of one hanging.
        missing: list[str] = []
        stray: list[str] = []
        if trainer.is_global_zero:
            missing = [p for p in self.snapshot_paths if not Path(p).is_file()]
            folder = Path(self.save_dir)
            if folder.is_dir():
                kept = {str(Path(p).resolve()) for p in self.snapshot_paths}
                stray = sorted(
                    p.name
                    for p in folder.glob("snapshot-epoch=*.pt")
                    if str(p.resolve()) not in kept
                )
        missing = helpers.broadcast(trainer, missing)
        if missing:
            raise RecipeConfigError(
                f"SnapshotEnsemble(save_dir={self.save_dir!r}) resumed from a checkpoint "
                f"whose snapshot files are gone: {', '.join(missing)}. Put them back, or "
                "resume from a later checkpoint (max_snapshots deletes the file of a dropped "
                "snapshot, which an older checkpoint may still name)."
            )
        if stray:
            helpers.rank_zero_warn(
                f"SnapshotEnsemble: {self.save_dir} already holds {', '.join(stray)} from "
                "another run; a snapshot of the same epoch will overwrite its file, and "
                "only this run's snapshots enter the ensemble."
            )

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch % self.cycle_epochs == 0:  # a cycle begins: watch it all
            self._rates = {}
            self._cycle_watched_from = trainer.current_epoch

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._cycle_watched_from is None or self._warned_constant_lr:
            return
        for i, optimizer in enumerate(trainer.optimizers):
            for j, group in enumerate(optimizer.param_groups):
                rate = group.get("lr")
                if isinstance(rate, Tensor):  # a tensor rate: read it only where it is free
                    if rate.device.type != "cpu" or rate.numel() != 1:
                        continue
                    rate = rate.item()
                if not isinstance(rate, int | float):
                    continue
                low, high = self._rates.get((i, j), (float(rate), float(rate)))
                self._rates[(i, j)] = (min(low, rate), max(high, rate))

    def _warn_if_the_rate_was_constant(self, epoch: int) -> None:
        """At a cycle's end: warn once if the whole cycle ran at one constant rate."""
        first = epoch + 1 - self.cycle_epochs
        watched, self._cycle_watched_from = self._cycle_watched_from, None
        if self._warned_constant_lr or watched != first or not self._rates:
            return
        if any(high - low > 1e-6 * abs(high) for low, high in self._rates.values()):
            return
        self._warned_constant_lr = True
        rates = ", ".join(f"{high:.4g}" for _, high in sorted(set(self._rates.values())))
        span = f"epochs {first}-{epoch}" if epoch > first else f"epoch {epoch}"
        helpers.rank_zero_warn(
            f"SnapshotEnsemble(cycle_epochs={self.cycle_epochs}): the learning rate stayed "
            f"at {rates} through the whole cycle ({span}). Snapshot "
            "ensembles need a cyclic schedule that anneals the rate within each cycle and "
            "restarts it, or the snapshots are points of one trajectory rather than distinct "
            "minima: use lightning_recipes.lr.snapshot_schedule(optimizer, cycle_epochs="
            f"{self.cycle_epochs}) in configure_optimizers, or Classifier(scheduler="
            f"'cosine_restarts', scheduler_options={{'cycle_epochs': {self.cycle_epochs}}})."
        )

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.cycle_epochs == 0 and self._cycle_watched_from is not None:
            self._warn_if_the_rate_was_constant(epoch)
        if not self.is_cycle_end(epoch) or epoch in self.snapshot_epochs:
            return
        self.snapshot_epochs.append(epoch)
        if self.save_dir is None:
            self.snapshots.append(self._same_on_every_rank(trainer, pl_module))
        else:
            path = self.snapshot_path(epoch)
            if trainer.is_global_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(f".{path.name}.partial")
                torch.save(_cpu_copy(pl_module), partial)
                os.replace(partial, path)  # never a half-written snapshot under its name
            self.snapshot_paths.append(str(path))
        if self.max_snapshots is not None and len(self.snapshot_epochs) > self.max_snapshots:
            del self.snapshot_epochs[0]
            if self.save_dir is None:
                del self.snapshots[0]
            else:
                dropped = Path(self.snapshot_paths.pop(0))
                if trainer.is_global_zero:
                    dropped.unlink(missing_ok=True)
        if self.save_dir is not None:
            trainer.strategy.barrier("SnapshotEnsemble")  # the file exists for every rank

    def ensemble(
        self, template: torch.nn.Module, weights: list[float] | None = None
    ) -> EnsembleModule:
        """An `EnsembleModule` of the snapshots, each loaded into a copy of ``template``.

        Args:
            template: A module of the trained architecture (the trained module itself).
            weights: Optional weight per snapshot (see `average_probabilities`).

        With ``save_dir``, the snapshot files are loaded (on the CPU, with
        ``weights_only=True``).

        Raises:
            RecipeConfigError: If no snapshot was taken yet, or a snapshot file is gone.
        """
        if not self.snapshot_epochs:
            raise RecipeConfigError(
                "SnapshotEnsemble has no snapshot yet: they are taken at the end of each "
                f"cycle of {self.cycle_epochs} epochs; train at least that long."
            )
        if self.save_dir is None:
            states = self.snapshots
        else:
            states = []
            for path in self.snapshot_paths:
                if not Path(path).is_file():
                    raise RecipeConfigError(
                        f"SnapshotEnsemble: the snapshot file {path} is gone; put it back or "
                        "build the ensemble from the remaining files with "
                        "EnsembleModule.from_state_dicts."
                    )
                states.append(torch.load(path, map_location="cpu", weights_only=True))
        return EnsembleModule.from_state_dicts(template, states, weights=weights)

    @override
    def run_summary(self) -> RecipeSummary:
        """How many snapshots were kept and at which epochs."""
        facts: dict[str, Any] = {
            "cycle epochs": self.cycle_epochs,
            "snapshots": len(self.snapshot_epochs),
            "snapshot epochs": list(self.snapshot_epochs),
            "kept": "in memory" if self.save_dir is None else f"as files in {self.save_dir}",
        }
        notes = (
            []
            if self.snapshot_epochs
            else ["No snapshot was taken (the run ended before a cycle)."]
        )
        return RecipeSummary("Snapshot ensemble", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "snapshots": list(self.snapshots),
            "snapshot_epochs": list(self.snapshot_epochs),
            "snapshot_paths": list(self.snapshot_paths),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        snapshots = state_dict.get("snapshots", [])
        paths = [str(p) for p in state_dict.get("snapshot_paths", [])]
        if self.save_dir is None and paths:
            raise RecipeConfigError(
                "SnapshotEnsemble(save_dir=None) cannot resume from a checkpoint whose "
                f"snapshots are files ({paths[0]}, ...): pass the save_dir of that run."
            )
        if self.save_dir is not None and snapshots:
            raise RecipeConfigError(
                f"SnapshotEnsemble(save_dir={self.save_dir!r}) cannot resume from a "
                "checkpoint whose snapshots are kept in memory: pass save_dir=None."
            )
        self.snapshots = [{k: v.to("cpu") for k, v in snapshot.items()} for snapshot in snapshots]
        self.snapshot_epochs = [int(e) for e in state_dict.get("snapshot_epochs", [])]
        self.snapshot_paths = paths


def _cpu_copy(module: torch.nn.Module) -> StateDict:
    """A detached CPU copy of ``module.state_dict()``: once per cycle, never per step."""
    return {
        name: value.detach().to("cpu", copy=True) for name, value in module.state_dict().items()
    }
