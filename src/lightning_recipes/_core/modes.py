"""Which way a monitored metric should go: the one name -> direction rule of the library.

`EarlyStopping(mode="auto")`, `tune` and `cross_validate` (``mode="auto"``, their
default) and the ``lightning-recipes tune --mode`` option all read a metric's direction
from its name here, so that they agree: losses and errors fall, accuracy-like scores rise,
and a name that says neither (or both) is refused with a request for an explicit mode.
"""

import re
from typing import Literal

from lightning_recipes.errors import choice_error, config_error

__all__ = ["MODE_CHOICES", "Mode", "ModeChoice", "infer_mode", "name_direction", "resolve_mode"]

Mode = Literal["min", "max"]
ModeChoice = Literal["min", "max", "auto"]
MODE_CHOICES: tuple[ModeChoice, ...] = ("auto", "min", "max")

_MIN_WORDS = frozenset(
    {
        "loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer",
        "cer", "bce", "ece", "brier", "mape", "smape",
    }
)  # fmt: skip
_MAX_WORDS = frozenset(
    {
        "acc", "accuracy", "f1", "auc", "auroc", "ap", "map", "precision", "recall", "iou",
        "dice", "r2", "mcc", "kappa", "bleu", "rouge", "top1", "top5", "fbeta", "jaccard",
    }
)  # fmt: skip


def _words(monitor: str) -> set[str]:
    """The name's words: split at camelCase humps and at any non-alphanumeric character."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", monitor)
    return set(re.split(r"[^0-9a-z]+", spaced.lower()))


def name_direction(monitor: str) -> Mode | None:
    """The direction a metric's name says, or None when it says neither or both.

    The name is split into words at camelCase humps and at any non-alphanumeric character
    (``val/macro_f1`` gives ``val``, ``macro``, ``f1``). Falling words: loss, error (err),
    MSE, MAE, RMSE, NLL, BCE, ECE, Brier, MAPE, perplexity, WER, CER. Rising words:
    accuracy (acc), F1, F-beta, AUC, AUROC, AP, mAP, precision, recall, IoU, Dice, R2,
    MCC, kappa, BLEU, ROUGE, top1/top5, Jaccard. Exactly one of the two lists must match.

    Args:
        monitor: The metric's name.

    Returns:
        ``"min"``, ``"max"`` or None.

    Examples:
        >>> name_direction("val_loss"), name_direction("valAcc"), name_direction("score")
        ('min', 'max', None)
    """
    words = _words(monitor)
    lower, higher = bool(words & _MIN_WORDS), bool(words & _MAX_WORDS)
    if lower == higher:
        return None
    return "min" if lower else "max"


def infer_mode(monitor: str, *, argument: str = "mode") -> Mode:
    """Whether a metric should fall (losses, errors) or rise (accuracy, F1, AUC...).

    Args:
        monitor: The metric's name (see `name_direction` for the words it knows).
        argument: The name of the caller's mode argument, for the error (e.g. ``"--mode"``).

    Returns:
        ``"min"`` or ``"max"``.

    Raises:
        RecipeConfigError: If the name matches neither list, or both.

    Examples:
        >>> infer_mode("val_loss"), infer_mode("val/acc"), infer_mode("val_macro_f1")
        ('min', 'max', 'max')
    """
    direction = name_direction(monitor)
    if direction is not None:
        return direction
    raise config_error(
        argument,
        "auto",
        f"Cannot tell from the name {monitor!r} whether it should fall or rise; pass "
        f"{argument}='min' (losses, errors) or {argument}='max' (accuracy, F1, AUC).",
    )


def resolve_mode(monitor: str, mode: object, *, argument: str = "mode") -> Mode:
    """Check a mode argument and resolve ``"auto"`` from the metric's name.

    Args:
        monitor: The metric's name.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        argument: The name of the caller's mode argument, for the errors.

    Returns:
        ``"min"`` or ``"max"``.

    Raises:
        RecipeConfigError: For another mode, or ``"auto"`` with a name `infer_mode` refuses.

    Examples:
        >>> resolve_mode("val_acc", "auto"), resolve_mode("val_acc", "min")
        ('max', 'min')
    """
    if mode == "min" or mode == "max":
        return mode
    if mode == "auto":
        return infer_mode(monitor, argument=argument)
    raise choice_error(argument, mode, MODE_CHOICES)
