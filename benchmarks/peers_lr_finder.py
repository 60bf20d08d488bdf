"""`find_lr` / `LRFinder` beside Lightning's `Tuner(trainer).lr_find` on MNIST-1D.

The same fresh model, data and seed go through both range tests at their defaults (ours:
100 steps from 1e-6 to 10, rule ``minimum``; Lightning's: 100 steps from 1e-8 to 1, its
steepest-gradient suggestion), each applying its suggestion to the module the way a user
lets it (``find_lr(..., update_lr=True)``, ``lr_find(..., update_attr=True)``); then the
same Trainer fits the module for a fixed budget and the test accuracy is measured. Per
seed the two finders run in one process, their order rotated.

What is measured, per model and seed:

* the suggested learning rate and whether it was applied (ours keeps the rate and warns
  when its pick sits at an end of the sweep);
* test accuracy after the fixed-budget fit at the suggestion, beside a grid of fixed
  learning rates trained for the same budget (where the good range is);
* the range test's cost: wall and CPU time (``time.process_time``) of the finder call,
  ours / Lightning's per seed, and the steps each sweep ran before stopping;
* whether the finder leaves the run untouched: the module's weights bitwise equal before
  and after the test, and the fit after the test equal, weight for weight, to a fit from
  the same seed with the suggested rate typed in.

Models: the paper's CNN (``Classifier(Mnist1dCNN())``, signals ``(1, 40)``) and an MLP
(``Classifier(MLP(40, [100, 100]))``, flat signals); Adam, batch 100, 10 % of the 4,000
training signals for validation, the paper's 1,000 test signals.

Run (about 25 minutes on 2 loaded CPU cores):
``nice -n 10 .venv/bin/python benchmarks/peers_lr_finder.py``; smoke run: ``--quick``.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import seed_everything
from lightning.pytorch.tuner import Tuner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    accuracy_nll,
    identical,
    mean_std,
    publish,
    publish_peers,
    quiet_trainer,
    state_copy,
    test_log_probs,
)

from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.lr import DEFAULT_SUGGESTION, find_lr
from lightning_recipes.modules import MLP, Classifier, Mnist1dCNN

SEEDS = (0, 1, 2, 3, 4)
EPOCHS = 15  # the fixed budget of every fit: 15 epochs of 36 batches (540 Adam steps)
GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
FAR = 0.1  # a suggestion more than 10x from the grid's best rate is called off
START_LR = 1e-3  # the module's rate before a finder runs (Classifier's default)
FINDERS = ("ours", "lightning")
NAMES = {
    "ours": f"ours `find_lr` ({DEFAULT_SUGGESTION})",
    "lightning": "Lightning `Tuner.lr_find`",
}
MODELS = ("cnn", "mlp")
LABELS = {"cnn": "CNN (`Mnist1dCNN`)", "mlp": "MLP 40-100-100"}


def build(model: str, lr: float) -> Classifier:
    """A fresh module (call ``seed_everything`` first)."""
    backbone = Mnist1dCNN() if model == "cnn" else MLP(40, [100, 100])
    return Classifier(backbone, num_classes=10, lr=lr, optimizer="adam")


def data(model: str, seed: int) -> Mnist1dDataModule:
    """The paper's split, 10 % of training for validation, shuffled with ``seed``."""
    layout = "signal" if model == "cnn" else "flat"
    return Mnist1dDataModule(batch_size=100, layout=layout, seed=seed)


def test_accuracy(module: Classifier, dm: Mnist1dDataModule) -> float:
    """Accuracy on the 1,000 test signals."""
    dm.setup("test")
    acc, _ = accuracy_nll(*test_log_probs(module, dm))
    return acc


