"""LRFinder: the learning-rate range test as a callback, at fit start and at milestones."""

import importlib.util
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import (
    RecipeSummary,
    parameters_unfrozen_later,
    planned_change_epochs,
    prepare_training,
    trainable_share,
)
from lightning_recipes._core.optim import reference_lr, scale_learning_rate, set_module_lr
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import dataloader_generators, preserved_rng
from lightning_recipes.errors import RecipeConfigError, choice_error
from lightning_recipes.lr.checks import _attr_names, _check_args, _check_find_lr_args, _milestones
from lightning_recipes.lr.result import LRFinderResult
from lightning_recipes.lr.sweep import run_sweep, sweep_lrs

__all__ = ["DEFAULT_SUGGESTION", "LRFinder", "find_lr"]

SuggestionName = Literal["minimum", "valley", "steep", "slide", "lightning_steepest"]
"""The names of `SUGGESTIONS`, for type checkers and LightningCLI."""

DEFAULT_SUGGESTION: SuggestionName = "minimum"
"""The rule LRFinder uses unless told otherwise, chosen from ``benchmarks/lr_finder.py``.

Against a ground-truth grid of real trainings (3 tasks x Adam/SGD, 2 seeds), ``minimum``
came within 1 percentage point of the grid's best accuracy in 6 of 6 settings (mean gap
0.1 pp, worst 0.8 pp); ``valley`` in 5 of 6 (worst 8.4 pp, SGD on make_classification);
Lightning's ``lr_find`` suggestion in 0 of 6.
"""


