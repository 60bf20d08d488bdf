"""`LRFinder`'s and `find_lr`'s argument checks: each raises `RecipeConfigError` with the fix.

The sweep's range (``min_lr``, ``max_lr``, ``num_steps``, ``mode``) is checked where it is
built, by `lightning_recipes.lr.sweep.sweep_lrs`.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.validate import flag, is_real
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.lr.suggest import SUGGESTIONS

__all__: list[str] = []


def _check_args(
    suggestion: Any, diverge_threshold: Any, plot: Any, flags: Mapping[str, Any]
) -> None:
    """Check `LRFinder`'s choice of rule, its early stop, its flags and ``plot``.

    Args:
        suggestion: The name of the suggestion rule.
        diverge_threshold: A finite factor above 1, or None.
        plot: True, False or None.
        flags: The boolean arguments by name, checked in this order.

    Raises:
        RecipeConfigError: On the first bad argument.
    """
    if not isinstance(suggestion, str) or suggestion not in SUGGESTIONS:
        raise choice_error("suggestion", suggestion, list(SUGGESTIONS))
    if diverge_threshold is not None and not (
        is_real(diverge_threshold) and math.isfinite(diverge_threshold) and diverge_threshold > 1
    ):
        raise config_error(
            "diverge_threshold",
            diverge_threshold,
            "Pass a finite factor above 1 (e.g. 4), or None to never stop early.",
        )
    for name, value in flags.items():
        flag(name, value)
    if plot is not None and not isinstance(plot, bool):
        raise config_error("plot", plot, "Pass True, False, or None (if matplotlib is there).")


def _milestones(milestones: Any) -> list[int]:
    """Validated milestones: distinct epochs >= 1, as a sorted list."""
    fix = "Pass a list of distinct epoch numbers >= 1, e.g. [5, 10] (epoch 0 is at_start=True)."
    if isinstance(milestones, str) or not isinstance(milestones, Sequence):
        raise config_error("milestones", milestones, fix)
    bad = [m for m in milestones if isinstance(m, bool) or not isinstance(m, int) or m < 1]
    if bad or len(set(milestones)) != len(milestones):
        raise config_error("milestones", list(milestones), fix)
    return sorted(milestones)


def _attr_names(attr_names: Any) -> list[str] | None:
    """Validated attribute names; a single string is one name, not its characters."""
    if attr_names is None:
        return None
    names = [attr_names] if isinstance(attr_names, str) else attr_names
    if (
        not isinstance(names, Sequence)
        or not names
        or not all(isinstance(n, str) and n.isidentifier() for n in names)
    ):
        raise config_error(
            "attr_names",
            attr_names,
            "Pass an attribute name or a non-empty list of them, e.g. 'lr' or "
            "['lr', 'learning_rate'], or None for those of lr / learning_rate that exist.",
        )
    return list(names)


def _check_find_lr_args(
    trainer: Any,
    model: Any,
    datamodule: Any,
    train_dataloaders: Any,
    options: Mapping[str, Any],
    accepted: frozenset[str],
) -> None:
    """Check `find_lr`'s arguments before anything runs.

    Args:
        trainer: The Trainer.
        model: The module.
        datamodule: A datamodule or None.
        train_dataloaders: Training dataloader(s) or None.
        options: The keyword arguments meant for `LRFinder`.
        accepted: The names ``options`` may use.

    Raises:
        RecipeConfigError: On the first bad argument, or a spawn-based strategy.
    """
    fixed = {"at_start", "milestones"} & options.keys()
    if fixed:
        raise config_error(
            sorted(fixed)[0],
            options[sorted(fixed)[0]],
            "find_lr runs one test at the start; "
            "use the LRFinder callback for tests at milestones.",
        )
    unknown = sorted(options.keys() - accepted)
    if unknown:
        raise config_error(
            unknown[0],
            options[unknown[0]],
            f"find_lr accepts: {', '.join(sorted(accepted))}.",
        )
    if not isinstance(trainer, Trainer):
        raise config_error("trainer", trainer, "Pass a lightning.pytorch.Trainer.")
    if not isinstance(model, LightningModule):
        raise config_error("model", model, "Pass a lightning.pytorch.LightningModule.")
    if datamodule is not None and not isinstance(datamodule, LightningDataModule):
        raise config_error(
            "datamodule",
            datamodule,
            "Pass a LightningDataModule, or the loaders as train_dataloaders=.",
        )
    if datamodule is not None and train_dataloaders is not None:
        raise config_error(
            "train_dataloaders",
            train_dataloaders,
            "Pass a datamodule or train_dataloaders, not both.",
        )
    if helpers.spawns_processes(trainer):
        raise config_error(
            "trainer",
            f"<Trainer with {type(trainer.strategy).__name__}>",
            "find_lr cannot bring the result back from processes the strategy spawns "
            "(ddp_spawn): put the LRFinder callback in trainer.fit instead.",
        )
