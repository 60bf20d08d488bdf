"""The contract between recipes: what one recipe may ask of another, without importing it.

No recipe package imports another. Where one recipe's decision depends on another's plan
(the LR finder must sweep the parameters that will train; early stopping must not end a
run in the middle of a planned unfreeze schedule), the two meet here, through small
protocols that a callback implements and helpers that read them off the Trainer.

- `PlansTrainableChanges`: a callback that changes which parameters train at known epochs
  (the `Freezer`). The LR finder re-runs its range test at those epochs; early stopping
  counts patience from the last of them and never stops before it.
- `PreparesTraining`: a callback whose effect must be in place before another recipe looks
  at training (class weights installed in the loss, the epoch's trainable set applied).
  It exposes an idempotent ``prepare_training``; the LR finder calls every one of them
  before a range test, so the order of ``callbacks=[...]`` does not change what it sweeps.
- `ReportsToRun`: a callback that can say what it did, for the run report (`RecipeSummary`).
- `ValidatesOtherWeights`: a callback that validates on weights other than the live ones
  (a weight average). Early stopping keeps those as "the best weights", because those are
  the weights that scored.
- `RestoresWeightsAtEnd`: a callback that sets the final weights at the end of fit
  (early stopping restoring the best). A weight average then leaves the final weights to it,
  so the order of ``callbacks=[...]`` does not decide which one wins.

The loss recipes meet in the loss path (`lightning_recipes._core.loss_path`), in one
order: mix terms, then smoothing, each term with the class weights, then distillation
(``(1 - alpha) * that + alpha * T^2 * KL(teacher || student)``, the teacher's term neither
weighted nor mixed: the teacher ran on the mixed inputs). The rules themselves are written
down in ``docs/combining.md``.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor
from torch.nn import Parameter

from lightning_recipes._core.trainer import trainer_callbacks

__all__ = [
    "PlansTrainableChanges",
    "PreparesTraining",
    "RecipeSummary",
    "ReportsToRun",
    "RestoresWeightsAtEnd",
    "ValidatesOtherWeights",
    "parameters_unfrozen_later",
    "planned_change_epochs",
    "prepare_training",
    "run_summaries",
    "trainable_share",
    "validated_weights",
    "weights_restored_at_end",
]


@runtime_checkable
class PlansTrainableChanges(Protocol):
    """A callback that changes which parameters train, at epochs known in advance."""

    def planned_change_epochs(self, max_epochs: int) -> list[int]:
        """The epochs (0-based) at whose start the trainable set changes (after epoch 0)."""
        ...

    def parameters_unfrozen_later(self, epoch: int, max_epochs: int) -> list[Parameter]:
        """The parameters frozen now that the plan makes trainable before ``max_epochs``."""
        ...


@runtime_checkable
class PreparesTraining(Protocol):
    """A callback whose effect on training must be in place before others look at it."""

    def prepare_training(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Apply the callback's effect for the current epoch; calling it twice is harmless."""
        ...


def prepare_training(trainer: Trainer, pl_module: LightningModule) -> None:
    """Call ``prepare_training`` of every callback that has one, in callback order."""
    for callback in trainer_callbacks(trainer):
        if isinstance(callback, PreparesTraining):
            callback.prepare_training(trainer, pl_module)


