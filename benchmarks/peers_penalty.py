"""WeightPenalty beside the optimizer's weight_decay, on a small MNIST-1D training set.

The paper's CNN (`Mnist1dCNN` + the `Classifier` head, 5,210 parameters) on
`Mnist1dDataModule(shots_per_class=S, val_fraction=0.0)`: S training signals per class
(500 in all by default, so the CNN overfits and L2 has something to act on), the paper's
1,000 test signals; batch 100, E epochs, no validation. Per seed (initialisation,
shuffle and which S signals per class), the variants:

- SGD (Nesterov momentum 0.9, lr 0.05): no decay; ``weight_decay=wd`` on every
  parameter; ``WeightPenalty(l2=wd / 2, biases=True)`` (its gradient ``2 * l2 * w`` is the
  optimizer's ``wd * w``: the final weights are compared tensor by tensor with
  ``torch.equal``); ``WeightPenalty(l2=wd / 2)``, its default (weights of the Linear and
  convolution layers only, biases left alone);
- Adam (lr 1e-2): no decay; ``WeightPenalty(l2=wd / 2, biases=True)`` (= Adam's own
  ``weight_decay=wd``, a coupled L2 term that Adam's scaling divides, compared with
  ``torch.equal`` too); AdamW's decoupled ``weight_decay`` (Loshchilov & Hutter 2019: the
  weights shrink by ``lr * wd`` each step, outside the adaptive scaling), a different
  regulariser, at one untuned decay (``--adamw-wd``).

Test accuracy and NLL, mean ± std over seeds, the paired change against the optimizer's
no-decay run, and the fit time relative to it (interleaved in one process, order rotated
every seed; one torch thread).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/peers_penalty.py [--quick]``.
"""

import argparse
import logging
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, seed_everything

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
    timed_fit,
)
from _peers import paired, peer_row, ratio_text, ratios

from lightning_recipes import WeightPenalty
from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.modules import Classifier, Mnist1dCNN

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

Variant = tuple[str, float, float, Callable[[], list[Callback]]]  # optimizer, lr, wd


def variants(wd: float, adamw_wd: float) -> dict[str, Variant]:
    l2 = wd / 2
    return {
        "SGD": ("sgd", 0.05, 0.0, list),
        f"SGD weight_decay={wd:g}": ("sgd", 0.05, wd, list),
        f"SGD + WeightPenalty(l2={l2:g}, biases=True)": (
            "sgd", 0.05, 0.0, lambda: [WeightPenalty(l2=l2, biases=True)],
        ),
        f"SGD + WeightPenalty(l2={l2:g}) (weights only)": (
            "sgd", 0.05, 0.0, lambda: [WeightPenalty(l2=l2)],
        ),
        "Adam": ("adam", 1e-2, 0.0, list),
        f"Adam weight_decay={wd:g} (coupled L2)": ("adam", 1e-2, wd, list),
        f"Adam + WeightPenalty(l2={l2:g}, biases=True)": (
            "adam", 1e-2, 0.0, lambda: [WeightPenalty(l2=l2, biases=True)],
        ),
        f"AdamW weight_decay={adamw_wd:g} (decoupled)": ("adamw", 1e-2, adamw_wd, list),
    }  # fmt: skip