def fit(module: Classifier, dm: Mnist1dDataModule, trainer: Any = None) -> float:
    """The fixed-budget fit, then the test accuracy."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer or quiet_trainer(
            max_epochs=EPOCHS, num_sanity_val_steps=0, default_root_dir=tmp
        )
        trainer.fit(module, datamodule=dm)
    return test_accuracy(module, dm)


def run_finder(finder: str, model: str, seed: int, check: bool = True) -> dict[str, Any]:
    """One range test on a fresh module, then the fit at its suggestion, then the check fit.

    ``check=False`` runs the range test alone (the untimed warm-up).
    """
    seed_everything(seed, verbose=False)
    module, dm = build(model, START_LR), data(model, seed)
    before = state_copy(module)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = quiet_trainer(max_epochs=EPOCHS, num_sanity_val_steps=0, default_root_dir=tmp)
        wall, cpu = time.perf_counter(), time.process_time()
        if finder == "ours":
            result = find_lr(trainer, module, dm, plot=False)
            suggested, steps = result.chosen, len(result.lrs)
            note = result.not_applied
        else:
            found = Tuner(trainer).lr_find(module, datamodule=dm)
            suggested = found.suggestion() if found is not None else None
            steps = len(found.results["lr"]) if found is not None else 0
            note = None if suggested is not None else "no suggestion"
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        untouched = identical(before, state_copy(module))
        trained_lr = float(module.lr)
        if not check:
            return {}
        acc = fit(module, dm, trainer)
    after = state_copy(module)
    # The same run with the rate typed in: equal weights iff the test left nothing behind.
    seed_everything(seed, verbose=False)
    typed = build(model, trained_lr)
    typed_acc = fit(typed, data(model, seed))
    return {
        "suggested": suggested,
        "lr": trained_lr,
        "applied": trained_lr != START_LR,
        "steps": steps,
        "wall": wall,
        "cpu": cpu,
        "acc": acc,
        "untouched": untouched,
        "same_fit": identical(after, state_copy(typed)) and acc == typed_acc,
        "note": note,
    }


def run_grid(model: str, lr: float, seed: int) -> float:
    """Test accuracy of a fixed-rate fit."""
    seed_everything(seed, verbose=False)
    return fit(build(model, lr), data(model, seed))


def ratio(values: list[float]) -> str:
    """``mean ± std`` of per-seed time ratios."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}x"


def gap_words(gap: float) -> str:
    """A gap to the grid's best accuracy in words (points of accuracy)."""
    side = "below" if gap >= 0 else "above"
    return f"{100 * abs(gap):.1f} points {side} the grid's best"


def lr_cell(lrs: list[float]) -> str:
    """Geometric mean and range of per-seed learning rates."""
    geo = float(np.exp(np.mean(np.log(lrs))))
    return f"{geo:.2g} ({min(lrs):.2g}-{max(lrs):.2g})"


def compare(model: str, seeds: tuple[int, ...], grid: tuple[float, ...]) -> dict[str, Any]:
    """Every finder and grid point over ``seeds``, finders interleaved with rotated order."""
    for finder in FINDERS:  # untimed: first-call costs (imports, kernels) outside the timing
        run_finder(finder, model, seed=100, check=False)
    runs: dict[str, list[dict[str, Any]]] = {f: [] for f in FINDERS}
    for i, seed in enumerate(seeds):
        order = FINDERS[i % 2 :] + FINDERS[: i % 2]
        for finder in order:
            got = run_finder(finder, model, seed)
            runs[finder].append(got)
            print(
                f"{model} seed {seed} {finder}: lr {got['lr']:.3g} acc {got['acc']:.3f} "
                f"{got['wall']:.2f} s wall {got['cpu']:.2f} s CPU, {got['steps']} steps, "
                f"untouched {got['untouched']}, same fit {got['same_fit']}",
                flush=True,
            )
    accs = {lr: [run_grid(model, lr, seed) for seed in seeds] for lr in grid}
    for lr in grid:
        print(f"{model} grid {lr:g}: {mean_std(accs[lr])}", flush=True)
    return {"runs": runs, "grid": accs}