@dataclass
class RecipeSummary:
    """What one recipe did during a run, for the report.

    Attributes:
        recipe: The recipe's name as a person reads it (``"LR finder"``).
        facts: JSON-able facts, in the order to show them (``{"chosen lr": 0.01}``).
        figures: Figures saved during the run, by caption.
        notes: Sentences a person should read (a refusal, a warning, a caveat).
    """

    recipe: str
    facts: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (figure paths as strings)."""
        return {
            "recipe": self.recipe,
            "facts": self.facts,
            "figures": {k: str(v) for k, v in self.figures.items()},
            "notes": list(self.notes),
        }


@runtime_checkable
class ReportsToRun(Protocol):
    """A callback that can summarise what it did."""

    def run_summary(self) -> RecipeSummary:
        """What the callback did in the last run."""
        ...


def planned_change_epochs(trainer: Trainer) -> list[int]:
    """Every epoch at which some callback plans to change the trainable set, sorted.

    Args:
        trainer: The Trainer whose callbacks to ask.

    Returns:
        Sorted distinct epochs (> 0) below ``trainer.max_epochs`` (all of them when
        ``max_epochs`` is unbounded).
    """
    max_epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else 2**31 - 1
    assert max_epochs is not None
    epochs: set[int] = set()
    for callback in trainer_callbacks(trainer):
        if isinstance(callback, PlansTrainableChanges):
            epochs.update(
                e for e in callback.planned_change_epochs(max_epochs) if 0 < e < max_epochs
            )
    return sorted(epochs)


def parameters_unfrozen_later(trainer: Trainer, pl_module: LightningModule) -> list[str]:
    """Names of the parameters that some callback's plan will unfreeze later in this run.

    Args:
        trainer: The Trainer whose callbacks to ask.
        pl_module: The module the names refer to.

    Returns:
        Parameter names (as in ``named_parameters``), in module order.
    """
    max_epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else 2**31 - 1
    assert max_epochs is not None
    ids: set[int] = set()
    for callback in trainer_callbacks(trainer):
        if isinstance(callback, PlansTrainableChanges):
            later = callback.parameters_unfrozen_later(trainer.current_epoch, max_epochs)
            ids.update(id(p) for p in later)
    return [name for name, p in pl_module.named_parameters() if id(p) in ids]


def run_summaries(callbacks: Iterable[Callback]) -> list[RecipeSummary]:
    """The summaries of the callbacks that report, in callback order.

    A `Recipe` (``_core.recipe``) that has nothing to report returns None: it is left out.
    """
    summaries: list[RecipeSummary | None] = [
        c.run_summary() for c in callbacks if isinstance(c, ReportsToRun)
    ]
    return [summary for summary in summaries if summary is not None]


def trainable_share(module: LightningModule, also: Iterable[str] = ()) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of ``module``.

    Args:
        module: The module.
        also: Names of frozen parameters to count as trainable (a sweep that trains them).
    """
    extra = set(also)
    total = trainable = 0
    for name, param in module.named_parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad or name in extra else 0
    return trainable, total


@runtime_checkable
class ValidatesOtherWeights(Protocol):
    """A callback that may run validation on weights other than the live ones."""

    def validated_weights(self) -> dict[str, Tensor] | None:
        """A CPU copy of the state dict the last validation ran on; None if it was the live one."""
        ...


@runtime_checkable
class RestoresWeightsAtEnd(Protocol):
    """A callback that may replace the module's weights at the end of fit."""

    def restores_weights_at_end(self) -> bool:
        """Whether this callback will set the final weights at ``on_train_end``."""
        ...


def validated_weights(trainer: Trainer, pl_module: LightningModule) -> dict[str, Tensor]:
    """A detached CPU copy of the weights the last validation ran on.

    The live weights, unless a `ValidatesOtherWeights` callback (a weight average) swapped
    its own in for that validation.

    Args:
        trainer: The Trainer whose callbacks to ask.
        pl_module: The module being trained.
    """
    for callback in trainer_callbacks(trainer):
        if isinstance(callback, ValidatesOtherWeights):
            weights = callback.validated_weights()
            if weights is not None:
                return weights
    return {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}


def weights_restored_at_end(trainer: Trainer, besides: Callback | None = None) -> list[str]:
    """The names of the callbacks (other than ``besides``) that set the final weights."""
    return [
        type(callback).__name__
        for callback in trainer_callbacks(trainer)
        if callback is not besides
        and isinstance(callback, RestoresWeightsAtEnd)
        and callback.restores_weights_at_end()
    ]
