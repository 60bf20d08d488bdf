"""Imbalance remedies beside torch's and imbalanced-learn's, on long-tailed MNIST-1D.

`Mnist1dDataModule(imbalance={c: r ** (-c / 9)}, val_fraction=0.0)`: class c keeps
``r ** (-c / 9)`` of its 400 training signals (an exponential long tail: digit 0 keeps
all, digit 9 keeps 1/r), for imbalance ratios r = 10 and 100; the paper's 1,000 test
signals stay balanced. The paper's CNN (`Mnist1dCNN` + the `Classifier` head), Adam lr
1e-2, batch 100, the same number of optimizer steps for every variant (a resampled epoch
is longer: equal epochs would not be equal work). Per ratio and seed (initialisation,
shuffle, which signals each class keeps):

- cross-entropy (no remedy);
- ours ``ClassWeighting("balanced")`` (weights ``n / (C n_c)``, installed in the loss);
  beside it, the torch way: ``nn.CrossEntropyLoss(weight=...)`` with the same weights
  computed by hand (final weights compared with ``torch.equal``);
- ours ``ClassBalancedSampler(labels)`` (a class, then a sample of it, with replacement,
  re-drawn every epoch) beside torch's ``WeightedRandomSampler(1 / n_c per sample,
  len(labels))``;
- ours ``ResamplingSampler(labels, RandomOverSampler())`` (imbalanced-learn's
  over-sampler refitted every epoch) beside imbalanced-learn used directly:
  ``RandomOverSampler().fit_resample`` once, its ``sample_indices_`` as a fixed
  ``Subset`` shuffled every epoch.

Balanced accuracy (mean per-class recall) and G-mean (geometric mean of the per-class
recalls) on the test signals, mean ± std over seeds, the paired change against
cross-entropy, and the fit time relative to it (interleaved in one process, order
rotated every seed; one torch thread).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/peers_imbalance.py [--quick]``.
"""

import argparse
import logging
import math
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from imblearn.over_sampling import RandomOverSampler
from lightning.pytorch import Callback, LightningDataModule, seed_everything
from torch import nn
from torch.utils.data import DataLoader, Subset, WeightedRandomSampler
from typing_extensions import override

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    identical,
    mean_std,
    publish,
    publish_peers,
    quiet_trainer,
    state_copy,
    test_log_probs,
    timed_fit,
)
from _peers import paired, peer_row, ratio_text, ratios

from lightning_recipes import ClassWeighting
from lightning_recipes._core.tables import markdown_table
from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.imbalance.samplers import ClassBalancedSampler, ResamplingSampler
from lightning_recipes.modules import Classifier, Mnist1dCNN

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

BATCH = 100


class Sampled(LightningDataModule):
    """The data module, its training loader built by ``loader(train_dataset, seed)``."""

    def __init__(self, data: Mnist1dDataModule, loader: Callable[[Any, int], DataLoader]) -> None:
        super().__init__()
        self.data = data
        self.loader = loader

    @override
    def setup(self, stage: str) -> None:
        self.data.setup(stage)

    @override
    def train_dataloader(self) -> DataLoader:
        return self.loader(self.data.train_dataset, self.data.seed)


def net_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("loss_fn.")}


def balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=10).double()
    return (labels.numel() / (10 * counts)).float()


def weighted_random(dataset: Any, seed: int) -> DataLoader:
    per_class = 1.0 / torch.bincount(dataset.targets, minlength=10).double()
    generator = torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(
        per_class[dataset.targets], len(dataset.targets), replacement=True, generator=generator
    )
    return DataLoader(dataset, batch_size=BATCH, sampler=sampler)


def imblearn_once(dataset: Any, seed: int) -> DataLoader:
    labels = dataset.targets.numpy()
    over = RandomOverSampler(random_state=seed)
    over.fit_resample(np.zeros((labels.size, 1)), labels)
    generator = torch.Generator().manual_seed(seed)
    subset = Subset(dataset, over.sample_indices_.tolist())
    return DataLoader(subset, batch_size=BATCH, shuffle=True, generator=generator)


Variant = tuple[Callable[[], list[Callback]], str, Callable[[Any, int], DataLoader] | None]


