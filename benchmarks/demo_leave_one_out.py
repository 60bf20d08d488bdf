"""Which recipe pulls "every recipe at once" down? The demo with all of them, minus one.

`demo_recipes.py` shows that adding every recipe of ``lightning-recipes demo --recipes``
at once ends below class weighting alone. This leaves each recipe out in turn (same data,
seeds and settings as `demo_recipes.py`) and reports the test accuracy, its change
against all of them (paired by seed), and the recall of the two rare classes.

Run: ``.venv/bin/python benchmarks/demo_leave_one_out.py`` (about 20 minutes on 2 CPU
cores).
"""

import logging
import tempfile
import warnings

import numpy as np
from _common import publish
from demo_recipes import IMBALANCE, SEEDS, measure

from lightning_recipes.demo import DEMO_RECIPES


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as out:
        every = np.array([measure(DEMO_RECIPES, seed, out) for seed in SEEDS])
        runs = [("nothing (all 16)", every)]
        for left_out in DEMO_RECIPES:
            recipes = tuple(r for r in DEMO_RECIPES if r != left_out)
            runs.append((left_out, np.array([measure(recipes, seed, out) for seed in SEEDS])))
            print(left_out, runs[-1][1][:, 0], flush=True)
    for label, scores in runs:
        change = (scores[:, 0] - every[:, 0]) * 100
        rows.append([
            label,
            f"{scores[:, 0].mean():.3f} ± {scores[:, 0].std():.3f}",
            f"{change.mean():+.1f} ± {change.std():.1f}",
            f"{scores[:, 1].mean():.3f} ± {scores[:, 1].std():.3f}",
        ])  # fmt: skip
    publish(
        "demo_leave_one_out",
        "The demo with every recipe, minus one",
        ["Left out", "Test accuracy", "Change vs all (pp)", "Recall of the rare classes"],
        rows,
        f"Digits, classes {sorted(IMBALANCE)} kept at 10% of the training split, MLP 128-64, "
        f"15 epochs, seeds {SEEDS}; every recipe of `lightning-recipes demo --recipes` "
        f"({len(DEMO_RECIPES)}) but the one named. With `snapshot-ensemble` in, the schedule "
        "is cosine restarts (three cycles) and the accuracy is the last snapshot's; without "
        "it, one-cycle. A positive change means the recipe hurts in this company.",
    )


if __name__ == "__main__":
    main()
