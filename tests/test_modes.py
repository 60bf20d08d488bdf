"""The one name -> direction rule shared by EarlyStopping, tune, cross_validate and the CLI."""

import pytest

from lightning_recipes._core.modes import infer_mode, name_direction, resolve_mode
from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.stopping import rules


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("val_loss", "min"),
        ("val/error", "min"),
        ("val_nll", "min"),
        ("val_mse", "min"),
        ("test-mae", "min"),
        ("train/loss_epoch", "min"),
        ("valLoss", "min"),  # camelCase humps split words too
        ("val_acc", "max"),
        ("val/accuracy", "max"),
        ("val_macro_f1", "max"),
        ("val_auroc", "max"),
        ("val_precision", "max"),
        ("val_recall", "max"),
        ("valAcc", "max"),
        ("val_acc_top1", "max"),
    ],
)
def test_the_name_says_the_direction(name: str, mode: str) -> None:
    assert name_direction(name) == mode
    assert infer_mode(name) == mode
    assert resolve_mode(name, "auto") == mode


@pytest.mark.parametrize("name", ["val_score", "val_metric", "loss_over_acc", "lossy", ""])
def test_a_name_that_says_neither_or_both_is_refused_asking_for_the_mode(name: str) -> None:
    assert name_direction(name) is None
    with pytest.raises(RecipeConfigError, match=r"Invalid mode='auto'.*mode='min'.*mode='max'"):
        resolve_mode(name, "auto")
    with pytest.raises(RecipeConfigError, match=r"Invalid --mode='auto'.*--mode='min'"):
        infer_mode(name, argument="--mode")


def test_an_explicit_mode_is_kept_and_anything_else_refused() -> None:
    assert resolve_mode("val_acc", "min") == "min"  # the caller's choice, even against the name
    assert resolve_mode("val_score", "max") == "max"
    for bad in ("minimum", None, "MAX"):
        with pytest.raises(RecipeConfigError, match=r"Invalid mode=.*'auto', 'min', 'max'"):
            resolve_mode("val_loss", bad)


def test_early_stopping_reads_names_with_the_same_rule() -> None:
    assert rules.infer_mode is infer_mode
