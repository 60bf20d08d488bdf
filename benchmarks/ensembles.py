"""Ensembles and weight averaging: test accuracy and NLL at equal training epochs.

On the digits (64 pixels, 10 classes) and on breast_cancer (30 features, 2 classes), an
MLP with BatchNorm trained with SGD (momentum 0.9, nesterov, weight decay 5e-4), batch 32,
for E epochs, and for each seed:

- single model: cosine decay of the LR to 0 over the E epochs (the baseline);
- SWA (`WeightAverage("swa")`): cosine decay to a constant SWA rate over the first 75% of
  the epochs, then that constant rate, the weights averaged at the end of every epoch of
  the last 25%, BatchNorm statistics recomputed on the training data at the end; once
  more with ``update_bn=False`` to show what the recompute is for;
- EMA (`WeightAverage("ema")`): the single model's schedule, EMA of the weights after
  every step;
- snapshot ensemble (`SnapshotEnsemble` + `snapshot_schedule`): M cosine cycles of E/M
  epochs, the M snapshots' probabilities averaged (`EnsembleModule`); and its last
  snapshot alone;
- M independent models (`EnsembleModule` of M seeds): at equal cost (each E/M epochs with
  a cosine decay) and at M times the cost (each E epochs, the single model's recipe; the
  single model is one of them).

Test accuracy and negative log-likelihood (mean of -log p(true class) over the test
split) of the predicted probabilities, mean ± std over seeds, the paired change against
the single model, training epochs and wall time relative to the single model, forward
passes per prediction. Writes results/ensembles.md.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/ensembles.py [--quick]``.
"""

import argparse
import logging
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningDataModule, seed_everything
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, quiet_trainer

from lightning_recipes._core.tables import format_table
from lightning_recipes.averaging import WeightAverage
from lightning_recipes.data import DigitsDataModule, TabularDataModule
from lightning_recipes.ensembles import EnsembleModule, SnapshotEnsemble
from lightning_recipes.lr import snapshot_schedule
from lightning_recipes.modules import MLP, Classifier

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

SEEDS = (0, 1, 2)
M = 4  # snapshots / independent members
SWA_SHARE = 0.25  # last share of the epochs averaged by SWA
SWA_LR = 0.25  # the constant SWA rate, as a fraction of the peak rate
SNAPSHOT = f"snapshot ensemble, {M} cycles of E/{M}"
SHORT = f"{M} independent, E/{M} epochs each"
LONG = f"{M} independent, E epochs each ({M}x cost)"


@dataclass(frozen=True)
class Task:
    name: str
    epochs: int  # E
    lr: float  # peak LR
    hidden: tuple[int, ...]
    data: Callable[[int], LightningDataModule]
    features: int
    classes: int
    steps: int  # optimizer steps per epoch (batch 32), for the EMA decay and the notes
    ema_decay: float  # a horizon 1 / (1 - decay) of about 2.5 epochs of steps


FEW = 0.25  # of each digit class in the training split: about 31 images per class

TASKS = (
    Task(
        "digits",
        20,
        0.05,
        (128, 64),
        lambda seed: DigitsDataModule(batch_size=32, seed=seed),
        64,
        10,
        40,
        0.99,
    ),
    Task(
        "digits, 31 per class",
        40,
        0.05,
        (128, 64),
        lambda seed: DigitsDataModule(
            batch_size=32, seed=seed, imbalance=dict.fromkeys(range(10), FEW)
        ),
        64,
        10,
        10,
        0.96,
    ),
    Task(
        "breast_cancer",
        40,
        0.02,
        (64, 32),
        lambda seed: TabularDataModule("breast_cancer", batch_size=32, seed=seed),
        30,
        2,
        13,
        0.97,
    ),
)


