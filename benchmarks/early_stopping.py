"""What early stopping buys on a model that overfits, and what restoring the best weights adds.

Digits with 30% of the *training* labels replaced at random (validation and test labels
are clean), and a wide MLP (64 -> 512 -> 512 -> 10, Adam 1e-3, no dropout) for up to 100
epochs, 3 seeds: the model first learns the digits, then memorises the wrong labels, and
validation accuracy falls from about 0.95 to about 0.8. Four
runs per seed, side by side: no stopping; Lightning's EarlyStopping; ours with the same
arguments; ours with ``restore_best_weights=True``. All monitor ``val_loss`` with
patience 10. Reported: epochs run, and the test loss and accuracy of the model that
``fit`` hands back.

Run: ``.venv/bin/python benchmarks/early_stopping.py`` (about 5 minutes on 2 CPU cores).
Also writes the recipe page's figure, ``docs/recipes/img/early_stopping_digits.png``.
"""

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import publish, quiet_trainer
from lightning.pytorch import Callback, seed_everything
from lightning.pytorch.callbacks import EarlyStopping as LightningEarlyStopping
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lightning_recipes import MLP, Classifier, EarlyStopping, MetricHistory
from lightning_recipes._core.optional import new_figure
from lightning_recipes.data import ArrayDataModule
from lightning_recipes.history import metric_series

SEEDS = (0, 1, 2)
NOISE = 0.3
MAX_EPOCHS = 100
PATIENCE = 10
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "img"


def stopper(kind: str) -> Callback | None:
    if kind == "Lightning EarlyStopping":
        return LightningEarlyStopping("val_loss", patience=PATIENCE)
    if kind == "ours":
        return EarlyStopping("val_loss", patience=PATIENCE)
    if kind == "ours, restore_best_weights":
        return EarlyStopping("val_loss", patience=PATIENCE, restore_best_weights=True)
    return None


KINDS = ("no stopping", "Lightning EarlyStopping", "ours", "ours, restore_best_weights")


def noisy_digits(seed: int) -> ArrayDataModule:
    """Train/val/test = 50/20/30%, a share NOISE of the training labels drawn at random."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, train_size=0.5, stratify=y, random_state=seed
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, train_size=0.4, stratify=y_rest, random_state=seed
    )
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y_train)) < NOISE
    y_noisy = y_train.copy()
    y_noisy[flip] = rng.integers(0, 10, int(flip.sum()))
    return ArrayDataModule(
        train=(x_train, y_noisy),
        val=(x_val, y_val),
        test=(x_test, y_test),
        batch_size=32,
        seed=seed,
    )


def run(kind: str, seed: int) -> dict[str, Any]:
    seed_everything(seed, verbose=False)
    data = noisy_digits(seed)
    model = Classifier(MLP(64, [512, 512]), num_classes=10, lr=1e-3, optimizer="adam")
    history = MetricHistory()
    callbacks: list[Callback] = [history]
    extra = stopper(kind)
    if extra is not None:
        callbacks.append(extra)
    trainer = quiet_trainer(max_epochs=MAX_EPOCHS, callbacks=callbacks, num_sanity_val_steps=0)
    trainer.fit(model, data)
    test = trainer.test(model, data, verbose=False)[0]
    return {
        "epochs": trainer.current_epoch,
        "test_loss": test["test_loss"],
        "test_acc": test["test_acc"],
        "history": history.records,
        "best_epoch": getattr(extra, "best_epoch", None),
        "stopped_epoch": getattr(extra, "stopped_epoch", None),
    }


def draw(no_stop: dict[str, Any], ours: dict[str, Any]) -> None:
    figure = new_figure("early stopping benchmark", figsize=(7, 4))
    ax = figure.add_subplot()
    epochs, val = metric_series(no_stop["history"], "val_loss")
    ax.plot(epochs, val, color="0.7", label="val_loss without stopping")
    epochs, val = metric_series(ours["history"], "val_loss")
    ax.plot(epochs, val, color="C0", lw=2, label="val_loss with EarlyStopping")
    best, stop = ours["best_epoch"], ours["stopped_epoch"]
    ax.axvline(best, color="C2", ls="--", label=f"best epoch {best} (weights restored)")
    ax.axvline(stop, color="C3", ls=":", label=f"stopped at epoch {stop} (patience {PATIENCE})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title("Digits, 30% of training labels wrong, MLP 512-512: overfitting")
    ax.legend(fontsize=8)
    FIGURE.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURE / "early_stopping_digits.png", dpi=110, bbox_inches="tight")


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results = {(kind, seed): run(kind, seed) for seed in SEEDS for kind in KINDS}
    rows = []
    for kind in KINDS:
        runs = [results[(kind, seed)] for seed in SEEDS]
        rows.append(
            [
                kind,
                f"{np.mean([r['epochs'] for r in runs]):.0f}",
                f"{np.mean([r['test_loss'] for r in runs]):.3f}",
                f"{np.mean([r['test_acc'] for r in runs]):.4f}",
                f"{np.min([r['test_acc'] for r in runs]):.4f}",
            ]
        )
    draw(results[("no stopping", 0)], results[("ours, restore_best_weights", 0)])
    notes = f"""
Digits with train/val/test = 50/20/30% and {NOISE:.0%} of the training labels replaced at
random (validation and test labels clean), MLP 64-512-512-10, Adam 1e-3, batch 32, no
dropout, at most {MAX_EPOCHS} epochs; every stopper monitors val_loss
with patience {PATIENCE}. Means over seeds {list(SEEDS)}; "epochs" is the number of epochs
trained. Test figures are for the model `fit` hands back (for restore_best_weights: the
weights of the best validation epoch).
"""
    publish(
        "early_stopping",
        "Early stopping on an overfitting model",
        ["run", "epochs", "test loss (mean)", "test acc (mean)", "test acc (min)"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
