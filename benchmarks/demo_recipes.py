"""Do the recipes compose? The demo with each recipe alone, and with all of them together.

The demo trains the library's MLP classifier on the bundled digits with two rare classes
(3 and 8 kept at 10% of the training split), 15 epochs, AdamW with a one-cycle schedule,
and tests it. Each row adds recipes exactly as ``lightning-recipes demo --recipes ...``
does. Reported: test accuracy and the mean recall of the two rare classes, mean ± std over
3 seeds. The issue this answers: all recipes together must end at least as accurate as the
best single recipe (within 1 point).

Run: ``.venv/bin/python benchmarks/demo_recipes.py`` (about 6 minutes on 2 CPU cores).
"""

import logging
import tempfile
import warnings

import numpy as np
from _common import publish

from lightning_recipes.demo import DEMO_RECIPES, run_demo
from lightning_recipes.imbalance.metrics import per_class_recall

SEEDS = (0, 1, 2)
IMBALANCE = {3: 0.1, 8: 0.1}
FIVE = ("class-weighting", "find-lr", "early-stopping", "freeze", "attribution")
assert set(FIVE) <= set(DEMO_RECIPES)
NOT_ADVERSARIAL = tuple(r for r in DEMO_RECIPES if r != "adversarial")
ROWS: list[tuple[str, ...]] = [
    (),
    *((recipe,) for recipe in FIVE),
    FIVE,
    tuple(r for r in FIVE if r != "freeze"),
    ("adversarial",),
    ("weight-average",),
    ("snapshot-ensemble",),
    (*FIVE, "weight-average"),
    DEMO_RECIPES,
    NOT_ADVERSARIAL,
]


def measure(recipes: tuple[str, ...], seed: int, out: str) -> tuple[float, float, float]:
    result = run_demo(
        name=f"{'-'.join(recipes) or 'none'}-{seed}",
        recipes=recipes,
        imbalance=IMBALANCE,
        seed=seed,
        out_dir=out,
        progress=False,
    )
    assert result.report.confusion is not None
    recall = per_class_recall(result.report.confusion)
    rare = float(np.mean([float(recall[c]) for c in IMBALANCE]))
    metrics = result.report.test_metrics
    return metrics["test_acc"], rare, metrics.get("snapshot_ensemble_test_acc", float("nan"))


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for recipes in ROWS:
            scores = np.array([measure(recipes, seed, out) for seed in SEEDS])
            mean, std = scores.mean(axis=0), scores.std(axis=0)
            label = ", ".join(recipes) if recipes else "no recipe"
            if recipes == FIVE:
                label = "all five"
            elif recipes == (*FIVE, "weight-average"):
                label = "all five, weight-average"
            elif recipes == DEMO_RECIPES:
                label = f"all {len(DEMO_RECIPES)} demo recipes"
            elif recipes == NOT_ADVERSARIAL:
                label = "all but adversarial"
            ensemble = "—" if np.isnan(mean[2]) else f"{mean[2]:.3f} ± {std[2]:.3f}"
            rows.append(
                [label, f"{mean[0]:.3f} ± {std[0]:.3f}", f"{mean[1]:.3f} ± {std[1]:.3f}", ensemble]
            )
            print(rows[-1], flush=True)
    publish(
        "demo_recipes",
        "The demo with each recipe alone and all together",
        ["Recipes", "Test accuracy", "Recall of the rare classes 3, 8", "Snapshot ensemble"],
        rows,
        f"Digits, classes 3 and 8 kept at 10% of the training split, MLP 128-64, 15 epochs, "
        f"AdamW + one-cycle, seeds {SEEDS}. `freeze` pretrains the backbone on the training "
        "split under a separate head first (see the transfer-learning page). "
        "`snapshot-ensemble` trains with cosine restarts (three cycles) instead of one-cycle; "
        "its first columns are the last snapshot's, the last column the ensemble of the "
        "three snapshots. The last row adds every recipe of `lightning-recipes demo "
        "--recipes` at once.",
    )


if __name__ == "__main__":
    main()
