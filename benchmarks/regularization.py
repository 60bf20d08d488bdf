"""Regularization recipes on small data, initialisation of deep plain nets, monitor overhead.

1. Overfitting setting: digits with 20 labelled images per class (200 training images),
   a wide MLP (64 -> 512 -> 512 -> 10), AdamW (lr 1e-3, no decay unless said), 40 epochs,
   test accuracy of the last epoch on the full test split (270 images), 3 seeds:
   nothing, dropout 0.3, L2 penalty (`WeightPenalty`), decoupled weight decay (AdamW),
   L1 penalty, and dropout + L2 penalty.
2. Initialisation: a plain 20-layer MLP (width 64, no normalisation, no residuals) with
   tanh and with ReLU on all the digits' training split, SGD with momentum (lr 0.01), 8
   epochs: torch's default init, Xavier (tanh) / He (ReLU), and LSUV (`WeightInit`).
   Epochs until validation accuracy reaches 0.8, and the final test accuracy, 3 seeds.
3. ActivationMonitor overhead at its defaults (every 50 steps): the wide MLP, batch 32,
   fits of 200 steps with and without it, interleaved, 2 rounds; median step time.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/regularization.py``.
"""

import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, quiet_trainer

from lightning_recipes.activations import ActivationMonitor
from lightning_recipes.data import DigitsDataModule
from lightning_recipes.initialization import WeightInit
from lightning_recipes.modules import Classifier
from lightning_recipes.regularization import WeightPenalty

SEEDS = (0, 1, 2)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")


class Backbone(nn.Sequential):
    def __init__(self, *layers: nn.Module, out_features: int) -> None:
        super().__init__(*layers)
        self.out_features = out_features


def small_digits(per_class: int, seed: int) -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=32, seed=seed)
    dm.setup("fit")
    targets = dm.train_dataset.targets.numpy()  # type: ignore[union-attr]
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [rng.choice(np.flatnonzero(targets == c), per_class, replace=False) for c in range(10)]
    )
    dm.train_dataset = dm.train_dataset.subset(np.sort(keep))  # type: ignore[union-attr]
    return dm


