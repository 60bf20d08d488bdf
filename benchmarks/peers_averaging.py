"""Weight averaging beside Lightning's: WeightAverage (SWA, EMA) vs StochasticWeightAveraging
and EMAWeightAveraging, on MNIST-1D.

The paper's CNN (`Mnist1dCNN` + the `Classifier` head, 5,210 parameters) on the paper's
4,000 training signals (`Mnist1dDataModule(val_fraction=0.0)`), Adam at a constant lr 1e-2,
batch 100, E = 50 epochs (2,000 steps), no validation; tested on the 1,000 test signals.
Per seed (initialisation and shuffle), every variant trains the same trajectory (averaging
never changes the live weights), so the paired differences isolate the average:

- none: the live weights after E epochs;
- ours SWA: `WeightAverage("swa", start_epoch=37)`, the mean of the epoch ends 37..49;
- Lightning SWA: `StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=37)`: the same
  constant rate (its SWALR schedule then changes nothing), its own averaging window;
- ours EMA: `WeightAverage("ema")` with the decay chosen from the run's length
  (`ema_decay_for(2000)` = 0.995, a horizon of 200 steps);
- Lightning EMA, same decay: `EMAWeightAveraging(decay=0.995)`; its final weights are
  compared with ours tensor by tensor (`torch.equal`);
- Lightning EMA, its default decay 0.999 (what a user gets without choosing).

Test accuracy and NLL (mean -log p(true class)), mean ± std over seeds, the paired change
against none, and the fit time relative to none (variants interleaved in one process,
their order rotated every seed; one torch thread).

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/peers_averaging.py [--quick]``.
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
from lightning.pytorch.callbacks import EMAWeightAveraging, StochasticWeightAveraging

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    accuracy_nll,
    identical,
    mean_std,
    paired_verdict,
    publish,
    publish_peers,
    quiet_trainer,
    state_copy,
    test_log_probs,
    timed_fit,
)
from _peers import paired, peer_row, ratio_text, ratios

from lightning_recipes.averaging import WeightAverage, ema_decay_for
from lightning_recipes.data import Mnist1dDataModule
from lightning_recipes.modules import Classifier, Mnist1dCNN

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

LR, BATCH, STEPS_PER_EPOCH = 1e-2, 100, 40


def variants(epochs: int) -> dict[str, Callable[[], list[Callback]]]:
    start = round(epochs * 0.75) - 1  # 37 of 50
    decay = ema_decay_for(epochs * STEPS_PER_EPOCH)
    return {
        "none": lambda: [],
        f"ours SWA (epochs {start}-{epochs - 1})": lambda: [
            WeightAverage("swa", start_epoch=start)
        ],
        f"Lightning SWA (swa_epoch_start={start})": lambda: [
            StochasticWeightAveraging(swa_lrs=LR, swa_epoch_start=start)
        ],
        f"ours EMA (decay from the run: {decay:.4g})": lambda: [WeightAverage("ema")],
        f"Lightning EMA (decay={decay:.4g})": lambda: [EMAWeightAveraging(decay=decay)],
        "Lightning EMA (default decay=0.999)": lambda: [EMAWeightAveraging()],
    }


def fit(seed: int, epochs: int, callbacks: list[Callback]) -> tuple[float, float, float, dict]:
    seed_everything(seed, verbose=False)
    data = Mnist1dDataModule(batch_size=BATCH, val_fraction=0.0, seed=seed)
    model = Classifier(Mnist1dCNN(), 10, lr=LR, optimizer="adam")
    trainer = quiet_trainer(max_epochs=epochs, callbacks=callbacks, limit_val_batches=0)
    seconds = timed_fit(trainer, model, data)
    acc, nll = accuracy_nll(*test_log_probs(model, data))
    return acc, nll, seconds, state_copy(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="2 seeds, 8 epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = 2, 8
    torch.set_num_threads(1)
    table = variants(args.epochs)
    names = list(table)
    ours_ema, their_ema = names[3], names[4]
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    same_weights: list[bool] = []
    max_diff: list[float] = []
    for seed in range(args.seeds):
        shift = seed % len(names)
        states = {}
        for name in names[shift:] + names[:shift]:
            acc, nll, seconds, state = fit(seed, args.epochs, table[name]())
            results[name].append((acc, nll, seconds))
            states[name] = state
            print(f"seed {seed} {name}: acc {acc:.4f} nll {nll:.4f} {seconds:.1f} s", flush=True)
        a, b = states[ours_ema], states[their_ema]
        same_weights.append(identical(a, b))
        max_diff.append(max(float((a[k] - b[k]).abs().max()) for k in a))
    base = results["none"]
    rows = []
    for name in names:
        r = results[name]
        rows.append(
            [
                name,
                mean_std([x[0] for x in r]),
                mean_std(sign=True, values=[x[0] - b[0] for x, b in zip(r, base, strict=True)]),
                mean_std([x[1] for x in r]),
                mean_std(sign=True, values=[x[1] - b[1] for x, b in zip(r, base, strict=True)]),
                f"{statistics.mean(x[2] / b[2] for x, b in zip(r, base, strict=True)):.3f}",
            ]
        )
    seeds = tuple(range(args.seeds))
    same = (
        f"identical (`torch.equal` on every tensor) on {sum(same_weights)} of {len(same_weights)} "
        f"seeds, largest absolute difference {max(max_diff):.1e}"
    )
    print("ours EMA vs Lightning EMA at the same decay:", same)
    publish(
        "peers_averaging",
        "Weight averaging beside Lightning's SWA and EMA callbacks (MNIST-1D CNN)",
        ["variant", "test acc", "Δ acc vs none", "test NLL", "Δ NLL vs none", "fit time / none"],
        rows,
        f"MNIST-1D, the paper's 4,000 training / 1,000 test signals, `Mnist1dCNN` + "
        f"`Classifier` head (5,210 parameters), Adam lr {LR:g} constant, batch {BATCH}, "
        f"{args.epochs} epochs ({args.epochs * STEPS_PER_EPOCH} steps), no validation; seeds "
        f"{seeds} (initialisation and shuffle). Mean ± std over seeds; Δ is the paired "
        "difference against `none` (same seed, same live trajectory) with its std over seeds; "
        "the time ratio is each seed's fit time over that seed's `none` fit, averaged, the "
        "variants interleaved in one process with their order rotated every seed. NLL is "
        "the mean -log p(true class) on the test signals.\n\n"
        f"Our EMA against Lightning's `EMAWeightAveraging` at the same decay: final weights "
        f"{same}. Lightning's `StochasticWeightAveraging` swaps in its SWALR schedule; at "
        "`swa_lrs` equal to the constant rate it changes nothing, and its window differs "
        "from ours by its own epoch counting (see the anchors: it averages from epoch "
        "start - 2 and the last epoch never enters). No BatchNorm in this CNN, so neither "
        "callback's BatchNorm handling acts here.\n\n"
        f"{findings(results, names, same_weights, max(max_diff))}\n\n"
        "Command: `cd <repo> && PYTHONPATH=src nice -n 10 .venv/bin/python "
        f"benchmarks/peers_averaging.py --seeds {args.seeds} --epochs {args.epochs}`.",
    )
    publish_peers(
        "peers_averaging",
        summary_rows(results, names, same_weights, max(max_diff)),
        command=f"PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/peers_averaging.py "
        f"--seeds {args.seeds} --epochs {args.epochs}",
    )


Results = dict[str, list[tuple[float, float, float]]]


def column(results: Results, name: str, index: int) -> list[float]:
    return [x[index] for x in results[name]]


def summary_rows(
    results: Results, names: list[str], same: list[bool], max_diff: float
) -> list[dict[str, Any]]:
    """`publish_peers` rows: SWA and EMA against Lightning's, accuracy and NLL per seed."""
    none, ours_swa, their_swa, ours_ema, their_ema, default_ema = names
    rows = []
    for recipe, ours, peer, theirs, note in (
        ('WeightAverage("swa")', ours_swa, "Lightning StochasticWeightAveraging", their_swa, ""),
        (
            'WeightAverage("ema")',
            ours_ema,
            "Lightning EMAWeightAveraging, same decay",
            their_ema,
            f"final weights identical on {sum(same)} of {len(same)} seeds "
            f"(largest difference {max_diff:.1e})",
        ),
        (
            'WeightAverage("ema")',
            ours_ema,
            "Lightning EMAWeightAveraging(), its default decay 0.999",
            default_ema,
            "",
        ),
    ):
        time = ratios(column(results, ours, 2), column(results, theirs, 2))
        for metric, index, higher in (("test accuracy", 0, True), ("test NLL", 1, False)):
            rows.append(
                peer_row(
                    recipe,
                    peer,
                    metric,
                    column(results, ours, index),
                    column(results, theirs, index),
                    higher_is_better=higher,
                    time_ratio=time,
                    note=note,
                    baseline={"name": none, "values": column(results, none, index)},
                )
            )
    return rows


