"""BatchSizeFinder: Lightning's, plus a memory budget and an honest CPU mode."""

from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BatchSizeFinder as LightningBatchSizeFinder
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_setattr
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import preserved_rng
from lightning_recipes._core.validate import positive_int
from lightning_recipes.batch_size.memory import (
    budget_bytes,
    check_max_memory,
    peak_rss,
    physical_memory,
    reset_peak_rss,
)
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error

__all__ = ["BatchSizeFinder"]

_MIB = 2**20


class BatchSizeFinder(Recipe, LightningBatchSizeFinder):
    """Lightning's ``BatchSizeFinder`` (same arguments and results) with a memory budget.

    Lightning's finder doubles the batch size (``"power"``) or bisects after the first
    failure (``"binsearch"``) until a trial of ``steps_per_trial`` steps runs out of memory,
    and sets the batch size (``batch_arg_name`` on the module, its ``hparams`` or the
    datamodule) to the largest that ran. This subclass adds:

    * ``max_memory`` on a GPU: a fraction of the device's memory in (0, 1] (a float) or a
      number of bytes (an int). During the search the CUDA allocator is capped there
      (``torch.cuda.set_per_process_memory_fraction``, restored afterwards), so the search
      stops at a real out-of-memory error at the budget: room is left for the rest of the
      run (evaluation, a larger model later, another process on the card).
    * **The CPU** has no out-of-memory limit to find: the system swaps or kills the process
      long before an allocation fails, and Lightning's finder then just doubles up to
      ``max_val`` (8192) or the dataset's length. This finder refuses to run on the CPU
      without a budget; with ``max_memory`` (a fraction of the machine's physical memory,
      or bytes) it runs the same search, judging each trial by the process's peak resident
      memory during it (Linux ``VmHWM``, reset before each trial). The result is "the
      largest batch whose trial stayed under the budget", never an out-of-memory limit.

    After a search, `optimal_batch_size` holds the size chosen (as in Lightning), `stopped_by`
    what ended the search on the CPU (``"memory budget"``, ``"max_val"``, ``"max_trials"``,
    ``"dataset length"``, ``"out of memory"``), and `trial_peaks` the peak bytes each CPU
    trial used. It refuses distributed strategies and dataloaders passed straight to
    ``fit`` at ``setup``, as Lightning's does.

    Args:
        mode: ``"power"`` or ``"binsearch"``.
        steps_per_trial: Steps run at each batch size.
        init_val: The first batch size tried.
        max_trials: The most trials.
        batch_arg_name: The attribute holding the batch size.
        margin: ``"binsearch"`` only: reduce the size found by this fraction, in [0, 1).
        max_val: The largest batch size tried.
        max_memory: The memory budget: None (a GPU's whole memory; refused on the CPU), a
            float in (0, 1] (fraction of the device's, or on the CPU the machine's, memory)
            or an int (bytes).

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> finder = BatchSizeFinder(mode="binsearch", max_memory=0.5)
        >>> trainer = Trainer(callbacks=[finder], logger=False, enable_progress_bar=False)
    """

    def __init__(
        self,
        mode: Literal["power", "binsearch"] = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
        max_memory: float | int | None = None,
    ) -> None:
        if mode not in ("power", "binsearch"):
            raise choice_error("mode", mode, ("power", "binsearch"))
        positive_int("steps_per_trial", steps_per_trial)
        positive_int("init_val", init_val)
        positive_int("max_trials", max_trials)
        positive_int("max_val", max_val)
        if max_val < init_val:
            raise config_error("max_val", max_val, f"Pass max_val >= init_val ({init_val}).")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < 1:
            raise config_error("margin", margin, "Pass a fraction in [0, 1), e.g. 0.05.")
        if not isinstance(batch_arg_name, str) or not batch_arg_name:
            raise config_error("batch_arg_name", batch_arg_name, "Pass an attribute name.")
        super().__init__(
            mode, steps_per_trial, init_val, max_trials, batch_arg_name, float(margin), max_val
        )
        self.max_memory = check_max_memory(max_memory)
        self.stopped_by: str | None = None
        self.trial_peaks: dict[int, int] = {}
        self.budget: int | None = None
        self._restored: int | None = None

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Search; on a run resumed from a checkpoint, keep the batch size it trained with.

        Lightning's finder would search again on resume, and its trials would move the random
        states and the loops of the resumed run: the resumed run would no longer be the
        interrupted one. The size found is in the checkpoint (`state_dict`) instead. The
        search itself leaves the random states as it found them.
        """
        if self._restored is None:
            # Lightning's trials draw dropout masks and shuffle the data from the global
            # generators: the run after the search starts from the random states it had.
            with preserved_rng():
                self.scale_batch_size(trainer, pl_module)
            return
        lightning_setattr(pl_module, self._batch_arg_name, self._restored)
        self.optimal_batch_size, self._restored = self._restored, None
        helpers.rank_zero_info(
            f"BatchSizeFinder: batch {self.optimal_batch_size}, as in the checkpoint (no new "
            "search)."
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"optimal_batch_size": self.optimal_batch_size}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        size = state_dict.get("optimal_batch_size")
        self._restored = None if size is None else int(size)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str | None = None) -> None:
        super().setup(trainer, pl_module, stage)
        device = trainer.strategy.root_device.type
        if device == "cpu" and self.max_memory is None:
            raise config_error(
                "max_memory",
                None,
                "On the CPU there is no out-of-memory limit to find (the system swaps or kills "
                "the process first), so the search would only double up to max_val or the "
                "dataset's length. Pass max_memory (a fraction of the machine's memory, or "
                "bytes) to take the largest batch whose trial stays under it, or set the batch "
                "size yourself.",
            )
        if device not in ("cpu", "cuda") and self.max_memory is not None:
            raise config_error(
                "max_memory",
                self.max_memory,
                f"A memory budget is measured on CUDA and on the CPU, not on {device!r}: "
                "pass max_memory=None.",
            )

    @override
    def scale_batch_size(self, trainer: Trainer, pl_module: LightningModule) -> None:
        device = trainer.strategy.root_device
        if self.max_memory is None or device.type not in ("cpu", "cuda"):
            super().scale_batch_size(trainer, pl_module)
            return
        if device.type == "cuda":
            self._cuda_search(trainer, pl_module, device)
        else:
            self._cpu_search(trainer, pl_module)
        if self._early_exit:
            helpers.end_fit_now()

    def _cuda_search(self, trainer: Trainer, pl_module: LightningModule, device: Any) -> None:
        assert self.max_memory is not None
        total = torch.cuda.get_device_properties(device).total_memory
        self.budget = budget_bytes(self.max_memory, total)
        previous = torch.cuda.get_per_process_memory_fraction(device)
        torch.cuda.set_per_process_memory_fraction(self.budget / total, device)
        try:
            super().scale_batch_size(trainer, pl_module)
        finally:
            torch.cuda.set_per_process_memory_fraction(previous, device)
            torch.cuda.empty_cache()

    def _trial(self, trainer: Trainer, pl_module: LightningModule, size: int) -> int:
        """Run Lightning's finder for one trial at ``size``; return the size it ran at."""
        saved = (self._init_val, self._max_trials, self._max_val, self._mode)
        self._init_val, self._max_trials, self._max_val, self._mode = size, 1, size + 1, "power"
        try:
            LightningBatchSizeFinder.scale_batch_size(self, trainer, pl_module)
        finally:
            self._init_val, self._max_trials, self._max_val, self._mode = saved
        ran = lightning_getattr(pl_module, self._batch_arg_name)
        return size if ran is None else int(ran)

    def _apply(self, trainer: Trainer, pl_module: LightningModule, size: int) -> None:
        """Set the batch size and rebuild the dataloaders, through Lightning's finder."""
        lightning_setattr(pl_module, self._batch_arg_name, size)
        saved = (self._init_val, self._max_trials, self._max_val, self._mode)
        # init_val == max_val: Lightning sets the size, runs no trial and reloads the data.
        self._init_val, self._max_trials, self._max_val, self._mode = size, 1, size, "power"
        try:
            LightningBatchSizeFinder.scale_batch_size(self, trainer, pl_module)
        finally:
            self._init_val, self._max_trials, self._max_val, self._mode = saved
        self.optimal_batch_size = size

    def _cpu_search(self, trainer: Trainer, pl_module: LightningModule) -> None:
        assert self.max_memory is not None
        self.budget = budget = budget_bytes(self.max_memory, physical_memory())
        bisect = self._mode == "binsearch"
        if bisect and not reset_peak_rss():
            helpers.rank_zero_warn(
                "BatchSizeFinder: this system cannot reset the peak memory between trials, so "
                "the CPU search doubles only (mode='power')."
            )
            bisect = False
        fits: int | None = None
        fails: int | None = None
        size = self._init_val
        self.trial_peaks = {}
        self.stopped_by = "max_trials"
        for _ in range(self._max_trials):
            reset_peak_rss()
            ran = self._trial(trainer, pl_module, size)
            peak = peak_rss()
            self.trial_peaks.setdefault(ran, peak)
            if ran < size:  # Lightning kept an earlier size: the dataset's length, or an OOM
                if ran == fits:
                    self.stopped_by = "dataset length"
                else:
                    self.stopped_by = "out of memory"
                    fits = ran if peak <= budget else fits
                break
            if peak <= budget:
                fits = size
                if fails is None and size >= self._max_val:
                    self.stopped_by = "max_val"
                    break
                following = min(size * 2, self._max_val) if fails is None else (size + fails) // 2
            else:
                fails, self.stopped_by = size, "memory budget"
                following = ((fits or 0) + size) // 2
                if not bisect:
                    break
            if following in (size, fits, fails) or following < 1:
                break
            size = following
        if fits is None:
            raise RecipeConfigError(
                f"BatchSizeFinder: the first trial (batch {size}) peaked at "
                f"{self.trial_peaks.get(size, 0) / _MIB:.0f} MiB of resident memory, above "
                f"max_memory={self.max_memory!r} ({budget / _MIB:.0f} MiB; the whole process "
                "counts): raise max_memory or lower init_val."
            )
        if bisect and self.stopped_by == "memory budget" and self._margin > 0:
            fits = max(1, int(fits * (1 - self._margin)))
        self._apply(trainer, pl_module, fits)
        helpers.rank_zero_info(
            f"BatchSizeFinder: batch {fits} (stopped by {self.stopped_by}; peak "
            f"{self.trial_peaks.get(fits, max(self.trial_peaks.values())) / _MIB:.0f} MiB of "
            f"a {budget / _MIB:.0f} MiB budget)."
        )

    @override
    def run_summary(self) -> RecipeSummary:
        """The batch size chosen, the budget, what stopped the search."""
        return RecipeSummary(
            "Batch size finder",
            facts={
                "batch size": self.optimal_batch_size,
                "max_memory": self.max_memory,
                "budget (MiB)": None if self.budget is None else round(self.budget / _MIB),
                "stopped by": self.stopped_by,
                "trial peaks (MiB)": {k: round(v / _MIB) for k, v in self.trial_peaks.items()},
            },
        )
