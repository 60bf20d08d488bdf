"""`tune` against the Optuna loop a user writes by hand, on the MNIST-1D CNN.

The peer is the loop of Optuna's own Lightning example: an objective that samples the
parameters, builds the ``Classifier`` (``Mnist1dCNN`` backbone), the ``Mnist1dDataModule``
and a ``Trainer`` with optuna-integration's ``PyTorchLightningPruningCallback``, fits, and
returns the last ``val_loss``. ``tune`` runs the same search from a config dict: the same
model, data, Trainer settings and seed, the same space (the same parameter names, asked in
the same order), the same sampler (TPE, multivariate, grouped, constant liar, ``seed``), the
same pruner (median, 2 startup trials, 1 warm-up epoch) and 12 trials.

Variants, interleaved in one process with their order rotated each repetition:

* ``tune``: ``tune(...)`` as a user calls it: its default storage (an Optuna journal file,
  ``study.journal``), ``study.md``, ``best.yaml``, and the PNG figures when the trials ran
  30 s or more (``figures="auto"``);
* ``tune, SQLite + figures``: the defaults before the journal (``storage=sqlite:///...``,
  ``figures=True``), to show what they cost;
* ``tune, memory``: ``storage="memory"``, the study in this process's memory as in the
  hand loop (nothing to resume or share);
* ``plain``: the hand loop, in-memory storage (what Optuna's example does);
* ``plain, SQLite``: the hand loop on an SQLite file like ``tune``'s.

Four workloads: ``short`` (trials of well under a second: 5 batches of 100 per epoch, 3
epochs), ``half`` (trials of about half a second: 30 batches per epoch, 3 epochs),
``long`` (trials of about 10 s on this machine: the full 3,600 training signals, 60 epochs,
when not pruned) and ``fixed``: the long workload's 60 epochs with two batches of training
and two of validation each, so that a study is mostly what `tune` adds per study,
per trial and per epoch (report, pruning check) and the plain loop's own costs: `tune`'s
extra seconds there, over the 12 x 10 s of long trials, bound its overhead on those
(the wall time of the long studies varies by +-20 % on a shared machine, ten times the 2 %
to be checked). Each study's wall and CPU time (``time.process_time``: far less disturbed
by other processes on a shared machine) cover the whole call (study creation, trials,
report).
Before the timed repetitions each variant runs once untimed, so imports (matplotlib,
Optuna's plotting) are paid outside the timing, as in a session running several studies.

The long workload runs ``tune`` and ``plain`` only (a study takes minutes); the fixed one
``tune``, ``tune, memory`` and ``plain``.

Run (about 30 minutes on 2 loaded CPU cores):
``nice -n 10 .venv/bin/python benchmarks/peers_tune.py``; smoke run: ``--quick``; the short
and fixed workloads only (a few minutes): ``--workloads short fixed``.
Needs optuna-integration (the ``bench`` extra, benchmark only).
"""

import argparse
import gc
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
    "half": {"max_epochs": 3, "limit_train_batches": 30, "limit_val_batches": 4},
    "long": {"max_epochs": 60, "limit_train_batches": 1.0, "limit_val_batches": 1.0},
    # Two batches, not one: LightningCLI (jsonargparse) reads `limit_train_batches: 1` as
    # 1.0, every batch, so `fit -c` and the hand loop would train different epochs.
    "fixed": {"max_epochs": 60, "limit_train_batches": 2, "limit_val_batches": 2},
}
LONG_TRIAL_S = 10.0  # "trials of 10 s": the long workload's complete trials (10.4-13.4 s)
VARIANTS = ("tune", "tune, SQLite + figures", "tune, memory", "plain", "plain, SQLite")
LONG_VARIANTS = ("tune", "plain")  # a long study takes minutes: the two that matter
FIXED_VARIANTS = ("tune", "tune, memory", "plain")
HALF_VARIANTS = ("tune", "tune, memory", "plain")


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


def tune_study(workload: str, seed: int, out: Path, variant: str) -> Any:
    """The same search with `tune` (``variant``: "tune", "tune, memory", "tune, SQLite...")."""
    settings: dict[str, Any] = {}  # "tune": the defaults
    if variant == "tune, memory":
        settings = {"storage": "memory"}
    elif variant == "tune, SQLite + figures":
        settings = {"storage": f"sqlite:///{out / 'tune.db'}", "figures": True}
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
        **settings,
    )