def wide(dropout: float) -> Backbone:
    layers: list[nn.Module] = []
    width = 64
    for _ in range(2):
        layers += [nn.Linear(width, 512), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = 512
    return Backbone(*layers, out_features=512)


def test_acc(model: LightningModule, trainer: Trainer, dm: DigitsDataModule) -> float:
    (result,) = trainer.test(model, datamodule=dm, verbose=False)
    return float(result["test_acc"])


def part1() -> list[list[Any]]:
    configs: dict[str, tuple[float, float, list[Any]]] = {
        "nothing": (0.0, 0.0, []),
        "dropout 0.3": (0.3, 0.0, []),
        "L2 penalty 1e-3 (WeightPenalty)": (0.0, 0.0, [lambda: WeightPenalty(l2=1e-3)]),
        "decoupled weight decay 0.1 (AdamW)": (0.0, 0.1, []),
        "L1 penalty 1e-4 (WeightPenalty)": (0.0, 0.0, [lambda: WeightPenalty(l1=1e-4)]),
        "dropout 0.3 + L2 penalty 1e-3": (0.3, 0.0, [lambda: WeightPenalty(l2=1e-3)]),
    }
    rows = []
    for name, (dropout, decay, makers) in configs.items():
        accs = []
        for seed in SEEDS:
            seed_everything(seed)
            dm = small_digits(20, seed)
            model = Classifier(wide(dropout), 10, lr=1e-3, weight_decay=decay)
            trainer = quiet_trainer(
                max_epochs=40, limit_val_batches=0, callbacks=[m() for m in makers]
            )
            trainer.fit(model, datamodule=dm)
            accs.append(test_acc(model, trainer, dm))
        rows.append([name, f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}"])
        print(rows[-1], flush=True)
    return rows


class FirstEpochAt(Callback):
    def __init__(self, target: float) -> None:
        self.target, self.epoch = target, None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        acc = trainer.callback_metrics.get("val_acc")
        if self.epoch is None and acc is not None and float(acc) >= self.target:
            self.epoch = trainer.current_epoch + 1


def deep(activation: str) -> Backbone:
    act = nn.Tanh if activation == "tanh" else nn.ReLU
    layers: list[nn.Module] = []
    width = 64
    for _ in range(20):
        layers += [nn.Linear(width, 64), act()]
        width = 64
    return Backbone(*layers, out_features=64)


def part2() -> list[list[Any]]:
    rows = []
    for activation in ("tanh", "relu"):
        named = "xavier_normal" if activation == "tanh" else "kaiming_normal"
        inits: dict[str, Any] = {
            "torch default": None,
            f"{named.split('_')[0]} (WeightInit)": lambda n=named, a=activation: WeightInit(n, a),
            "LSUV (WeightInit)": lambda a=activation: WeightInit("lsuv", a),
        }
        for name, make in inits.items():
            epochs, accs = [], []
            for seed in SEEDS:
                seed_everything(seed)
                dm = DigitsDataModule(batch_size=32, seed=seed)
                model = Classifier(deep(activation), 10, lr=0.01, optimizer="sgd")
                reach = FirstEpochAt(0.8)
                callbacks = [reach] + ([make()] if make else [])
                trainer = quiet_trainer(max_epochs=8, callbacks=callbacks)
                trainer.fit(model, datamodule=dm)
                epochs.append(reach.epoch)
                accs.append(test_acc(model, trainer, dm))
            reached = [e for e in epochs if e is not None]
            when = f"{statistics.mean(reached):.1f} ({len(reached)}/3 runs)" if reached else "never"
            rows.append(
                [
                    f"20 x {activation}",
                    name,
                    when,
                    f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}",
                ]
            )
            print(rows[-1], flush=True)
    return rows


class StepTimer(Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, *args: Any) -> None:
        self.starts.append(time.perf_counter())


def part3() -> list[list[Any]]:
    times: dict[str, list[float]] = {"without": [], "with ActivationMonitor()": []}
    for round_ in range(2):
        for name in list(times)[:: 1 if round_ % 2 == 0 else -1]:
            seed_everything(0)
            dm = DigitsDataModule(batch_size=32)
            model = Classifier(wide(0.0), 10)
            timer = StepTimer()
            callbacks: list[Callback] = [timer]
            if name != "without":
                callbacks.append(ActivationMonitor(plot=False))
            trainer = quiet_trainer(max_steps=200, callbacks=callbacks, limit_val_batches=0)
            trainer.fit(model, datamodule=dm)
            gaps = np.diff(timer.starts)[10:]  # skip warm-up
            times[name].append(float(np.median(gaps)))
    base = statistics.median(times["without"])
    return [
        [name, f"{1e3 * statistics.median(v):.3f}", f"{statistics.median(v) / base:.3f}x"]
        for name, v in times.items()
    ]


def main() -> None:
    torch.set_num_threads(1)  # 2 shared, busy cores: one thread is faster than two
    started = time.time()
    rows1 = part1()
    rows2 = part2()
    rows3 = part3()
    rows = [[n, a] for n, a in rows1]
    publish(
        "regularization",
        "Regularization on 20 images per class, initialisation of deep plain nets",
        ["small data (20/class): technique", "test accuracy (3 seeds)"],
        rows,
        notes=_notes(rows2, rows3, time.time() - started),
    )


def _notes(rows2: list[list[Any]], rows3: list[list[Any]], seconds: float) -> str:
    from lightning_recipes._core.tables import markdown_table

    return (
        "\n## Initialisation of a 20-layer plain MLP (all digits, SGD lr 0.01, 8 epochs)\n\n"
        + markdown_table(["network", "init", "epochs to val acc 0.8", "final test accuracy"], rows2)
        + "\n## ActivationMonitor overhead at its defaults (median step time)\n\n"
        + markdown_table(["configuration", "ms / step", "ratio"], rows3)
        + f"\nTotal run time {seconds / 60:.1f} min.\n"
    )


if __name__ == "__main__":
    main()
