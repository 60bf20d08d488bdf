"""`cross_validate` beside scikit-learn folds by hand, on the MNIST-1D CNN.

The peer is the loop a user writes without the library: generate the 4,000 training
signals, cut them with scikit-learn's ``StratifiedKFold(5, shuffle=True,
random_state=seed)``, and for each fold seed, build the ``Classifier`` (``Mnist1dCNN``
backbone), two ``DataLoader``\\ s and a ``Trainer``, fit, and read the last epoch's
``val_acc``. ``cross_validate`` runs the same from a LightningCLI config dict
(``Mnist1dDataModule(layout="signal")``, the same model, Trainer settings and seed,
``k=5``, ``monitor="val_acc"``, ``use="last"``).

Two hand loops, differing only in how the training loader shuffles:

* ``hand (epoch-seeded)``: ``DistributedSampler(num_replicas=1, rank=0, seed=seed)``,
  whose order for epoch ``e`` is ``randperm`` seeded with ``seed + e``: the order of the
  library's datamodules, so both see the same batches and the fold scores can be compared
  for equality;
* ``hand (shuffle=True)``: ``DataLoader(shuffle=True)`` with a generator seeded once, as
  most hand loops are written (other batches: scores differ by the shuffle's noise only).

The three variants run interleaved in one process, their order rotated per seed; each ran
once untimed first (imports, first-use costs). Times are of the whole cross-validation
(data, folds, fits), wall and CPU (``time.process_time``). The folds are also compared
directly: the datamodule's validation fold against scikit-learn's rows.

Run (about 15 minutes on 2 loaded CPU cores):
``nice -n 10 .venv/bin/python benchmarks/peers_cv.py``; smoke run: ``--quick``.
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
from lightning.pytorch import Trainer, seed_everything
from sklearn.model_selection import StratifiedKFold
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import mean_std, paired_verdict, publish, publish_peers, quiet_args

from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.data.mnist1d import generate_mnist1d
from lightning_recipes.modules import Classifier, Mnist1dCNN
from lightning_recipes.tuning import cross_validate

K = 5
SEEDS = (0, 1, 2, 3, 4)
EPOCHS = 10
TINY = 0  # "epochs" of the fixed-cost measurement: two training and two validation batches
LR = 1e-2
BATCH = 100
VARIANTS = ("cross_validate", "hand (epoch-seeded)", "hand (shuffle=True)")
PEER = "hand (epoch-seeded)"
COMMAND = "nice -n 10 .venv/bin/python benchmarks/peers_cv.py"


def trainer_args(epochs: int) -> dict[str, Any]:
    """The Trainer arguments of every fold, both sides; ``TINY`` epochs: two batches each way.

    Not one: LightningCLI parses ``limit_train_batches: 1`` as the float 1.0, which
    Lightning reads as 100 % of the batches.
    """
    if epochs == TINY:
        return quiet_args(
            num_sanity_val_steps=0, max_epochs=1, limit_train_batches=2, limit_val_batches=2
        )
    return quiet_args(num_sanity_val_steps=0, max_epochs=epochs)


def config(epochs: int) -> dict[str, Any]:
    """The LightningCLI config `cross_validate` runs (the seed comes from its ``seed``)."""
    return {
        "trainer": trainer_args(epochs),
        "model": {
            "class_path": "lightning_recipes.modules.Classifier",
            "init_args": {
                "num_classes": 10,
                "lr": LR,
                "optimizer": "adam",
                "backbone": {"class_path": "lightning_recipes.modules.Mnist1dCNN"},
            },
        },
        "data": {
            "class_path": "lightning_recipes.data.Mnist1dDataModule",
            "init_args": {"batch_size": BATCH, "layout": "signal"},
        },
    }


def ours(seed: int, epochs: int) -> list[tuple[float, float]]:
    """``(val_acc, val_loss)`` of every fold, by `cross_validate`."""
    result = cross_validate(config(epochs), k=K, seed=seed, monitor="val_acc", use="last")
    return [(f.value, f.metrics["val_loss"]) for f in result.folds]


def signals() -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's 4,000 training signals as ``(N, 1, 40)`` and their labels."""
    x, y, _, _ = generate_mnist1d()
    return torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 40), torch.tensor(y)


