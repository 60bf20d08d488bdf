"""The ModelCheckpoint side of ``restore_best_weights``: which one can hold it, and its file.

`EarlyStopping` keeps its best weights as a CPU copy unless a ``ModelCheckpoint`` is sure to
save each of its best checks: `matching_checkpoint` picks that one at setup (or says why
none can); at the end of fit `_load_checkpoint` reads its best file back and
`_holds_best_check` makes sure it is the stopper's best check.
"""

import pickle
from typing import Any, Literal, TypeGuard

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_recipes._core import trainer as helpers
from lightning_recipes.errors import config_error

__all__ = ["Restore", "matching_checkpoint"]

Restore = Literal["copy", "checkpoint"]
"""Where ``restore_best_weights`` keeps the best weights, when it names the place."""


def matching_checkpoint(
    trainer: Trainer,
    *,
    monitor: str,
    mode: str,
    restore: bool | Restore,
    min_delta: float,
    start_from_epoch: int,
    on_train_epoch_end: bool,
) -> tuple[ModelCheckpoint | None, str]:
    """A ModelCheckpoint whose best checkpoint is always the stopper's best check, or why none is.

    Args:
        trainer: The Trainer, with its callbacks.
        monitor: The stopper's metric.
        mode: The stopper's resolved mode, ``"min"`` or ``"max"``.
        restore: The stopper's ``restore_best_weights``.
        min_delta: The stopper's ``min_delta`` (any value but 0 rules a checkpoint out).
        start_from_epoch: The stopper's warm-up (any value but 0 rules a checkpoint out).
        on_train_epoch_end: Whether the stopper checks at the end of the training epoch
            (else after validation).

    Returns:
        The first ModelCheckpoint that fits and ``""``, or None and the reasons none does.

    Raises:
        RecipeConfigError: If none fits and ``restore`` is ``"checkpoint"``.
    """
    if restore == "copy":
        return None, "restore_best_weights='copy'"
    if min_delta:
        why_not = f"min_delta={min_delta} (its best can be a check we skip)"
    elif start_from_epoch:
        why_not = f"start_from_epoch={start_from_epoch} (its best can be earlier)"
    else:
        found, why_not = _first_fit(trainer, monitor, mode, on_train_epoch_end)
        if found is not None:
            return found, ""
    if restore == "checkpoint":
        raise config_error(
            "restore_best_weights",
            "checkpoint",
            f"No ModelCheckpoint can hold this callback's best check: {why_not}. Fix "
            "that, or pass restore_best_weights=True (or 'copy') to keep a copy in memory.",
        )
    return None, why_not


def _first_fit(
    trainer: Trainer, monitor: str, mode: str, on_train_epoch_end: bool
) -> tuple[ModelCheckpoint | None, str]:
    """The first ModelCheckpoint that saves every best check, or why each does not."""
    ours = "train epoch end" if on_train_epoch_end else "validation end"
    reasons: list[str] = []
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        theirs = (
            "train epoch end"
            if helpers.checkpoint_saves_on_train_epoch_end(callback, trainer)
            else "validation end"
        )
        if callback.monitor != monitor:
            reasons.append(f"it monitors {callback.monitor!r}, not {monitor!r}")
        elif callback.mode != mode:
            reasons.append(f"its mode is {callback.mode!r}, not {mode!r}")
        elif callback.save_top_k == 0:
            reasons.append("it has save_top_k=0")
        elif not helpers.checkpoint_saves_every_epoch(callback):
            reasons.append("it does not save at every epoch (every_n_epochs != 1, or "
                           "every_n_train_steps / train_time_interval set)")  # fmt: skip
        elif theirs != ours:
            reasons.append(f"it saves at {theirs}, this callback checks at {ours}")
        else:
            return callback, ""
    return None, "; ".join(reasons) or "there is no ModelCheckpoint"


def _load_checkpoint(path: str) -> dict[str, Any]:
    """A checkpoint file, loaded with ``weights_only=True`` whenever that can work.

    ``weights_only=False`` is used only when the file holds objects that
    ``weights_only=True`` refuses (e.g. custom classes in ``hyper_parameters``); the file
    is the one this run's ModelCheckpoint wrote, and only its ``state_dict`` is used.
    """
    try:
        loaded: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        loaded = torch.load(path, map_location="cpu", weights_only=False)
    return loaded


def _holds_best_check(
    saved: dict[str, Any] | None, path: str, best: tuple[int | None, int | None]
) -> TypeGuard[dict[str, Any]]:
    """Whether the loaded checkpoint is the one of the best check; if not, warn.

    Args:
        saved: The checkpoint loaded from ``path``, or None when there is no file.
        path: The ModelCheckpoint's ``best_model_path`` (may be empty).
        best: The stopper's best check, ``(best_epoch, best_step)``.
    """
    where = (saved.get("epoch"), saved.get("global_step")) if saved else None
    if saved is None or where != best:
        # Every best check was confirmed; this happens only if the file was replaced.
        helpers.rank_zero_warn(
            f"EarlyStopping: the ModelCheckpoint's best ({path or 'none'}, epoch/step "
            f"{where}) is not this callback's best check (epoch/step {best}); the weights of "
            "the last epoch are kept. Pass restore_best_weights='copy'."
        )
        return False
    return True
