"""How good are LR-finder suggestions? Measured against a ground-truth grid of real trainings.

For three tasks (digits MLP, make_classification MLP, digits 1x8x8 small CNN) and two
optimizers (Adam; SGD with momentum 0.9), every learning rate of a 13-point log grid from
1e-5 to 1 is trained for a fixed number of epochs with 2 seeds: the grid gives the best
reachable validation accuracy. Then, per seed, our range test (`find_lr`, every rule) and
Lightning's own `Tuner.lr_find` (its default suggestion) are run on the same fresh model,
and a model is trained with each suggested rate. A suggestion is "good" when its mean
validation accuracy is within 1 percentage point of the grid's best.

Run: ``.venv/bin/python benchmarks/lr_finder.py`` (about 15 minutes on 2 CPU cores;
``--quick`` runs one setting to check the script).
"""

import argparse
import logging
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_recipes.lr import DEFAULT_SUGGESTION

GRID = [float(v) for v in np.logspace(-5, 0, 13)]
SEEDS = (0, 1)
EPOCHS = 10
RULES = ("valley", "steep", "minimum", "slide")
TOLERANCE = 0.01  # "within 1 percentage point"


@dataclass(frozen=True)
class Setting:
    task: str
    optimizer: str

    @property
    def label(self) -> str:
        return f"{self.task} / {self.optimizer}"


TASKS = ("digits MLP", "make_classification MLP", "digits CNN")
OPTIMIZERS = ("Adam", "SGD m=0.9")


def _quiet() -> None:
    import torch

    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _data(task: str, seed: int) -> Any:
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    from lightning_recipes.data import ArrayDataModule, DigitsDataModule

    if task == "digits MLP":
        return DigitsDataModule(batch_size=64, seed=seed)
    if task == "digits CNN":
        return DigitsDataModule(batch_size=64, layout="image", seed=seed)
    x, y = make_classification(
        n_samples=4000, n_features=40, n_informative=20, n_classes=4, random_state=0
    )
    x = StandardScaler().fit_transform(x).astype(np.float32)
    return ArrayDataModule(train=(x, y), val_fraction=0.2, batch_size=64, seed=seed)


def _model(setting: Setting, lr: float) -> Any:
    import torch

    from lightning_recipes.modules import MLP, Classifier, SmallCNN

    class BenchClassifier(Classifier):
        """Plain Adam, or SGD with (non-Nesterov) momentum 0.9."""

        def configure_optimizers(self) -> Any:
            if setting.optimizer == "Adam":
                return torch.optim.Adam(self.parameters(), lr=self.lr)
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)

    if setting.task == "digits CNN":
        backbone = SmallCNN()
        classes = 10
    elif setting.task == "digits MLP":
        backbone, classes = MLP(64, [64]), 10
    else:
        backbone, classes = MLP(40, [64]), 4
    return BenchClassifier(backbone, num_classes=classes, lr=lr)


def _trainer(**kwargs: Any) -> Any:
    from _common import quiet_trainer

    return quiet_trainer(max_epochs=EPOCHS, num_sanity_val_steps=0, **kwargs)


def train(setting: Setting, lr: float, seed: int) -> float:
    """Validation accuracy after EPOCHS epochs at a fixed learning rate."""
    _quiet()
    from lightning.pytorch import seed_everything

    seed_everything(seed, verbose=False)
    model = _model(setting, lr)
    trainer = _trainer()
    trainer.fit(model, _data(setting.task, seed))
    value = float(trainer.callback_metrics["val_acc"])
    return value if np.isfinite(value) else 0.0


def suggest(setting: Setting, seed: int) -> dict[str, float | None]:
    """Every rule of our finder, and Lightning's lr_find, on the same fresh model."""
    _quiet()
    from lightning.pytorch import seed_everything
    from lightning.pytorch.tuner import Tuner

    from lightning_recipes.lr import find_lr

    seed_everything(seed, verbose=False)
    ours = find_lr(
        _trainer(), _model(setting, 1e-3), _data(setting.task, seed), update_lr=False, plot=False
    )
    picks: dict[str, float | None] = {rule: ours.suggestions[rule] for rule in RULES}
    seed_everything(seed, verbose=False)
    theirs = Tuner(_trainer()).lr_find(
        _model(setting, 1e-3), datamodule=_data(setting.task, seed), update_attr=False
    )
    picks["lightning lr_find"] = theirs.suggestion() if theirs is not None else None
    return picks