def ours_balanced(dataset: Any, seed: int) -> DataLoader:
    sampler = ClassBalancedSampler(dataset.targets, seed=seed)
    return DataLoader(dataset, batch_size=BATCH, sampler=sampler)


def ours_resampling(dataset: Any, seed: int) -> DataLoader:
    sampler = ResamplingSampler(dataset.targets, seed=seed)  # RandomOverSampler()
    return DataLoader(dataset, batch_size=BATCH, sampler=sampler)


VARIANTS: dict[str, Variant] = {
    "cross-entropy": (list, "", None),
    'ours ClassWeighting("balanced")': (lambda: [ClassWeighting("balanced")], "", None),
    "torch CrossEntropyLoss(weight=n / (C n_c))": (list, "weighted", None),
    "ours ClassBalancedSampler": (list, "", ours_balanced),
    "torch WeightedRandomSampler": (list, "", weighted_random),
    "ours ResamplingSampler(RandomOverSampler())": (list, "", ours_resampling),
    "imbalanced-learn RandomOverSampler, resampled once": (list, "", imblearn_once),
}


def fit(ratio: float, seed: int, steps: int, variant: Variant) -> tuple[float, float, float, dict]:
    callbacks, loss, loader = variant
    seed_everything(seed, verbose=False)
    keep = {c: ratio ** (-c / 9) for c in range(1, 10)}
    data = Mnist1dDataModule(batch_size=BATCH, val_fraction=0.0, seed=seed, imbalance=keep)
    data.setup("fit")
    assert data.train_dataset is not None
    loss_fn = None
    if loss == "weighted":
        loss_fn = nn.CrossEntropyLoss(weight=balanced_weights(data.train_dataset.targets))
    model = Classifier(Mnist1dCNN(), 10, lr=1e-2, optimizer="adam", loss_fn=loss_fn)
    module: LightningDataModule = data if loader is None else Sampled(data, loader)
    trainer = quiet_trainer(
        max_steps=steps, max_epochs=-1, callbacks=callbacks(), limit_val_batches=0
    )
    seconds = timed_fit(trainer, model, module)
    logp, y = test_log_probs(model, data)
    predicted = logp.argmax(-1)
    recalls = [float((predicted[y == c] == c).float().mean()) for c in range(10)]
    balanced = statistics.fmean(recalls)
    gmean = math.prod(recalls) ** (1 / 10)
    return balanced, gmean, seconds, state_copy(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--ratios", type=float, nargs="+", default=[10.0, 100.0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, 60 steps")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.steps = 2, 60
    torch.set_num_threads(1)
    names = list(VARIANTS)
    fit(args.ratios[0], 0, 5, VARIANTS[names[0]])  # warm-up: imports, data generation
    tables, equal_notes, all_rows = [], [], []
    summary: list[dict[str, Any]] = []
    said: list[str] = []
    for ratio in args.ratios:
        results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
        equal = 0
        for seed in range(args.seeds):
            shift = seed % len(names)
            states = {}
            for name in names[shift:] + names[:shift]:
                bal, gm, seconds, state = fit(ratio, seed, args.steps, VARIANTS[name])
                results[name].append((bal, gm, seconds))
                states[name] = state
                print(
                    f"r={ratio:g} seed {seed} {name}: bal {bal:.4f} G {gm:.4f} {seconds:.1f} s",
                    flush=True,
                )
            # The network's weights: the hand-weighted loss also holds its `weight` buffer.
            a, b = (net_state(states[n]) for n in names[1:3])
            equal += identical(a, b)
        summary += summary_rows(ratio, results, names, equal, args.seeds)
        said.append(findings(ratio, results, names))
        base = results[names[0]]
        pairs = {n: list(zip(results[n], base, strict=True)) for n in names}
        rows = [
            [
                f"{ratio:g}",
                n,
                mean_std([x[0] for x in results[n]]),
                mean_std([x[0] - b[0] for x, b in pairs[n]], sign=True),
                mean_std([x[1] for x in results[n]]),
                mean_std([x[1] - b[1] for x, b in pairs[n]], sign=True),
                f"{statistics.mean(x[2] / b[2] for x, b in pairs[n]):.3f}",
            ]
            for n in names
        ]
        all_rows += rows
        tables.append(rows)
        equal_notes.append(
            f"r = {ratio:g}: ClassWeighting vs the hand-weighted CrossEntropyLoss, identical "
            f"final network weights (`torch.equal`) on {equal} of {args.seeds} seeds"
        )
    headers = ["ratio", "variant", "balanced acc", "Δ vs CE", "G-mean", "Δ vs CE", "fit time / CE"]
    print(markdown_table(headers, all_rows))
    publish(
        "peers_imbalance",
        "Imbalance remedies beside torch and imbalanced-learn (long-tailed MNIST-1D)",
        headers,
        all_rows,
        "Long-tailed MNIST-1D: class c keeps r^(-c/9) of its 400 training signals "
        "(`Mnist1dDataModule(imbalance=...)`, r = imbalance ratio, largest over smallest "
        "class), tested on the paper's balanced 1,000 test signals. "
        f"`Classifier(Mnist1dCNN(), 10, lr=1e-2, optimizer='adam')`, batch {BATCH}, "
        f"{args.steps} optimizer steps for every variant, no validation; seeds "
        f"{tuple(range(args.seeds))} (initialisation, shuffle, kept signals). Mean ± std "
        "over seeds; Δ is the paired difference against plain cross-entropy with its std; "
        "the time ratio is each seed's fit over that seed's cross-entropy fit, averaged, "
        "the variants interleaved in one process with their order rotated every seed. "
        "G-mean is the geometric mean of the ten per-class recalls (0 when a class is "
        f"never predicted). {'; '.join(equal_notes)}.\n\n"
        "What it says (ours - peer, paired; level means within two standard errors over "
        "the seeds):\n\n" + "\n".join(said) + "\n\n"
        "Command: `cd <repo> && PYTHONPATH=src nice -n 10 .venv/bin/python "
        f"benchmarks/peers_imbalance.py --seeds {args.seeds} --steps {args.steps} "
        f"--ratios {' '.join(f'{r:g}' for r in args.ratios)}`.",
    )
    publish_peers(
        "peers_imbalance",
        summary,
        command="PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/peers_imbalance.py "
        f"--seeds {args.seeds} --steps {args.steps} "
        f"--ratios {' '.join(f'{r:g}' for r in args.ratios)}",
    )


