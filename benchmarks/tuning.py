"""Hyperparameter search on digits: samplers at equal budgets, pruning, storage overhead.

The space is ``examples/configs/digits_space.yaml`` (depth 2 or 3 with per-layer widths and
dropouts, log-uniform lr, optimizer, batch size) over ``examples/configs/digits.yaml``,
trained for ``EPOCHS`` epochs per trial, maximising validation accuracy. Grid search gets
the same budget over a discretised version of the space (Optuna's GridSampler needs finite
values).

1. Samplers: best validation accuracy found after 4, 8 and ``TRIALS`` trials, mean ± std
   over ``SEEDS`` study seeds; the trials TPE needs to reach random's final best; the test
   accuracy of each study's best config (``best.yaml`` refitted and tested).
2. Pruning: TPE with the median pruner against TPE without, same seeds: epochs trained,
   wall time, best validation accuracy.
3. Storage: the time of the storage work of one trial (ask, one report per epoch, tell)
   in SQLite, against the mean trial's training time.

The same samplers (not grid) also search the tabular breast cancer config with the same
space.

Run: ``.venv/bin/python benchmarks/tuning.py`` (about 15 minutes on 2 CPU cores).
"""

import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from _common import publish

from lightning_recipes.cli import RecipesCLI
from lightning_recipes.tuning import tune

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"
TABULAR = ROOT / "examples" / "configs" / "breast_cancer.yaml"
SPACE = ROOT / "examples" / "configs" / "digits_space.yaml"
SEEDS = (0, 1, 2)
TRIALS = 16
EPOCHS = 4
OVERRIDES = [
    f"--trainer.max_epochs={EPOCHS}",
    "--trainer.logger=false",
]
GRID_SPACE: dict[str, Any] = {
    "model.init_args.lr": {"type": "categorical", "choices": [3e-4, 3e-3, 3e-2]},
    "model.init_args.backbone.init_args.hidden.0": {"type": "categorical", "choices": [64, 256]},
    "model.init_args.optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "data.init_args.batch_size": {"type": "categorical", "choices": [32, 128]},
}


def study(
    sampler: str, seed: int, out: Path, pruner: str = "none", config: Path = CONFIG
) -> tuple[Any, float]:
    started = time.perf_counter()
    result = tune(
        config,
        GRID_SPACE if sampler == "grid" else SPACE,
        n_trials=TRIALS,
        sampler=sampler,  # type: ignore[arg-type]
        pruner=pruner,  # type: ignore[arg-type]
        seed=seed,
        monitor="val_acc",
        mode="max",
        out_dir=out,
        study_name=f"{config.stem}-{sampler}-{pruner}-{seed}",
        progress=False,
        overrides=OVERRIDES,
    )
    return result, time.perf_counter() - started


def best_so_far(result: Any) -> list[float]:
    values = [t.value for t in result.trials if t.value is not None]
    return list(np.maximum.accumulate(values)) if values else []


def test_accuracy(best_yaml: Path) -> float:
    root = f"--trainer.default_root_dir={best_yaml.parent / 'refit'}"
    cli = RecipesCLI(args=["-c", str(best_yaml), *OVERRIDES, root], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return float(
        cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)[0]["test_acc"]
    )


def epochs_of(result: Any) -> int:
    return sum(len(t.intermediate_values) or EPOCHS for t in result.trials)


def fmt(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"


def storage_overhead(out: Path) -> float:
    """Seconds of SQLite work for one trial: ask, EPOCHS reports, tell (mean of 20)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'overhead.db'}")
    bench = optuna.create_study(storage=storage, study_name="overhead", direction="maximize")
    started = time.perf_counter()
    for _ in range(20):
        trial = bench.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        for epoch in range(EPOCHS):
            trial.report(0.5, epoch)
            trial.should_prune()
        bench.tell(trial, 0.5)
    return (time.perf_counter() - started) / 20


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    rows, trial_seconds, tpe_needed = [], [], []
    curves: dict[str, list[list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for sampler in ("grid", "random", "tpe", "gp"):
            curves[sampler], tests = [], []
            for seed in SEEDS:
                result, seconds = study(sampler, seed, out)
                trial_seconds.append(seconds / max(len(result.trials), 1))
                curves[sampler].append(best_so_far(result))
                tests.append(test_accuracy(out / result.study_name / "best.yaml"))
            at = {n: [c[min(n, len(c)) - 1] for c in curves[sampler]] for n in (4, 8, TRIALS)}
            rows.append(["digits", sampler, fmt(at[4]), fmt(at[8]), fmt(at[TRIALS]), fmt(tests)])
            print(rows[-1], flush=True)
        for sampler in ("random", "tpe", "gp"):
            best, tests = [], []
            for seed in SEEDS:
                result, _ = study(sampler, seed, out, config=TABULAR)
                curve = best_so_far(result)
                best.append([curve[min(n, len(curve)) - 1] for n in (4, 8, TRIALS)])
                tests.append(test_accuracy(out / result.study_name / "best.yaml"))
            cols = [fmt([b[i] for b in best]) for i in range(3)]
            rows.append(["breast cancer", sampler, *cols, fmt(tests)])
            print(rows[-1], flush=True)
        for tpe, rand in zip(curves["tpe"], curves["random"], strict=True):
            target = rand[-1]
            tpe_needed.append(next((i + 1 for i, v in enumerate(tpe) if v >= target), None))
        prune_rows = []
        for pruner in ("none", "median"):
            epochs, walls, bests = [], [], []
            for seed in SEEDS:
                result, seconds = study("tpe", seed, out / "pruning", pruner)
                epochs.append(epochs_of(result))
                walls.append(seconds)
                bests.append(result.best_value)
            prune_rows.append([pruner, fmt(epochs), fmt(walls), fmt(bests)])
            print(prune_rows[-1], flush=True)
        overhead = storage_overhead(out)
    mean_trial = statistics.mean(trial_seconds)
    needed = ", ".join("not reached" if n is None else str(n) for n in tpe_needed)
    notes = (
        f"""
Space: `examples/configs/digits_space.yaml` (grid: a discretised 24-point version), on
`examples/configs/digits.yaml` and on `examples/configs/breast_cancer.yaml` (tabular), {EPOCHS}
epochs per trial, {TRIALS} trials per study, study seeds {SEEDS}, maximising `val_acc`.
Columns 2-4: best validation accuracy found after that many trials; last column: test
accuracy of the study's `best.yaml`, refitted.

Trials TPE needed to reach random search's final best (per seed): {needed} of {TRIALS}
(target: at most half).

## Pruning (TPE, median pruner vs none)

| pruner | epochs trained | wall s | best val acc |
|---|---|---|---|
"""
        + "\n".join(f"| {' | '.join(map(str, r))} |" for r in prune_rows)
        + f"""

## Storage overhead

SQLite work for one trial (ask, {EPOCHS} reports with `should_prune`, tell):
{overhead * 1000:.1f} ms, {100 * overhead / mean_trial:.2f}% of the mean trial
({mean_trial:.2f} s; target under 2%).
PostgreSQL is exercised by `tests/test_tuning_postgres.py` (two workers, one study) but not
timed here.
"""
    )
    publish(
        "tuning",
        "Hyperparameter search on digits",
        ["task", "sampler", "best after 4", "best after 8", f"best after {TRIALS}", "test acc"],
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