def run(variant: str, workload: str, seed: int) -> tuple[float, float, Any]:
    """One study of ``variant`` in a fresh folder: (wall seconds, CPU seconds, study)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # Each study starts from a collected heap: the cycles earlier studies left (Trainer
        # <-> callbacks) otherwise make Python's collector pause at random inside a study,
        # ~0.2 s on a 1 s study, whichever variant it lands in.
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        if variant.startswith("tune"):
            study = tune_study(workload, seed, out, variant)
        else:
            study = plain_study(workload, seed, out, sqlite=variant.endswith("SQLite"))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        trials = [(t.state.name, t.value, dict(t.params)) for t in study.trials]
        complete = [t.duration.total_seconds() for t in study.trials if t.state.name == "COMPLETE"]
        epochs = sum(len(t.intermediate_values) for t in study.trials)
        summary = (trials, study.best_trial.number, statistics.mean(complete), epochs)
        return seconds, cpu, summary


def mean_std(values: list[float], digits: int = 2) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def same_trials(a: Any, b: Any) -> tuple[bool, float]:
    """Whether two studies ran the same trials (params, states, best), and the largest |dv|."""
    (ta, best_a, *_), (tb, best_b, *_) = a, b
    same = best_a == best_b and len(ta) == len(tb)
    gap = 0.0
    for (state_a, value_a, params_a), (state_b, value_b, params_b) in zip(ta, tb, strict=False):
        same = same and state_a == state_b and params_a == params_b
        if value_a is not None and value_b is not None:
            gap = max(gap, abs(value_a - value_b))
        elif value_a != value_b:
            same = False
    return same, gap


def compare_tune(
    workload: str, reps: int
) -> tuple[list[list[Any]], list[str], dict[str, dict[str, list[Any]]]]:
    """Rows, notes and the raw measurements (variant -> wall, cpu, studies) for a workload."""
    variants = {
        "short": VARIANTS,
        "half": HALF_VARIANTS,
        "long": LONG_VARIANTS,
        "fixed": FIXED_VARIANTS,
    }[workload]
    for variant in VARIANTS:  # untimed: imports and first-use costs (short trials)
        run(variant, "short", seed=100)
    walls: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    studies: dict[str, list[Any]] = {v: [] for v in variants}
    for rep in range(reps):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for variant in order:
            seconds, cpu, study = run(variant, workload, seed=rep)
            walls[variant].append(seconds)
            cpus[variant].append(cpu)
            studies[variant].append(study)
            print(f"{workload} rep {rep} {variant}: {seconds:.2f} s, CPU {cpu:.2f} s", flush=True)
    rows = []
    for variant in variants:
        ratio = [w / p for w, p in zip(walls[variant], walls["plain"], strict=True)]
        cpu_ratio = [c / p for c, p in zip(cpus[variant], cpus["plain"], strict=True)]
        extra = [(c - p) / TRIALS for c, p in zip(cpus[variant], cpus["plain"], strict=True)]
        rows.append(
            [
                workload,
                variant,
                mean_std(walls[variant]),
                mean_std(ratio, 3),
                mean_std(cpus[variant]),
                mean_std(cpu_ratio, 3),
                mean_std(extra, 3),
            ]
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
    pruned = [sum(s == "PRUNED" for s, _, _ in t) for t, *_ in studies["plain"]]
    notes.append(f"{workload}: pruned trials per study (plain): {pruned}")
    seconds = [f"{s:.2f}" for _, _, s, _ in studies["plain"]]
    notes.append(f"{workload}: mean seconds of a complete trial, per study (plain): {seconds}")
    epochs = [e for *_, e in studies["plain"]]
    notes.append(f"{workload}: epochs run per study (plain): {epochs}")
    if workload == "fixed":
        budget = TRIALS * LONG_TRIAL_S
        for variant in [v for v in variants if v != "plain"]:
            extra = [c - p for c, p in zip(cpus[variant], cpus["plain"], strict=True)]
            notes.append(
                f"fixed, `{variant}`: {mean_std(extra)} CPU s more than `plain` per study of "
                f"{statistics.mean(epochs):.0f} epochs: {100 * statistics.mean(extra) / budget:.2f}"
                f" % of {TRIALS} trials of {LONG_TRIAL_S:.0f} s"
            )
    return rows, notes, {"wall": walls, "cpu": cpus, "studies": studies}


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
    if any(w not in WORKLOADS for w in workloads):
        parser.error(f"--workloads: choose among {', '.join(WORKLOADS)}")
    rows: list[list[Any]] = []
    notes: list[str] = []
    summary: list[dict[str, Any]] = []
    for workload in workloads:
        got, said, raw = compare_tune(workload, reps if workload == "short" else args.long_reps)
        rows += got
        notes += said
        plain = raw["studies"]["plain"]
        for variant in [v for v in raw["cpu"] if v.startswith("tune")]:
            summary.append(
                {
                    "recipe": f"{variant} ({workload} trials)",
                    "peer": "plain Optuna loop + PyTorchLightningPruningCallback",
                    "metric": "best val_loss of the study",
                    "higher_is_better": False,
                    "ours": [s[0][s[1]][1] for s in raw["studies"][variant]],
                    "theirs": [s[0][s[1]][1] for s in plain],
                    "time_ratio": [
                        c / p for c, p in zip(raw["cpu"][variant], raw["cpu"]["plain"], strict=True)
                    ],
                    "note": "CPU-time ratio; same trials as the plain loop",
                }
            )
    text = "\n".join(f"- {n}" for n in notes)
    name = "peers_tune" if workloads == list(WORKLOADS) else "_".join(["peers_tune", *workloads])
    headers = ["workload", "variant", "wall s per study", "wall ratio to plain"]
    headers += ["CPU s per study", "CPU ratio to plain", "extra CPU s per trial"]
    title = "`tune` vs a plain Optuna loop with optuna-integration's pruning callback"
    command = f"nice -n 10 .venv/bin/python benchmarks/peers_tune.py {' '.join(sys.argv[1:])}"
    publish(name, title, headers, rows, text, command=command.strip())
    publish_peers(name, summary, command=command.strip())


if __name__ == "__main__":
    main()