def section(
    model: str, got: dict[str, Any], seeds: tuple[int, ...]
) -> tuple[str, list[Any], dict[str, Any]]:
    """One model's markdown section, its summary row and its publish_peers row."""
    from lightning_recipes._core.tables import markdown_table

    runs, grid = got["runs"], got["grid"]
    ours, peer = runs["ours"], runs["lightning"]
    n = len(seeds)
    rows: list[list[Any]] = []
    for finder in FINDERS:
        r = runs[finder]
        rows.append(
            [
                NAMES[finder],
                lr_cell([x["lr"] for x in r]),
                f"{sum(x['applied'] for x in r)} of {n}",
                mean_std([x["acc"] for x in r]),
                f"{statistics.mean(x['steps'] for x in r):.0f}",
                f"{statistics.mean(x['wall'] for x in r):.2f}",
                f"{statistics.mean(x['cpu'] for x in r):.2f}",
                f"{sum(x['untouched'] for x in r)} of {n}",
                f"{sum(x['same_fit'] for x in r)} of {n}",
            ]
        )
    table = markdown_table(
        [
            "finder",
            "LR trained (geo. mean, range)",
            "suggestion applied",
            "test acc",
            "sweep steps",
            "wall s",
            "CPU s",
            "weights untouched",
            "fit = rate typed in",
        ],
        rows,
    )
    diff = [a["acc"] - b["acc"] for a, b in zip(ours, peer, strict=True)]
    wall = [a["wall"] / b["wall"] for a, b in zip(ours, peer, strict=True)]
    cpu = [a["cpu"] / b["cpu"] for a, b in zip(ours, peer, strict=True)]
    grid_means = {lr: statistics.mean(v) for lr, v in grid.items()}
    best_lr = max(grid_means, key=grid_means.__getitem__)
    good = [lr for lr, m in grid_means.items() if grid_means[best_lr] - m <= 0.01]
    grid_table = markdown_table(
        ["fixed LR", *(f"{lr:g}" for lr in grid)],
        [["test acc", *(mean_std(grid[lr]) for lr in grid)]],
    )
    ours_gap = grid_means[best_lr] - statistics.mean(x["acc"] for x in ours)
    peer_gap = grid_means[best_lr] - statistics.mean(x["acc"] for x in peer)
    from _common import paired_verdict

    verdict = paired_verdict([x["acc"] for x in ours], [x["acc"] for x in peer])
    words = {
        "level": "**level** (the paired difference is within two standard errors)",
        "ahead": "**ahead**",
        "behind": "**behind**",
    }[verdict]
    prose = [
        f"- Accuracy at the suggestion: ours {mean_std([x['acc'] for x in ours])}, "
        f"Lightning's {mean_std([x['acc'] for x in peer])}; paired difference "
        f"{mean_std(diff, sign=True)}: {words}.",
        f"- Against the grid: its best fixed rate is {best_lr:g} "
        f"({mean_std(grid[best_lr])}); rates within 1 point of it: "
        f"{', '.join(f'{lr:g}' for lr in good)}. Ours lands {gap_words(ours_gap)}, "
        f"Lightning's {gap_words(peer_gap)}.",
        f"- Cost of the range test, ours / Lightning's per seed: {ratio(wall)} wall, "
        f"{ratio(cpu)} CPU; sweeps of "
        f"{statistics.mean(x['steps'] for x in ours):.0f} and "
        f"{statistics.mean(x['steps'] for x in peer):.0f} steps on average (both stop when "
        "the smoothed loss passes 4x its minimum; ours sweeps a deep copy, Lightning saves "
        "and reloads a checkpoint).",
        f"- Untouched: weights bitwise equal after the test in "
        f"{sum(x['untouched'] for x in ours)} of {n} (ours) and "
        f"{sum(x['untouched'] for x in peer)} of {n} (Lightning) runs; the fit after the "
        f"test equals a fit with the rate typed in, weight for weight, in "
        f"{sum(x['same_fit'] for x in ours)} of {n} and {sum(x['same_fit'] for x in peer)} "
        f"of {n}.",
    ]
    for finder in FINDERS:
        r = runs[finder]
        near = sum(best_lr / 3 <= x["lr"] <= best_lr * 3 for x in r)
        far = [
            (seed, x)
            for seed, x in zip(seeds, r, strict=True)
            if not FAR <= x["lr"] / best_lr <= 1 / FAR
        ]
        line = (
            f"- {NAMES[finder]}: rate within a factor 3 of the grid's best in {near} of {n} "
            f"seeds; more than 10x off in {len(far)}"
        )
        if far:
            line += (
                " ("
                + "; ".join(
                    f"seed {seed}: {x['lr']:.2g}, accuracy {x['acc']:.3f}" for seed, x in far
                )
                + ")"
            )
        prose.append(line + ".")
    notes = [x["note"] for x in ours if x["note"]]
    if notes:
        prose.append(f"- Ours kept the start rate {START_LR:g} in {len(notes)} run(s): {notes[0]}")
    text = f"### {LABELS[model]}\n\n{table}\n{grid_table}\n" + "\n".join(prose) + "\n"
    row = {
        "recipe": f"LRFinder / find_lr ({DEFAULT_SUGGESTION}), MNIST-1D {model.upper()}",
        "peer": "Lightning Tuner.lr_find",
        "metric": f"test accuracy after {EPOCHS} epochs at the suggested LR",
        "higher_is_better": True,
        "ours": [x["acc"] for x in ours],
        "theirs": [x["acc"] for x in peer],
        "time_ratio": cpu,
        "wall_ratio": wall,
        "lr_ours": [x["lr"] for x in ours],
        "lr_theirs": [x["lr"] for x in peer],
        "grid": {f"{lr:g}": grid[lr] for lr in grid},
        "note": (
            "time_ratio: CPU time of the range test, ours / Lightning's; "
            f"LRs ours {lr_cell([x['lr'] for x in ours])}, "
            f"Lightning {lr_cell([x['lr'] for x in peer])}; grid best {best_lr:g}"
        ),
    }
    summary = [
        LABELS[model],
        lr_cell([x["lr"] for x in ours]),
        lr_cell([x["lr"] for x in peer]),
        mean_std([x["acc"] for x in ours]),
        mean_std([x["acc"] for x in peer]),
        f"{mean_std(diff, sign=True)} ({verdict})",
        f"{best_lr:g}: {mean_std(grid[best_lr])}",
        f"{ratio(wall)} / {ratio(cpu)}",
    ]
    return text, summary, row