def hand(seed: int, epochs: int, shuffle: str) -> list[tuple[float, float]]:
    """``(val_acc, val_loss)`` of every fold, by the hand-written scikit-learn loop."""
    x, y = signals()
    folds = StratifiedKFold(n_splits=K, shuffle=True, random_state=seed)
    scores = []
    for train_idx, val_idx in folds.split(np.zeros((len(y), 1)), y.numpy()):
        seed_everything(seed, verbose=False)
        model = Classifier(Mnist1dCNN(), num_classes=10, lr=LR, optimizer="adam")
        train = TensorDataset(x[train_idx], y[train_idx])
        if shuffle == "epoch":
            sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=seed)
            train_loader = DataLoader(train, batch_size=BATCH, sampler=sampler)
        else:
            generator = torch.Generator().manual_seed(seed)
            train_loader = DataLoader(train, batch_size=BATCH, shuffle=True, generator=generator)
        val_loader = DataLoader(TensorDataset(x[val_idx], y[val_idx]), batch_size=BATCH)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(**trainer_args(epochs), default_root_dir=tmp)
            trainer.fit(model, train_loader, val_loader)
        metrics = trainer.callback_metrics
        scores.append((float(metrics["val_acc"]), float(metrics["val_loss"])))
    return scores


def run(variant: str, seed: int, epochs: int) -> dict[str, Any]:
    """One whole cross-validation: its fold scores, wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    if variant == "cross_validate":
        scores = ours(seed, epochs)
    else:
        scores = hand(seed, epochs, "epoch" if "epoch" in variant else "shuffle")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"scores": scores, "wall": wall, "cpu": cpu}


def same_folds(seed: int) -> bool:
    """Whether the datamodule's K validation folds are scikit-learn's rows, in order."""
    x, y = signals()
    folds = StratifiedKFold(n_splits=K, shuffle=True, random_state=seed)
    for fold, (train_idx, val_idx) in enumerate(folds.split(np.zeros((len(y), 1)), y.numpy())):
        dm = Mnist1dDataModule(layout="signal", num_folds=K, fold=fold, seed=seed)
        dm.setup("fit")
        assert dm.train_dataset is not None
        assert dm.val_dataset is not None
        if not (
            torch.equal(dm.val_dataset.features, x[val_idx])
            and torch.equal(dm.val_dataset.targets, y[val_idx])
            and torch.equal(dm.train_dataset.features, x[train_idx])
        ):
            return False
    return True


def fixed_costs(reps: int) -> tuple[list[float], list[float]]:
    """CPU seconds per fold of each side when a fold trains two batches: the fixed costs."""
    costs: dict[str, list[float]] = {"cross_validate": [], PEER: []}
    for rep in range(reps):
        order = list(costs) if rep % 2 == 0 else list(costs)[::-1]
        for variant in order:
            costs[variant].append(run(variant, seed=rep, epochs=TINY)["cpu"] / K)
    return costs["cross_validate"], costs[PEER]


def ratio(values: list[float]) -> str:
    """``mean ± std`` of per-seed time ratios."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch per fold")
    parser.add_argument("--seeds", type=int, default=len(SEEDS))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--fixed-reps", type=int, default=6, help="repetitions, fixed costs")
    parser.add_argument(
        "--fixed-only", action="store_true", help="measure the fixed costs only, print them"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    seeds = (0,) if args.quick else tuple(range(args.seeds))
    epochs = 1 if args.quick else args.epochs

    for variant in VARIANTS:  # untimed: imports and first-use costs
        run(variant, seed=100, epochs=1)
    fixed_ours, fixed_hand = fixed_costs(2 if args.quick else args.fixed_reps)
    fixed = (
        f"{statistics.mean(fixed_ours):.3f} ± {statistics.stdev(fixed_ours):.3f} s against "
        f"{statistics.mean(fixed_hand):.3f} ± {statistics.stdev(fixed_hand):.3f} s"
    )
    print(f"fixed CPU s per fold, cross_validate vs hand: {fixed}", flush=True)
    if args.fixed_only:
        return
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for i, seed in enumerate(seeds):
        order = VARIANTS[i % len(VARIANTS) :] + VARIANTS[: i % len(VARIANTS)]
        for variant in order:
            got = run(variant, seed, epochs)
            runs[variant].append(got)
            accs = " ".join(f"{a:.4f}" for a, _ in got["scores"])
            print(
                f"seed {seed} {variant}: {got['wall']:.2f} s wall {got['cpu']:.2f} s CPU; "
                f"val_acc {accs}",
                flush=True,
            )
    folds_equal = [same_folds(seed) for seed in seeds]

    def means(variant: str) -> list[float]:
        return [statistics.mean(a for a, _ in r["scores"]) for r in runs[variant]]

    def stds(variant: str) -> list[float]:
        return [statistics.stdev(a for a, _ in r["scores"]) for r in runs[variant]]

    n = len(seeds)
    equal_scores = sum(
        a["scores"] == b["scores"] for a, b in zip(runs["cross_validate"], runs[PEER], strict=True)
    )
    headers = [
        "variant",
        "mean val_acc over folds",
        "std over folds",
        "vs cross_validate (paired)",
        "wall s per CV",
        "CPU s per CV",
        "cross_validate / it (wall)",
        "cross_validate / it (CPU)",
    ]
    rows = []
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for variant in VARIANTS:
        walls[variant] = [
            a["wall"] / b["wall"]
            for a, b in zip(runs["cross_validate"], runs[variant], strict=True)
        ]
        cpus[variant] = [
            a["cpu"] / b["cpu"] for a, b in zip(runs["cross_validate"], runs[variant], strict=True)
        ]
        diff = [a - b for a, b in zip(means("cross_validate"), means(variant), strict=True)]
        rows.append(
            [
                f"`{variant}`",
                mean_std(means(variant)),
                mean_std(stds(variant)),
                "" if variant == "cross_validate" else mean_std(diff, sign=True),
                f"{statistics.mean(r['wall'] for r in runs[variant]):.2f}",
                f"{statistics.mean(r['cpu'] for r in runs[variant]):.2f}",
                "" if variant == "cross_validate" else ratio(walls[variant]),
                "" if variant == "cross_validate" else ratio(cpus[variant]),
            ]
        )
    shuffle_diff = [
        a - b for a, b in zip(means("cross_validate"), means("hand (shuffle=True)"), strict=True)
    ]
    shuffle_verdict = paired_verdict(means("cross_validate"), means("hand (shuffle=True)"))
    overhead = [
        (a["cpu"] - b["cpu"]) / K for a, b in zip(runs["cross_validate"], runs[PEER], strict=True)
    ]
    cpu_mean = statistics.mean(cpus[PEER])
    cost_words = (
        "level (within 5 %)"
        if cpu_mean <= 1.05
        else f"**behind**: {100 * (cpu_mean - 1):.0f} % more CPU time"
    )
    extra = statistics.mean(fixed_ours) - statistics.mean(fixed_hand)
    fold_cpu = statistics.mean(r["cpu"] for r in runs[PEER]) / K
    notes = f"""
MNIST-1D, the paper's 4,000 training signals (generator seed 42) in {K} stratified folds of
800 (validation) and 3,200 (training); `Classifier(Mnist1dCNN())`, Adam {LR:g}, batch {BATCH},
{epochs} epochs per fold, no sanity check, no logger or checkpoint; the score of a fold is
its last epoch's `val_acc` (`use="last"`). Seeds {list(seeds)} (each seeds the folds, the
shuffle and `seed_everything` of every fold), the three variants interleaved in one process,
order rotated per seed. Columns 2-3: the mean and the spread over the {K} folds of one
cross-validation, then mean ± std of those over the seeds.

- **Same folds**: the datamodule's training and validation rows equal scikit-learn's
  `StratifiedKFold` rows, fold by fold, for {sum(folds_equal)} of {n} seeds.
- **Same scores**: with the same shuffle order (`hand (epoch-seeded)`), every fold's
  `val_acc` and `val_loss` are equal (exact float equality) in {equal_scores} of {n}
  cross-validations: the library adds nothing to the numbers but the folds it cuts. With a
  plain `shuffle=True` loader the folds see other batches; the mean differs by
  {mean_std(shuffle_diff, sign=True)} (paired): {shuffle_verdict}.
- **Cost**: `cross_validate` / the hand loop, per seed: {ratio(walls[PEER])} wall,
  {ratio(cpus[PEER])} CPU: {cost_words}; per fold {mean_std(overhead, sign=True)} s of CPU
  (paired), against {fold_cpu:.2f} s for a fold of the hand loop.
- **Fixed costs**, measured apart (folds of two training and two validation batches,
  {len(fixed_ours)} cross-validations each, interleaved): CPU per fold {fixed}, so
  `cross_validate` adds about {extra:.3f} s a fold (building each fold's run from its
  config through LightningCLI, with one parser per cross-validation), {100 * extra / fold_cpu:.1f} %
  of a fold here.
"""
    if args.quick:
        from lightning_recipes._core.tables import format_table

        print(format_table(headers, rows))
        print(notes)
        return
    publish(
        "peers_cv",
        "`cross_validate` beside scikit-learn folds by hand (MNIST-1D)",
        headers,
        rows,
        notes,
        command=COMMAND,
    )
    publish_peers(
        "peers_cv",
        [
            {
                "recipe": "cross_validate (5-fold, stratified)",
                "peer": "scikit-learn StratifiedKFold + a Lightning fit per fold, by hand",
                "metric": "mean val_acc over 5 folds",
                "higher_is_better": True,
                "ours": means("cross_validate"),
                "theirs": means(PEER),
                "time_ratio": cpus[PEER],
                "wall_ratio": walls[PEER],
                "note": (
                    f"time_ratio: CPU time of the whole CV, ours / hand; fold scores equal in "
                    f"{equal_scores} of {n} seeds, folds equal in {sum(folds_equal)} of {n}"
                ),
            }
        ],
        command=COMMAND,
    )


if __name__ == "__main__":
    main()
