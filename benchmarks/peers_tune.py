"""`tune` against the Optuna loop a user writes by hand, on the MNIST-1D CNN.

The peer is the loop of Optuna's own Lightning example: an objective that samples the
parameters, builds the ``Classifier`` (``Mnist1dCNN`` backbone), the ``Mnist1dDataModule``
and a ``Trainer`` with optuna-integration's ``PyTorchLightningPruningCallback``, fits, and
returns the last ``val_loss``. ``tune`` runs the same search from a config dict: the same
model, data, Trainer settings and seed, the same space (the same parameter names, asked in
the same order), the same sampler (TPE, multivariate, grouped, constant liar, ``seed``), the
same pruner (median, 2 startup trials, 1 warm-up epoch) and 12 trials.

Variants, interleaved in one process with their order rotated each repetition:

* ``tune``: ``tune(...)`` as a user calls it (SQLite storage, ``study.md``, ``best.yaml``
  and the PNG figures);
* ``tune, no figures``: ``tune(..., figures=False)`` (``study.md`` and ``best.yaml`` only);
* ``tune, memory, no figures``: also ``storage="memory"``, the study in this process's
  memory as in the hand loop (no SQLite file: nothing to resume or share);
* ``plain``: the hand loop, in-memory storage (what Optuna's example does);
* ``plain, SQLite``: the hand loop on an SQLite file like ``tune``'s.

Two workloads: ``short`` (trials of well under a second: 5 batches of 100 per epoch, 3
epochs) and ``long`` (trials of about 10 s on this machine: the full 3,600 training signals,
60 epochs, when not pruned). Each study's wall time is the whole call (study creation,
trials, report).
Before the timed repetitions each variant runs once untimed, so imports (matplotlib,
Optuna's plotting) are paid outside the timing, as in a session running several studies.

The long workload runs ``tune`` and ``plain`` only (a study takes minutes).

Run (about 20 minutes on 2 loaded CPU cores):
``nice -n 10 .venv/bin/python benchmarks/peers_tune.py``; smoke run: ``--quick``.
Needs optuna-integration (the ``bench`` extra, benchmark only).
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

import optuna
import torch
from lightning.pytorch import Trainer, seed_everything
from optuna_integration import PyTorchLightningPruningCallback

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import publish, publish_peers
from _peers import paired, peer_row, ratio_text

from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.modules import Classifier, Mnist1dCNN
from lightning_recipes.tuning import tune

TRIALS = 12
SEED = 0  # seed_everything of every trial (the config's), as in examples/configs/mnist1d.yaml
LR = "model.init_args.lr"
CHANNELS = "model.init_args.backbone.init_args.channels"
OPTIMIZER = "model.init_args.optimizer"
SPACE: dict[str, Any] = {
    LR: {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
    CHANNELS: {"type": "int", "low": 8, "high": 32},
    OPTIMIZER: {"type": "categorical", "choices": ["adam", "sgd"]},
}
WORKLOADS: dict[str, dict[str, Any]] = {
    "short": {"max_epochs": 3, "limit_train_batches": 5, "limit_val_batches": 2},
    "long": {"max_epochs": 60, "limit_train_batches": 1.0, "limit_val_batches": 1.0},
}
VARIANTS = ("tune", "tune, no figures", "tune, memory, no figures", "plain", "plain, SQLite")
LONG_VARIANTS = ("tune", "plain")  # a long study takes minutes: the two that matter
RAW: dict[str, tuple[dict[str, list[float]], dict[str, list[Any]]]] = {}  # per workload


def trainer_args(workload: str) -> dict[str, Any]:
    """The Trainer arguments of every trial of ``workload`` (both loops)."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **WORKLOADS[workload],
    }


def config(workload: str) -> dict[str, Any]:
    """The LightningCLI config ``tune`` searches over."""
    return {
        "seed_everything": SEED,
        "trainer": trainer_args(workload),
        "model": {
            "class_path": "lightning_recipes.modules.Classifier",
            "init_args": {
                "num_classes": 10,
                "lr": 0.01,
                "optimizer": "adam",
                "backbone": {
                    "class_path": "lightning_recipes.modules.Mnist1dCNN",
                    "init_args": {"channels": 25},
                },
            },
        },
        "data": {
            "class_path": "lightning_recipes.data.Mnist1dDataModule",
            "init_args": {"batch_size": 100, "layout": "signal", "val_fraction": 0.1},
        },
    }