def findings(results: Results, names: list[str], same: list[bool], max_diff: float) -> str:
    """What the run says, with its numbers: level or not, the effect, the defaults, time."""
    none, ours_swa, their_swa, ours_ema, their_ema, default_ema = names

    def col(name: str, index: int) -> list[float]:
        return column(results, name, index)

    def over_none(name: str) -> str:
        return ratio_text(ratios(col(name, 2), col(none, 2)), 3)

    effect = {
        name: (
            mean_std([a - b for a, b in zip(col(name, 1), col(none, 1), strict=True)], True),
            paired_verdict(col(name, 1), col(none, 1), higher_is_better=False),
        )
        for name in (ours_swa, ours_ema)
    }
    appears = all(v == "ahead" for _, v in effect.values())
    return "\n".join(
        [
            "What it says:",
            "",
            f"- **SWA beside Lightning's**: test accuracy "
            f"{paired(col(ours_swa, 0), col(their_swa, 0))}, NLL "
            f"{paired(col(ours_swa, 1), col(their_swa, 1), False)} (ours - Lightning's, "
            "paired; level means within two standard errors over the seeds).",
            f"- **EMA beside Lightning's at the same decay**: accuracy "
            f"{paired(col(ours_ema, 0), col(their_ema, 0))}, NLL "
            f"{paired(col(ours_ema, 1), col(their_ema, 1), False)}; final weights identical "
            f"on {sum(same)} of {len(same)} seeds (largest difference {max_diff:.1e}).",
            f"- **The literature's effect** (NLL against no averaging, paired): SWA "
            f"{effect[ours_swa][0]} ({effect[ours_swa][1]}), EMA {effect[ours_ema][0]} "
            f"({effect[ours_ema][1]}): "
            + ("it appears." if appears else "it does not clear the seed noise on every row."),
            f"- **Defaults**: Lightning's `EMAWeightAveraging()` (decay 0.999) against ours "
            f"(decay from the run's length): accuracy "
            f"{paired(col(ours_ema, 0), col(default_ema, 0))}, NLL "
            f"{paired(col(ours_ema, 1), col(default_ema, 1), False)}.",
            f"- **Time** (fit over none's, per seed): SWA ours {over_none(ours_swa)}, "
            f"Lightning's {over_none(their_swa)}; EMA ours {over_none(ours_ema)}, Lightning's "
            f"{over_none(their_ema)} (same decay), {over_none(default_ema)} (0.999).",
        ]
    )


if __name__ == "__main__":
    main()