class LRFinder(Recipe):
    """Run a learning-rate range test and train with the suggested learning rate.

    At the start of training (and, optionally, at the start of the given epochs) a copy
    of the module is trained for ``num_steps`` optimizer steps while the learning rate
    grows from ``min_lr`` to ``max_lr``; the loss curve gives a suggestion (``minimum``
    by default, see `DEFAULT_SUGGESTION`), which is written to the optimizer
    (all param groups scaled by one factor, so discriminative ratios and scheduler shapes
    survive) and to the module's ``lr`` / ``learning_rate`` attribute and hparams. The run
    itself is untouched by the sweep: weights, optimizer state, schedulers, loop
    progress, logged metrics and random streams are exactly as before it.

    A pick at either end of the sweep is not trusted (see `lightning_recipes.lr.boundary`):
    the loss never fell (data without signal), or it was still falling at ``max_lr`` (most
    parameters frozen). Then the finder warns with the reason and keeps the learning rate,
    unless ``apply_at_boundary=True``; the result records why (``result.not_applied``).

    Under DDP the loss is averaged over ranks at every step and the choice is broadcast
    from rank 0, so every rank trains with the same rate. On resume the tests already
    done are not repeated (the chosen rate is in the restored optimizer). Two finders in
    one Trainer keep separate checkpoint state (their `state_key` is built from the
    arguments that distinguish them).

    Args:
        min_lr: First learning rate of the sweep.
        max_lr: Last learning rate of the sweep.
        num_steps: Optimizer steps in the sweep (at least 10).
        mode: ``"exponential"`` (default) or ``"linear"`` spacing of the sweep.
        suggestion: The rule that chooses: one of ``minimum`` (default), ``valley``,
            ``steep``, ``slide``, ``lightning_steepest``.
        diverge_threshold: Stop the sweep once the smoothed loss exceeds this multiple of
            its minimum (``None``: never stop early).
        at_start: Run a test when training starts (skipped when resuming).
        milestones: Epochs (> 0) at whose start the test runs again, from the weights
            reached so far.
        update_lr: Apply the chosen learning rate; ``False`` only records the results.
        attr_names: Module attributes / hparams to write the rate to (one name or a
            list); by default those of ``lr`` and ``learning_rate`` that exist.
        plot: Save and log the curve's figure: ``True``, ``False``, or ``None`` (default)
            for "if matplotlib is installed".
        verbose: Print the choice on rank zero.
        apply_at_boundary: Apply a pick that sits at an end of the sweep anyway (it is
            still reported with a warning).
        unfreezing: What to do when another recipe (the `Freezer`) plans to unfreeze
            parameters later in the run. ``"sweep_final"`` (default): the range test trains
            them too, in its throwaway copy, so the rate found fits every parameter that
            will train, and the frozen phase trains the head at that same rate.
            ``"rerun"``: test only what trains now, and test again at every planned
            unfreeze. ``"ignore"``: test only what trains now. See "Combining recipes".

    Attributes:
        results: One `LRFinderResult` per test run, in order.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> finder = LRFinder(num_steps=30, plot=False, verbose=False)
        >>> model = Classifier(MLP(64, [32]), num_classes=10, lr=1e-3)
        >>> trainer = Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1,
        ...                   callbacks=[finder], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, DigitsDataModule(batch_size=64))
        >>> model.lr == finder.results[0].chosen == trainer.optimizers[0].param_groups[0]["lr"]
        True
    """

    identity = ("min_lr", "max_lr", "num_steps", "mode", "suggestion", "at_start", "milestones")
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "the sweep trains a full copy of the module, which sharded strategies do "
        "not hold on one rank. Run the finder on a single device or under DDP with a "
        "smaller model, then set the learning rate by hand."
    )

    def __init__(
        self,
        min_lr: float = 1e-6,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: Literal["exponential", "linear"] = "exponential",
        suggestion: SuggestionName = DEFAULT_SUGGESTION,
        diverge_threshold: float | None = 4.0,
        at_start: bool = True,
        milestones: Sequence[int] = (),
        update_lr: bool = True,
        attr_names: str | Sequence[str] | None = None,
        plot: bool | None = None,
        verbose: bool = True,
        apply_at_boundary: bool = False,
        unfreezing: Literal["sweep_final", "rerun", "ignore"] = "sweep_final",
    ) -> None:
        super().__init__()
        self.lrs = sweep_lrs(min_lr, max_lr, num_steps, mode)  # validates the range
        self.min_lr, self.max_lr, self.num_steps, self.mode = min_lr, max_lr, num_steps, mode
        flags = {
            "at_start": at_start,
            "update_lr": update_lr,
            "verbose": verbose,
            "apply_at_boundary": apply_at_boundary,
        }
        _check_args(suggestion, diverge_threshold, plot, flags)
        self.milestones = _milestones(milestones)
        self.attr_names = _attr_names(attr_names)
        if plot:
            new_figure("LRFinder(plot=True)")  # fail now, not after the sweep
        self.suggestion = suggestion
        self.diverge_threshold = diverge_threshold
        self.at_start = at_start
        self.update_lr = update_lr
        self.plot = plot if plot is not None else importlib.util.find_spec("matplotlib") is not None
        self.verbose = verbose
        self.apply_at_boundary = apply_at_boundary
        if unfreezing not in ("sweep_final", "rerun", "ignore"):
            raise choice_error("unfreezing", unfreezing, ("sweep_final", "rerun", "ignore"))
        self.unfreezing = unfreezing
        self.results: list[LRFinderResult] = []
        self.figure_paths: dict[int, Path] = {}  # epoch -> PNG (rank zero)
        self._done: set[int] = set()  # epochs whose test has run (0 = the start)

    @property
    def result(self) -> LRFinderResult | None:
        """The latest test's result, ``None`` before the first."""
        return self.results[-1] if self.results else None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)
        if stage == "fit" and not pl_module.automatic_optimization:
            raise RecipeConfigError(
                "LRFinder needs automatic optimization (automatic_optimization=True): with "
                "manual optimization training_step steps the optimizers itself."
            )

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.at_start or 0 in self._done:
            return
        if trainer.global_step > 0:
            helpers.rank_zero_info(
                "LRFinder: resumed at step "
                f"{trainer.global_step} without a finder state; the start test is skipped."
            )
            self._done.add(0)
            return
        self._run(trainer, pl_module, key=0)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch in self.test_epochs(trainer) and epoch not in self._done:
            self._run(trainer, pl_module, key=epoch)

    def test_epochs(self, trainer: Trainer) -> list[int]:
        """The epochs (> 0) at whose start a test runs.

        ``milestones``, and with ``unfreezing="rerun"`` every epoch where another recipe
        plans to change what trains.
        """
        epochs = set(self.milestones)
        if self.unfreezing == "rerun":
            epochs.update(planned_change_epochs(trainer))
        return sorted(epochs)

    def _run(self, trainer: Trainer, pl_module: LightningModule, key: int) -> None:
        # Whatever other recipes do to training at this point (class weights in the loss,
        # this epoch's trainable set) must be in place before the sweep, whatever the
        # order of the callbacks: the contract's `prepare_training`.
        prepare_training(trainer, pl_module)
        later = (
            parameters_unfrozen_later(trainer, pl_module)
            if self.unfreezing == "sweep_final"
            else []
        )
        trainable, total = trainable_share(pl_module, also=later)
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        previous = reference_lr(optimizer) if optimizer is not None else None
        sweep = run_sweep(
            trainer,
            pl_module,
            self.lrs,
            diverge_threshold=self.diverge_threshold,
            unfreeze=set(later),
        )
        result = LRFinderResult.from_curve(
            sweep.lrs,
            sweep.losses,
            self.suggestion,
            previous_lr=previous,
            epoch=trainer.current_epoch,
            global_step=trainer.global_step,
            stopped_early=sweep.stopped_early,
        )
        result.trainable_params, result.total_params = trainable, total
        # Every rank computed the same curve (losses are averaged over ranks); broadcasting
        # rank 0's pick makes the decision identical even to the last bit.
        result.chosen, result.boundary, result.boundary_reason = helpers.broadcast(
            trainer, (result.chosen, result.boundary, result.boundary_reason)
        )
        where = f"LRFinder at epoch {result.epoch}"
        if result.chosen is None:
            result.not_applied = (
                f"only {len(sweep.lrs)} steps before the loss {sweep.stopped_early or 'ended'}, "
                "too few for a suggestion"
            )
            helpers.rank_zero_warn(
                f"{where}: {result.not_applied}; the learning rate stays {previous}. "
                "Lower min_lr or raise num_steps."
            )
        elif result.boundary is not None and not self.apply_at_boundary:
            result.not_applied = f"pick at the {result.boundary} end of the sweep"
            helpers.rank_zero_warn(
                f"{where}: {result.chosen:.3g} is not trusted and not applied: "
                f"{result.boundary_reason} The learning rate stays {previous}; pass "
                "apply_at_boundary=True to apply such a pick anyway."
            )
        elif not self.update_lr:
            result.not_applied = "update_lr=False"
        elif optimizer is not None:
            if result.boundary is not None:
                helpers.rank_zero_warn(
                    f"{where}: {result.chosen:.3g} is applied (apply_at_boundary=True) "
                    f"although it is at the {result.boundary} end of the sweep: "
                    f"{result.boundary_reason}"
                )
            schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
            scale_learning_rate(optimizer, result.chosen, schedulers)
            result.written_to = set_module_lr(pl_module, result.chosen, self.attr_names)
            result.applied = True
        self.results.append(result)
        self._done.add(key)
        self._report(trainer, result)

    def _report(self, trainer: Trainer, result: LRFinderResult) -> None:
        if trainer.global_rank != 0:
            return
        if result.chosen is not None:
            metrics = {"lr_finder/lr": result.chosen}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        if self.plot:
            name = "lr_finder" if result.epoch == 0 else f"lr_finder_epoch{result.epoch}"
            path = helpers.log_figure(trainer, result.plot(), name)
            if path is not None:
                self.figure_paths[result.epoch] = path
        if self.verbose and result.chosen is not None:
            action = "set" if result.applied else "suggested (not applied)"
            ending = f", {result.stopped_early}" if result.stopped_early else ""
            share = result.swept_share
            swept = (
                f"; swept with {share:.0%} of the parameters trainable, the others frozen"
                if share is not None and share < 1
                else ""
            )
            helpers.rank_zero_info(
                f"LRFinder at epoch {result.epoch}: learning rate {result.chosen:.3g} {action} "
                f"by '{result.suggestion}' (was {result.previous_lr:.3g}; "
                f"{len(result.lrs)} steps{ending}{swept})."
            )

    @override
    def run_summary(self) -> RecipeSummary:
        """Every test: when, what it swept, what it chose and whether it applied it."""
        tests = []
        notes = []
        for r in self.results:
            share = r.swept_share
            tests.append(
                {
                    "epoch": r.epoch,
                    "chosen lr": r.chosen,
                    "applied": r.applied,
                    "previous lr": r.previous_lr,
                    "trainable share": None if share is None else round(share, 4),
                }
            )
            if r.not_applied:
                notes.append(f"Epoch {r.epoch}: not applied ({r.not_applied}).")
        return RecipeSummary(
            "LR finder",
            facts={"rule": self.suggestion, "tests": tests},
            figures={f"LR range test, epoch {e}": p for e, p in self.figure_paths.items()},
            notes=notes,
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"done": sorted(self._done), "results": [r.to_dict() for r in self.results]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._done = {int(epoch) for epoch in state_dict["done"]}
        self.results = [LRFinderResult.from_dict(r) for r in state_dict["results"]]


class _EndFitAfterStart(Callback):
    """Ends ``trainer.fit`` right after the finder, before anything trains.

    ``trainer.should_stop`` is not enough: Lightning ignores it until ``min_epochs`` and
    ``min_steps`` are met, so a whole epoch would train with the old rate, and the
    callbacks' ``on_train_end`` would run (Timer would then misread ``max_time``).
    """

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        helpers.end_fit_now()


_FIND_LR_OPTIONS = frozenset(inspect.signature(LRFinder.__init__).parameters) - {
    "self",
    "at_start",
    "milestones",
}


def find_lr(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule | None = None,
    *,
    train_dataloaders: Any = None,
    **options: Any,
) -> LRFinderResult:
    """Run one range test before training, like Lightning's ``Tuner.lr_find``.

    The Trainer runs ``fit`` up to the start of training (setup, no sanity check), the
    finder sweeps a copy of the module, and fit ends there, before the first real step
    and before any other callback's ``on_train_start``, whatever the Trainer's arguments
    (``min_epochs``, ``min_steps``, ``max_time``...). The module's weights and every
    random state are untouched, so ``find_lr`` followed by ``fit`` trains exactly as
    ``fit`` with the learning rate typed in. With ``update_lr=True`` (the default) the
    module's ``lr`` / ``learning_rate`` is set to the suggestion, so the next
    ``trainer.fit(model, ...)`` trains with it; a pick at an end of the sweep is not
    applied unless ``apply_at_boundary=True`` (see `LRFinder`). Spawn-based strategies
    (``ddp_spawn``) are refused: the result would stay in the spawned processes; use the
    `LRFinder` callback there.

    Args:
        trainer: The Trainer to train with afterwards.
        model: The module.
        datamodule: A datamodule, or None when ``train_dataloaders`` is given.
        train_dataloaders: Training dataloader(s) when there is no datamodule.
        **options: Arguments of `LRFinder` (``min_lr``, ``max_lr``, ``num_steps``,
            ``mode``, ``suggestion``, ``diverge_threshold``, ``update_lr``,
            ``attr_names``, ``plot``, ``verbose``, ``apply_at_boundary``); ``at_start``
            and ``milestones`` are fixed (one test, at the start).

    Returns:
        The test's result.

    Raises:
        RecipeConfigError: On bad arguments or a spawn-based strategy.
    """
    _check_find_lr_args(trainer, model, datamodule, train_dataloaders, options, _FIND_LR_OPTIONS)
    finder = LRFinder(**options)
    # The finder goes first, so that fit ends before any other callback's on_train_start.
    # Trainer.callbacks is a public list, set in __init__ without a class annotation.
    original: list[Callback] = trainer.callbacks  # type: ignore[attr-defined]
    sanity_steps = trainer.num_sanity_val_steps
    trainer.callbacks = [finder, _EndFitAfterStart(), *original]  # type: ignore[attr-defined]
    trainer.num_sanity_val_steps = 0  # the following fit runs it; nothing here validates
    try:
        # The truncated fit draws from the global RNG before training starts (as every fit
        # does); undo that too, so that find_lr + fit replays a plain fit exactly.
        with preserved_rng(dataloader_generators(train_dataloaders)):
            trainer.fit(model, train_dataloaders=train_dataloaders, datamodule=datamodule)
    finally:
        # Restore the list itself (fit may have replaced it when the module configures
        # callbacks), so nothing of find_lr stays in the Trainer.
        trainer.callbacks = original  # type: ignore[attr-defined]
        trainer.num_sanity_val_steps = sanity_steps
    result = finder.result
    if result is None:
        raise RecipeConfigError(
            "find_lr got no result back: the fit ended before training started (no "
            "training batches? limit_train_batches=0 or max_steps=0)."
        )
    if result.applied and not result.written_to:
        helpers.rank_zero_warn(
            f"find_lr: {type(model).__name__} has no 'lr' or 'learning_rate' attribute or "
            f"hparam, so the next fit will not use the suggestion {result.chosen:.3g}. Add "
            "one and read it in configure_optimizers, pass attr_names=, or use the LRFinder "
            "callback, which also sets the optimizer."
        )
    return result