def sampler(seed: int) -> Any:
    """The sampler ``tune(sampler="tpe", seed=seed)`` builds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True
        )


def pruner() -> Any:
    """The pruner ``tune(pruner="median")`` builds."""
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def plain_study(workload: str, seed: int, out: Path, sqlite: bool) -> Any:
    """The hand-written loop: sample, build, fit with the pruning callback, return val_loss."""

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float(LR, 1e-3, 5e-2, log=True)
        channels = trial.suggest_int(CHANNELS, 8, 32)
        optimizer = trial.suggest_categorical(OPTIMIZER, ["adam", "sgd"])
        seed_everything(SEED, verbose=False)
        model = Classifier(
            Mnist1dCNN(channels=channels), num_classes=10, lr=lr, optimizer=optimizer
        )
        data = Mnist1dDataModule(batch_size=100, layout="signal", val_fraction=0.1)
        callback = PyTorchLightningPruningCallback(trial, monitor="val_loss")
        trainer = Trainer(**trainer_args(workload), callbacks=[callback])
        trainer.fit(model, datamodule=data)
        return float(trainer.callback_metrics["val_loss"])

    storage = f"sqlite:///{out / 'plain.db'}" if sqlite else None
    study = optuna.create_study(
        storage=storage, sampler=sampler(seed), pruner=pruner(), direction="minimize"
    )
    study.optimize(objective, n_trials=TRIALS)
    return study


def tune_study(workload: str, seed: int, out: Path, figures: bool, memory: bool) -> Any:
    """The same search with `tune`."""
    return tune(
        config(workload),
        SPACE,
        n_trials=TRIALS,
        sampler="tpe",
        pruner="median",
        seed=seed,
        monitor="val_loss",
        mode="min",
        value="last",  # the hand loop returns the last epoch's value
        out_dir=out,
        study_name="tune",
        progress=False,
        figures=figures,
        storage="memory" if memory else None,
    )


def run(variant: str, workload: str, seed: int) -> tuple[float, Any]:
    """One study of ``variant`` in a fresh folder: (wall seconds, study)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        if variant.startswith("tune"):
            study = tune_study(
                workload, seed, out, figures=variant == "tune", memory="memory" in variant
            )
        else:
            study = plain_study(workload, seed, out, sqlite=variant.endswith("SQLite"))
        seconds = time.perf_counter() - started
        trials = [(t.state.name, t.value, dict(t.params)) for t in study.trials]
        complete = [t.duration.total_seconds() for t in study.trials if t.state.name == "COMPLETE"]
        return seconds, (trials, study.best_trial.number, statistics.mean(complete))


def mean_std(values: list[float], digits: int = 2) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def same_trials(a: Any, b: Any) -> tuple[bool, float]:
    """Whether two studies ran the same trials (params, states, best), and the largest |dv|."""
    (ta, best_a, _), (tb, best_b, _) = a, b
    same = best_a == best_b and len(ta) == len(tb)
    gap = 0.0
    for (state_a, value_a, params_a), (state_b, value_b, params_b) in zip(ta, tb, strict=False):
        same = same and state_a == state_b and params_a == params_b
        if value_a is not None and value_b is not None:
            gap = max(gap, abs(value_a - value_b))
        elif value_a != value_b:
            same = False
    return same, gap


