"""Transfer learning with little data: does freezing and gradual unfreezing pay off?

A SmallCNN is pretrained on the digits 0-4 (bundled data). Then the digits 5-9 are learnt
from 10 or 30 labelled images per class, four ways, 3 seeds each: from scratch; full
fine-tuning of the pretrained network; frozen pretrained backbone + new head (Freezer,
never unfrozen); gradual unfreezing with discriminative rates (Freezer, one more group
every 5 epochs, lr_decay 0.5). Reported: test accuracy on all remaining 5-9 images.

Speed: one training epoch with the backbone frozen vs fully trainable, on a deeper model
(an 8-layer MLP of width 512 on the 64 digit pixels), timed side by side.

Run: ``.venv/bin/python benchmarks/transfer.py`` (about 3 minutes on 2 CPU cores).
"""

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch
from _common import publish, quiet_trainer
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from sklearn.datasets import load_digits

from lightning_recipes.data import ArrayDataModule
from lightning_recipes.finetuning import Freezer
from lightning_recipes.modules import MLP, Classifier, SmallCNN

SEEDS = (0, 1, 2)
SHOTS = (10, 30)
EPOCHS = 30
METHODS = ("from scratch", "full fine-tune", "frozen backbone + head", "gradual unfreeze")


def digits(classes: range) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    keep = np.isin(y, list(classes))
    images = (x[keep] / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return images, y[keep] - classes.start


def pretrain() -> dict[str, torch.Tensor]:
    seed_everything(0, verbose=False)
    x, y = digits(range(0, 5))
    model = Classifier(SmallCNN(), num_classes=5, lr=3e-3)
    quiet_trainer(max_epochs=15, num_sanity_val_steps=0).fit(
        model, ArrayDataModule(train=(x, y), val_fraction=0.1, batch_size=64)
    )
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


def few_shot(shots: int, seed: int) -> ArrayDataModule:
    x, y = digits(range(5, 10))
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False)
                            for c in range(5)])  # fmt: skip
    test = np.setdiff1d(np.arange(len(y)), train)
    return ArrayDataModule(
        train=(x[train], y[train]), test=(x[test], y[test]), val_fraction=0.0, batch_size=16,
        seed=seed,
    )  # fmt: skip


def run(method: str, shots: int, seed: int, pretrained: dict[str, torch.Tensor]) -> float:
    seed_everything(seed, verbose=False)
    model = Classifier(SmallCNN(), num_classes=5, lr=3e-3)
    if method != "from scratch":
        model.backbone.load_state_dict(pretrained)
    callbacks: list[Callback] = []
    if method == "frozen backbone + head":
        callbacks.append(Freezer(unfreeze=None))
    elif method == "gradual unfreeze":
        callbacks.append(Freezer(unfreeze="gradual", every_n_epochs=5, lr_decay=0.5))
    data = few_shot(shots, seed)
    trainer = quiet_trainer(max_epochs=EPOCHS, callbacks=callbacks, num_sanity_val_steps=0)
    trainer.fit(model, data)
    return float(trainer.test(model, data, verbose=False)[0]["test_acc"])


class EpochTimer(Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def epoch_seconds(frozen: bool) -> float:
    seed_everything(0, verbose=False)
    x, y = load_digits(return_X_y=True)
    x = np.tile((x / 16.0).astype(np.float32), (4, 1))  # 7188 rows: a longer epoch
    y = np.tile(y, 4)
    model = Classifier(MLP(64, [512] * 8), num_classes=10)
    timer = EpochTimer()
    callbacks: list[Callback] = [timer] + ([Freezer(unfreeze=None)] if frozen else [])
    quiet_trainer(max_epochs=3, callbacks=callbacks, num_sanity_val_steps=0).fit(
        model, ArrayDataModule(train=(x, y), val_fraction=0.0, batch_size=64)
    )
    return float(np.median(timer.seconds[1:]))  # skip the first (warm-up) epoch


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    pretrained = pretrain()
    rows: list[list[Any]] = []
    for shots in SHOTS:
        for method in METHODS:
            accs = [run(method, shots, seed, pretrained) for seed in SEEDS]
            rows.append([f"{shots} per class", method, f"{np.mean(accs):.3f} ± {np.std(accs):.3f}"])
    # Speed: alternate frozen and full runs, three rounds, medians.
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(3):
        for frozen in (False, True):
            times[frozen].append(epoch_seconds(frozen))
    full, frozen_s = float(np.median(times[False])), float(np.median(times[True]))
    rows.append(["speed, MLP 8x512", "full fine-tune epoch", f"{full:.2f} s"])
    rows.append(
        ["speed, MLP 8x512", "frozen backbone epoch", f"{frozen_s:.2f} s ({frozen_s / full:.2f}x)"]
    )
    notes = f"""
SmallCNN (16, 32 channels, batch norm) pretrained 15 epochs on the digits 0-4; then digits
5-9 from {SHOTS} labelled images per class, {EPOCHS} epochs, batch 16, AdamW 3e-3 for the
head (the backbone's groups at 3e-3 x 0.5^k under gradual unfreezing), 3 seeds (the seed
picks the labelled images), test accuracy on every other 5-9 image (mean ± std). Speed:
median epoch time (7188 rows, batch 64) of an MLP with eight hidden layers of 512, with the
whole backbone frozen by Freezer vs trainable, three alternating rounds.
"""
    publish(
        "transfer",
        "Transfer learning from digits 0-4 to 5-9",
        ["data", "method", "test acc / time"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