Results = dict[str, list[tuple[float, float, float]]]


def summary_rows(
    ratio: float, results: Results, names: list[str], equal: int, seeds: int
) -> list[dict[str, Any]]:
    """`publish_peers` rows at one imbalance ratio: balanced accuracy per seed."""
    rows = []
    for ours, theirs in ((names[1], names[2]), (names[3], names[4]), (names[5], names[6])):
        note = f"identical network weights on {equal} of {seeds} seeds" if ours == names[1] else ""
        rows.append(
            peer_row(
                f"{ours.removeprefix('ours ')} (r = {ratio:g})",
                theirs,
                "balanced accuracy",
                [x[0] for x in results[ours]],
                [x[0] for x in results[theirs]],
                time_ratio=ratios([x[2] for x in results[ours]], [x[2] for x in results[theirs]]),
                note=note,
                baseline={"name": names[0], "values": [x[0] for x in results[names[0]]]},
                g_mean={
                    "ours": [x[1] for x in results[ours]],
                    "theirs": [x[1] for x in results[theirs]],
                },
            )
        )
    return rows


def findings(ratio: float, results: Results, names: list[str]) -> str:
    """One bullet per imbalance ratio: each remedy beside its peer, and against no remedy."""

    def col(name: str, index: int) -> list[float]:
        return [x[index] for x in results[name]]

    ce = names[0]
    parts = []
    for ours, theirs in ((names[1], names[2]), (names[3], names[4]), (names[5], names[6])):
        parts.append(
            f"{ours.removeprefix('ours ')} vs {theirs}: balanced accuracy "
            f"{paired(col(ours, 0), col(theirs, 0))}, G-mean "
            f"{paired(col(ours, 1), col(theirs, 1))}; "
            f"against cross-entropy {paired(col(ours, 0), col(ce, 0))}; fit time "
            f"{ratio_text(ratios(col(ours, 2), col(theirs, 2)))} the peer's."
        )
    return f"- **r = {ratio:g}**:\n" + "\n".join(f"  - {part}" for part in parts)


if __name__ == "__main__":
    main()