SUMMARY = [
    "model",
    "ours: LR",
    "Lightning: LR",
    "ours: test acc",
    "Lightning: test acc",
    "ours - Lightning (paired)",
    "best fixed LR of the grid",
    "range test ours / Lightning (wall / CPU)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CNN, 1 seed, 2 grid points")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    seeds = SEEDS[:1] if args.quick else tuple(range(args.seeds))
    grid = (1e-3, 1e-2) if args.quick else GRID
    models = ["cnn"] if args.quick else args.models
    sections: list[str] = []
    rows: list[dict[str, Any]] = []
    summaries: list[list[Any]] = []
    for model in models:
        text, summary, row = section(model, compare(model, seeds, grid), seeds)
        print(text, flush=True)
        sections.append(text)
        summaries.append(summary)
        rows.append(row)
    header = (
        f"Same fresh module, data and seed through both range tests at their defaults (ours: "
        f"100 steps from 1e-6 to 10, rule `{DEFAULT_SUGGESTION}`; Lightning 2.6: 100 steps from "
        "1e-8 to 1, steepest gradient), each applying its suggestion as a user lets it; then "
        f"the same Trainer fits for {EPOCHS} epochs (Adam, batch 100, 3,600 training "
        "signals) and the 1,000 test signals are scored. "
        f"Seeds {list(seeds)}, the two finders interleaved in one process, order rotated per "
        "seed. The grid trains each fixed rate for the same budget. Times are the finder "
        "call alone (setup included), wall and CPU (`time.process_time`).\n"
    )
    if args.quick:
        return
    publish(
        "peers_lr_finder",
        "LR finder beside Lightning's `Tuner.lr_find` (MNIST-1D)",
        SUMMARY,
        summaries,
        header + "\n" + "\n".join(sections),
        command="nice -n 10 .venv/bin/python benchmarks/peers_lr_finder.py",
    )
    publish_peers(
        "peers_lr_finder",
        rows,
        command="nice -n 10 .venv/bin/python benchmarks/peers_lr_finder.py",
    )


if __name__ == "__main__":
    main()