def _run(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[Any]:
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(fn, *args) for fn, args in jobs]
        return [future.result() for future in futures]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one setting, one seed")
    args = parser.parse_args()
    settings = [Setting(t, o) for t in TASKS for o in OPTIMIZERS]
    seeds = SEEDS
    if args.quick:
        settings, seeds = settings[:1], SEEDS[:1]

    grid_jobs = [(train, (s, lr, seed)) for s in settings for lr in GRID for seed in seeds]
    suggest_jobs = [(suggest, (s, seed)) for s in settings for seed in seeds]
    outcomes = _run(grid_jobs + suggest_jobs)
    grid_acc = dict(zip([a for _, a in grid_jobs], outcomes[: len(grid_jobs)], strict=True))
    picks = dict(zip([a for _, a in suggest_jobs], outcomes[len(grid_jobs) :], strict=True))

    names = [*RULES, "lightning lr_find"]
    pick_jobs = [
        (train, (s, picks[(s, seed)][name], seed))
        for s in settings
        for seed in seeds
        for name in names
        if picks[(s, seed)][name] is not None
    ]
    pick_acc = dict(zip([a for _, a in pick_jobs], _run(pick_jobs), strict=True))

    headers = ["setting", "grid-best LR", "grid-best acc", *names]
    rows: list[list[Any]] = []
    good = dict.fromkeys(names, 0)
    gaps: dict[str, list[float]] = {name: [] for name in names}
    for s in settings:
        per_lr = {lr: float(np.mean([grid_acc[(s, lr, seed)] for seed in seeds])) for lr in GRID}
        best_lr = max(per_lr, key=per_lr.__getitem__)
        best = per_lr[best_lr]
        row: list[Any] = [s.label, f"{best_lr:.1e}", f"{best:.3f}"]
        for name in names:
            lrs = [picks[(s, seed)][name] for seed in seeds]
            if any(lr is None for lr in lrs):
                row.append("no suggestion")
                gaps[name].append(best)
                continue
            acc = float(
                np.mean([pick_acc[(s, lr, seed)] for lr, seed in zip(lrs, seeds, strict=True)])
            )
            gaps[name].append(best - acc)
            ok = best - acc <= TOLERANCE
            good[name] += ok
            spread = "/".join(f"{lr:.1e}" for lr in lrs)
            row.append(f"{acc:.3f} ({spread}){' ✓' if ok else ''}")
        rows.append(row)
    rows.append(
        ["within 1 pp of grid-best", "", "", *(f"{good[n]} of {len(settings)}" for n in names)]
    )
    rows.append(
        ["mean gap to grid-best", "", "", *(f"{100 * np.mean(gaps[n]):.1f} pp" for n in names)]
    )
    rows.append(["worst gap", "", "", *(f"{100 * np.max(gaps[n]):.1f} pp" for n in names)])

    notes = f"""
Validation accuracy after {EPOCHS} epochs, mean over seeds {list(seeds)}; each cell: accuracy
(the suggested LR for each seed), ✓ = within 1 percentage point of the grid's best. Grid: 13
learning rates log-spaced from 1e-5 to 1, each trained with every seed. Our rules come from
one `find_lr` run per seed (defaults: 100 steps from 1e-6 to 10, exponential, divergence
stop at 4x); Lightning's column is `Tuner(trainer).lr_find(...).suggestion()` at its
defaults (100 steps from 1e-8 to 1) on the same fresh model. Models: MLP 64 (or 40) -> 64
-> classes, SmallCNN (16, 32 channels, batch norm); batch 64; Adam, or SGD with momentum
0.9; no schedule.
"""
    ranked = sorted(RULES, key=lambda n: (-good[n], float(np.mean(gaps[n]))))
    best_rule = ranked[0]
    notes += (
        f"\nBest rule in this run: `{best_rule}` ({good[best_rule]} of {len(settings)} "
        f"within 1 pp, mean gap {100 * np.mean(gaps[best_rule]):.1f} pp). LRFinder's default is "
        f"`{DEFAULT_SUGGESTION}`.\n"
    )
    if not args.quick:
        from _common import publish

        publish("lr_finder", "LR finder suggestions vs ground truth", headers, rows, notes)
    else:
        from lightning_recipes._core.tables import format_table

        print(format_table(headers, rows))


if __name__ == "__main__":
    main()