class Net(Classifier):
    """A Classifier on an MLP with BatchNorm; SGD with the schedule of the method."""

    def __init__(self, task: Task, schedule: str, epochs: int) -> None:
        super().__init__(MLP(task.features, hidden=task.hidden, batch_norm=True), task.classes)
        self.peak_lr = task.lr
        self.schedule = schedule
        self.epochs = epochs

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(
            self.parameters(), lr=self.peak_lr, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
        per_epoch = int(self.trainer.estimated_stepping_batches) // self.epochs
        if self.schedule == "cyclic":
            schedule = snapshot_schedule(optimizer, self.epochs // M, steps_per_epoch=per_epoch)
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        total = per_epoch * self.epochs
        if self.schedule == "cosine":
            factor = cosine(total, 0.0)
        else:  # swa: anneal to the SWA rate before averaging starts, then keep it
            factor = cosine(per_epoch * swa_start(self.epochs), SWA_LR)
        scheduler = LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def cosine(steps: int, floor: float) -> Callable[[int], float]:
    """LR factor: cosine from 1 to ``floor`` over ``steps`` steps, then ``floor``."""
    return lambda step: floor + (1 - floor) * (1 + math.cos(math.pi * min(step, steps) / steps)) / 2


def swa_start(epochs: int) -> int:
    return round(epochs * (1 - SWA_SHARE))


def probabilities(model: nn.Module, data: LightningDataModule, ensemble: bool) -> Tensor:
    model.eval()
    with torch.no_grad():
        out = [model(x) for x, _ in data.test_dataloader()]
    probs = torch.cat(out)
    return probs if ensemble else torch.softmax(probs, dim=-1)


def scores(probs: Tensor, data: LightningDataModule) -> tuple[float, float]:
    """Test accuracy and mean negative log-likelihood of the true class."""
    targets = torch.cat([y for _, y in data.test_dataloader()])
    acc = float((probs.argmax(-1) == targets).float().mean())
    nll = float(-torch.log(probs[torch.arange(len(targets)), targets].clamp_min(1e-12)).mean())
    return acc, nll


def fit(
    task: Task, seed: int, schedule: str, epochs: int, callbacks: list[Callback], member: int = 0
) -> tuple[Net, LightningDataModule, float]:
    """Fit on the split of ``seed``; members > 0 get their own init and shuffle."""
    data = task.data(seed)
    data.setup("fit")  # the split of ``seed``, for every member
    data.seed = seed + 1000 * member  # type: ignore[attr-defined]  # the shuffle
    seed_everything(seed + 1000 * member, verbose=False)
    model = Net(task, schedule, epochs)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=callbacks, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return model, data, time.perf_counter() - start


Result = tuple[float, float, float]  # accuracy, NLL, training seconds


def run_seed(task: Task, seed: int) -> dict[str, Result]:
    """Every method on one seed (the data split, the init and the shuffle follow it)."""
    e = task.epochs
    out: dict[str, Result] = {}
    members, seconds = [], 0.0
    for k in range(M):  # member 0 is the single model
        model, data, took = fit(task, seed, "cosine", e, [], member=k)
        if k == 0:
            out["single model"] = (*scores(probabilities(model, data, False), data), took)
        members.append(model)
        seconds += took
    for name, kind, schedule, extra in (
        ("SWA", "swa", "swa", {}),
        ("SWA, update_bn=False", "swa", "swa", {"update_bn": False}),
        ("EMA", "ema", "cosine", {"decay": task.ema_decay}),
    ):
        start = swa_start(e) if kind == "swa" else 0
        average = WeightAverage(kind, start_epoch=start, **extra)  # type: ignore[arg-type]
        model, data, took = fit(task, seed, schedule, e, [average])
        out[name] = (*scores(probabilities(model, data, False), data), took)
    snap = SnapshotEnsemble(cycle_epochs=e // M)
    model, data, took = fit(task, seed, "cyclic", e, [snap])
    out[SNAPSHOT] = (
        *scores(probabilities(snap.ensemble(model), data, True), data),
        took,
    )
    out["last snapshot alone"] = (*scores(probabilities(model, data, False), data), took)
    short, short_seconds = [], 0.0
    for k in range(M):
        model, _, took = fit(task, seed, "cosine", e // M, [], member=k)
        short.append(model)
        short_seconds += took
    out[SHORT] = (
        *scores(probabilities(EnsembleModule(short), data, True), data),
        short_seconds,
    )
    out[LONG] = (
        *scores(probabilities(EnsembleModule(members), data, True), data),
        seconds,
    )
    return out


def cost(method: str) -> tuple[int, int]:
    """Training epochs relative to E, and forward passes per prediction."""
    if method == LONG:
        return M, M
    if method in (SNAPSHOT, SHORT):
        return 1, M
    return 1, 1


def fmt(values: list[float], digits: int = 3, signed: bool = False) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    sign = "+" if signed else ""
    return f"{statistics.mean(values):{sign}.{digits}f} ± {std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks, seeds = TASKS, SEEDS
    if args.quick:
        tasks = tuple(Task(**{**t.__dict__, "epochs": 8}) for t in TASKS)
        seeds = SEEDS[:1]
    began = time.perf_counter()
    headers = [
        "data",
        "method",
        "test accuracy",
        "test NLL",
        "Δ acc (pp)",
        "Δ NLL",
        "train epochs (x E)",
        "train time (x single)",
        "forward passes",
    ]
    rows: list[list[Any]] = []
    for task in tasks:
        fit(task, 0, "cosine", 1, [])  # warm-up, so that the first timed fit is not slower
        runs = []
        for seed in seeds:
            runs.append(run_seed(task, seed))
            print(task.name, seed, f"{time.perf_counter() - began:.0f}s", flush=True)
        for method in runs[0]:
            accs = [r[method][0] for r in runs]
            nlls = [r[method][1] for r in runs]
            d_acc = [100 * (r[method][0] - r["single model"][0]) for r in runs]
            d_nll = [r[method][1] - r["single model"][1] for r in runs]
            time_ratio = statistics.median(r[method][2] / r["single model"][2] for r in runs)
            epochs, passes = cost(method)
            rows.append(
                [
                    task.name,
                    method,
                    fmt(accs),
                    fmt(nlls),
                    fmt(d_acc, 1, signed=True),
                    fmt(d_nll, 3, signed=True),
                    epochs,
                    f"{time_ratio:.2f}",
                    passes,
                ]
            )
    minutes = (time.perf_counter() - began) / 60
    if args.quick:
        print(format_table(headers, rows))
        print(f"{minutes:.1f} min")
        return
    settings = "\n".join(
        f"- {t.name}: E = {t.epochs} epochs of {t.steps} steps, MLP "
        f"{'-'.join(str(w) for w in (t.features, *t.hidden, t.classes))}, peak LR {t.lr}, "
        f"EMA decay {t.ema_decay}, SWA from epoch {swa_start(t.epochs)}."
        for t in tasks
    )
    publish(
        "ensembles",
        "Ensembles and weight averaging at equal training epochs",
        headers,
        rows,
        f"""
Test accuracy and negative log-likelihood (NLL: mean of -log p(true class), lower is
better) on the test split (digits: 270 images; breast_cancer: 86 rows), mean ± std over
seeds {list(seeds)} (the seed draws the split, the init and the shuffle); Δ: mean ± std of
the paired change against the single model of the same seed (accuracy in percentage
points). "digits, 31 per class" keeps {FEW:.0%} of each class of the training split (315
images); validation and test splits are whole. M = {M}. Every run: an MLP with BatchNorm
after each hidden Linear, SGD momentum 0.9 (nesterov), weight decay 5e-4, batch 32, the
last epoch's weights tested, no early stopping.

{settings}

- single model: cosine decay of the LR to 0 over E epochs.
- SWA: cosine decay to {SWA_LR:g} x the peak over the first {1 - SWA_SHARE:.0%} of the
  epochs, then that constant rate; `WeightAverage("swa", start_epoch=...)` averages the
  weights at the end of each of the last {SWA_SHARE:.0%} of the epochs and recomputes
  the BatchNorm statistics of the average on the training data (`update_bn=True`, the
  default); the next row is the same run with `update_bn=False`.
- EMA: the single model's schedule, `WeightAverage("ema", decay=...)` from the first
  step, the decay chosen for an averaging horizon 1 / (1 - decay) of about 2.5 epochs.
- snapshot ensemble: `snapshot_schedule` with {M} cycles of E/{M} epochs (per-step cosine
  with restarts), `SnapshotEnsemble` keeps the {M} cycle ends, `EnsembleModule` averages
  their probabilities; "last snapshot alone" is the same run's final weights.
- independent: {M} models from {M} seeds (init and shuffle; the same split), their
  probabilities averaged by `EnsembleModule`; "E/{M} epochs each" costs what one model
  costs (each with a cosine decay over its E/{M} epochs), "E epochs each" costs {M} times
  as much (each is a single model; the single model of the seed is one of them).

"train epochs" is the training budget relative to E; "train time" the measured wall time
relative to the single model's fit (median over seeds; one torch thread, on a machine
shared with other jobs, so only differences of 20% or more mean anything); "forward
passes" what one prediction costs at inference. Total run time {minutes:.1f} min.
""",
    )


if __name__ == "__main__":
    main()