def compare_tune(workload: str, reps: int) -> tuple[list[list[Any]], list[str]]:
    """Rows (variant, wall, ratio to plain, overhead per trial) and notes for a workload."""
    variants = VARIANTS if workload == "short" else LONG_VARIANTS
    for variant in VARIANTS:  # untimed: imports and first-use costs (short trials)
        run(variant, "short", seed=100)
    walls: dict[str, list[float]] = {v: [] for v in variants}
    studies: dict[str, list[Any]] = {v: [] for v in variants}
    for rep in range(reps):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for variant in order:
            seconds, study = run(variant, workload, seed=rep)
            walls[variant].append(seconds)
            studies[variant].append(study)
            print(f"{workload} rep {rep} {variant}: {seconds:.2f} s", flush=True)
    rows = []
    for variant in variants:
        ratio = [w / p for w, p in zip(walls[variant], walls["plain"], strict=True)]
        extra = [(w - p) / TRIALS for w, p in zip(walls[variant], walls["plain"], strict=True)]
        rows.append(
            [workload, variant, mean_std(walls[variant]), mean_std(ratio, 3), mean_std(extra, 3)]
        )
    notes = []
    for variant in [v for v in variants if v != "plain"]:
        checks = [
            same_trials(s, p) for s, p in zip(studies[variant], studies["plain"], strict=True)
        ]
        agree = sum(ok for ok, _ in checks)
        gap = max(g for _, g in checks)
        notes.append(
            f"{workload}, `{variant}` vs `plain`: same parameters, states and best trial in "
            f"{agree} of {reps} studies; largest difference of a trial's value {gap:.2g}"
        )
    pruned = [sum(s == "PRUNED" for s, _, _ in t) for t, _, _ in studies["plain"]]
    notes.append(f"{workload}: pruned trials per study (plain): {pruned}")
    seconds = [f"{s:.2f}" for _, _, s in studies["plain"]]
    notes.append(f"{workload}: mean seconds of a complete trial, per study (plain): {seconds}")
    RAW[workload] = (walls, studies)
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short workload, 1 repetition")
    parser.add_argument("--reps", type=int, default=5, help="repetitions, short workload")
    parser.add_argument("--long-reps", type=int, default=3, help="repetitions, long workload")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    reps = 1 if args.quick else args.reps
    workloads = ["short"] if args.quick else args.workloads
    rows: list[list[Any]] = []
    notes: list[str] = []
    for workload in workloads:
        got, said = compare_tune(workload, reps if workload == "short" else args.long_reps)
        rows += got
        notes += said
    text = "\n".join(f"- {n}" for n in notes)
    name = "peers_tune" if workloads == list(WORKLOADS) else "_".join(["peers_tune", *workloads])
    publish(
        name,
        "`tune` vs a plain Optuna loop with optuna-integration's pruning callback",
        ["workload", "variant", "wall s per study", "ratio to plain", "extra s per trial"],
        rows,
        text,
    )
    publish_summary(name, workloads)


def publish_summary(name: str, workloads: list[str]) -> None:
    """`publish_peers` rows (per study) and the findings section appended to the results."""
    comparisons = {
        "short": (
            ("tune (defaults: SQLite, figures)", "tune", "plain"),
            ('tune(storage="memory", figures=False)', "tune, memory, no figures", "plain"),
            ("tune(figures=False)", "tune, no figures", "plain, SQLite"),
        ),
        "long": (("tune (defaults: SQLite, figures)", "tune", "plain"),),
    }
    targets = {"short": 1.2, "long": 1.02}
    rows, said = [], []
    for workload in workloads:
        walls, studies = RAW[workload]
        for label, ours, peer in comparisons.get(workload, ()):
            if ours not in walls or peer not in walls:
                continue
            best = {
                v: [trials[number][1] for trials, number, _ in studies[v]] for v in (ours, peer)
            }
            ratio = [a / b for a, b in zip(walls[ours], walls[peer], strict=True)]
            same = sum(
                same_trials(a, b)[0] for a, b in zip(studies[ours], studies[peer], strict=True)
            )
            seconds = statistics.mean(s for _, _, s in studies["plain"])
            rows.append(
                peer_row(
                    f"{label}, {TRIALS} trials of ~{seconds:.2g} s",
                    "plain Optuna loop + PyTorchLightningPruningCallback"
                    + (", SQLite" if "SQLite" in peer else ", in memory"),
                    "best val_loss of the study",
                    best[ours],
                    best[peer],
                    higher_is_better=False,
                    time_ratio=ratio,
                    note=f"same trials in {same} of {len(ratio)} studies",
                )
            )
            target = ""
            if peer == "plain":  # the targets are against the in-memory loop
                met = statistics.mean(ratio) <= targets[workload]
                target = (
                    f" (target at most {targets[workload]:g}x: "
                    f"{'met' if met else '**not met**'} on the mean)"
                )
            said.append(
                f"- **{workload} trials (~{seconds:.2g} s), {label} against the plain loop "
                f"({'on SQLite' if 'SQLite' in peer else 'in memory'})**: wall time "
                f"{ratio_text(ratio)}{target}; same trials in {same} of {len(ratio)} studies; "
                f"best value {paired(best[ours], best[peer], False)}."
            )
    publish_peers(
        name,
        rows,
        command="nice -n 10 .venv/bin/python benchmarks/peers_tune.py --workloads "
        + " ".join(workloads)
        + "".join(
            f" --{'reps' if w == 'short' else 'long-reps'} {len(RAW[w][0]['plain'])}"
            for w in workloads
        ),
    )
    path = Path(__file__).with_name("results") / f"{name}.md"
    path.write_text(
        path.read_text()
        + "\n## What it says\n\nPer study, the variants interleaved; level means within two "
        "standard errors of the mean difference.\n\n" + "\n".join(said) + "\n"
    )


if __name__ == "__main__":
    main()