def fit(seed: int, epochs: int, shots: int, variant: Variant) -> tuple[float, float, float, dict]:
    optimizer, lr, wd, callbacks = variant
    seed_everything(seed, verbose=False)
    data = Mnist1dDataModule(batch_size=100, val_fraction=0.0, seed=seed, shots_per_class=shots)
    model = Classifier(Mnist1dCNN(), 10, lr=lr, optimizer=optimizer, weight_decay=wd)
    trainer = quiet_trainer(max_epochs=epochs, callbacks=callbacks(), limit_val_batches=0)
    seconds = timed_fit(trainer, model, data)
    acc, nll = accuracy_nll(*test_log_probs(model, data))
    return acc, nll, seconds, state_copy(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--shots", type=int, default=50)
    parser.add_argument("--wd", type=float, default=5e-3)
    parser.add_argument("--adamw-wd", type=float, default=1e-1)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = 2, 20
    torch.set_num_threads(1)
    table = variants(args.wd, args.adamw_wd)
    names = list(table)
    pairs = [(names[1], names[2]), (names[5], names[6])]  # must be identical
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    equal = {p: 0 for p in pairs}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    fit(seeds[0], 1, args.shots, table[names[0]])  # warm-up: imports, data generation
    for i, seed in enumerate(seeds):
        shift = i % len(names)
        states = {}
        for name in names[shift:] + names[:shift]:
            acc, nll, seconds, state = fit(seed, args.epochs, args.shots, table[name])
            results[name].append((acc, nll, seconds))
            states[name] = state
            print(f"seed {seed} {name}: acc {acc:.4f} nll {nll:.4f} {seconds:.1f} s", flush=True)
        for a, b in pairs:
            equal[(a, b)] += identical(states[a], states[b])
    rows = []
    for name in names:
        base = results["SGD" if name.startswith("SGD") else "Adam"]
        r = results[name]
        rows.append(
            [
                name,
                mean_std([x[0] for x in r]),
                mean_std([x[0] - b[0] for x, b in zip(r, base, strict=True)], sign=True),
                mean_std([x[1] for x in r]),
                mean_std([x[1] - b[1] for x, b in zip(r, base, strict=True)], sign=True),
                f"{statistics.mean(x[2] / b[2] for x, b in zip(r, base, strict=True)):.3f}",
            ]
        )
    same = "; ".join(
        f"`{b}` vs `{a}`: identical final weights (`torch.equal` on every tensor) on "
        f"{equal[(a, b)]} of {len(seeds)} seeds"
        for a, b in pairs
    )
    print(same)
    publish(
        "peers_penalty",
        "WeightPenalty beside the optimizer's weight_decay (MNIST-1D CNN, 50 signals a class)",
        [
            "variant",
            "test acc",
            "Δ acc vs no decay",
            "test NLL",
            "Δ NLL vs no decay",
            "fit time / no decay",
        ],
        rows,
        f"MNIST-1D, `Mnist1dDataModule(shots_per_class={args.shots}, val_fraction=0.0)`: "
        f"{10 * args.shots} training signals, the paper's 1,000 test signals; "
        f"`Classifier(Mnist1dCNN(), 10)` (5,210 parameters), batch 100, {args.epochs} epochs, "
        "no validation, no schedule. SGD is the Classifier's (Nesterov momentum 0.9), lr "
        "0.05; Adam and AdamW lr 1e-2. Seeds "
        f"{tuple(seeds)} (initialisation, shuffle and the chosen signals). Mean ± std over "
        "seeds; Δ is the paired difference against the same optimizer without decay, with "
        "its std; the time ratio is each seed's fit over that seed's no-decay fit (same "
        "optimizer), averaged, the variants interleaved in one process with their order "
        "rotated every seed.\n\n"
        f"Bit for bit: {same}. `WeightPenalty(l2=λ)` adds `2λw` to the gradient after "
        "backward; SGD's and Adam's `weight_decay=wd` add `wd·w` to it inside the step: "
        "the same `add` with the same factor when `wd = 2λ`. AdamW's decoupled decay "
        "shrinks the weights by `lr·wd` outside Adam's scaling, a different regulariser "
        "(no L2 penalty equals it), so its row is a separate choice, not a peer of "
        "WeightPenalty; its decay is not tuned here.\n\n"
        f"{findings(results, names)}\n\n"
        "Command: `cd <repo> && PYTHONPATH=src nice -n 10 .venv/bin/python "
        f"benchmarks/peers_penalty.py --seeds {args.seeds} --epochs {args.epochs} "
        f"--shots {args.shots} --wd {args.wd:g} --adamw-wd {args.adamw_wd:g}`.",
    )
    publish_peers(
        "peers_penalty",
        summary_rows(results, names, equal, len(seeds)),
        command="PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/peers_penalty.py "
        f"--seeds {args.seeds} --epochs {args.epochs} --shots {args.shots} --wd {args.wd:g} "
        f"--adamw-wd {args.adamw_wd:g}",
    )


Results = dict[str, list[tuple[float, float, float]]]


def summary_rows(
    results: Results, names: list[str], equal: dict[tuple[str, str], int], seeds: int
) -> list[dict[str, Any]]:
    """`publish_peers` rows: WeightPenalty against the optimizer's own decay, per seed."""
    sgd_wd, sgd_pen, sgd_default, adam_wd, adam_pen = (names[i] for i in (1, 2, 3, 5, 6))
    rows = []
    for recipe, ours, theirs in (
        ("WeightPenalty(l2, biases=True) + SGD", sgd_pen, sgd_wd),
        ("WeightPenalty(l2, biases=True) + Adam", adam_pen, adam_wd),
        ("WeightPenalty(l2) + SGD (weights only, the default)", sgd_default, sgd_wd),
    ):
        same = equal.get((theirs, ours))
        note = "" if same is None else f"final weights identical on {same} of {seeds} seeds"
        time = ratios([x[2] for x in results[ours]], [x[2] for x in results[theirs]])
        for metric, index, higher in (("test accuracy", 0, True), ("test NLL", 1, False)):
            rows.append(
                peer_row(
                    recipe,
                    theirs.split(" (")[0],
                    metric,
                    [x[index] for x in results[ours]],
                    [x[index] for x in results[theirs]],
                    higher_is_better=higher,
                    time_ratio=time,
                    note=note,
                )
            )
    return rows


def findings(results: Results, names: list[str]) -> str:
    """What the run says, with its numbers."""
    sgd, sgd_wd, sgd_pen, sgd_default, adam, adam_wd, adam_pen, adamw = names

    def col(name: str, index: int) -> list[float]:
        return [x[index] for x in results[name]]

    def over(name: str, base: str) -> str:
        return ratio_text(ratios(col(name, 2), col(base, 2)), 3)

    return "\n".join(
        [
            "What it says:",
            "",
            f"- **WeightPenalty(biases=True) beside `weight_decay`** (ours - peer, paired): "
            f"SGD accuracy {paired(col(sgd_pen, 0), col(sgd_wd, 0))}, NLL "
            f"{paired(col(sgd_pen, 1), col(sgd_wd, 1), False)}; Adam accuracy "
            f"{paired(col(adam_pen, 0), col(adam_wd, 0))}, NLL "
            f"{paired(col(adam_pen, 1), col(adam_wd, 1), False)}.",
            f"- **What L2 does here** (SGD `weight_decay` against no decay): accuracy "
            f"{paired(col(sgd_wd, 0), col(sgd, 0))}, NLL "
            f"{paired(col(sgd_wd, 1), col(sgd, 1), False)}.",
            f"- **The default (weights only) against decaying every parameter** (SGD): accuracy "
            f"{paired(col(sgd_default, 0), col(sgd_wd, 0))}, NLL "
            f"{paired(col(sgd_default, 1), col(sgd_wd, 1), False)}.",
            f"- **AdamW** (decoupled, untuned) against Adam's coupled L2: accuracy "
            f"{paired(col(adamw, 0), col(adam_wd, 0))}; a different regulariser, not a peer.",
            f"- **Time** (fit over the same optimizer without decay, per seed): SGD "
            f"`weight_decay` {over(sgd_wd, sgd)}, WeightPenalty {over(sgd_pen, sgd)} "
            f"(weights only {over(sgd_default, sgd)}); Adam `weight_decay` "
            f"{over(adam_wd, adam)}, WeightPenalty {over(adam_pen, adam)}.",
        ]
    )


if __name__ == "__main__":
    main()
