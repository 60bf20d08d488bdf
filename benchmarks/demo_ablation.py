"""Which recipe pulls "every recipe at once" down? `ablate` on the demo's config.

`demo_recipes.py` shows that adding every recipe of ``lightning-recipes demo --recipes``
at once ends below class weighting alone. This runs ``lightning-recipes ablate`` on the
demo's config with all of them (``lightning-recipes demo --recipes ... --print-config``):
each recipe left out in turn, 3 seeds, test accuracy. It replaced the hand-written
leave-one-out script: the same runs (checked here: the config's runs equal the demo's,
seed by seed), now from the command a user runs on their own config.

Run: ``.venv/bin/python benchmarks/demo_ablation.py`` (about 10 minutes on 2 CPU cores).
"""

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import publish

from lightning_recipes.demo import DEMO_RECIPES, run_demo
from lightning_recipes.demo_config import demo_config
from lightning_recipes.tuning import ablate

SEEDS = 3
CHECKED = (("cutmix", "CutMix"), ("class-weighting", "ClassWeighting"))
IMBALANCE = {3: 0.1, 8: 0.1}
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "img" / "ablation_demo.png"


def main() -> None:
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as out:
        config = demo_config(DEMO_RECIPES, imbalance=IMBALANCE, seed=0)
        result = ablate(
            config,
            seeds=SEEDS,
            monitor="test_acc",
            mode="max",
            out_dir=out,
            study_name="demo-ablation",
            progress=False,
        )
        shutil.copyfile(result.out / "ablation.png", FIGURE)
        # The same runs by the demo's own route (the retired script's): every recipe, and
        # every recipe but the two the retired table singled out.
        every = next(iter(result.runs))
        assert len(every) == len(DEMO_RECIPES)
        checks = []
        for left_out, factor in ((None, None), *CHECKED):
            recipes = tuple(r for r in DEMO_RECIPES if r != left_out)
            on = tuple(f for f in every if f != factor)
            demo = [
                run_demo(
                    recipes=recipes, imbalance=IMBALANCE, seed=s, out_dir=out, progress=False
                ).report.test_metrics["test_acc"]
                for s in result.seeds
            ]
            checks.append((left_out or "nothing", demo, result.runs[on]))
    by_config = result.runs[every]
    same = all(demo == runs for _, demo, runs in checks)
    check_rows = "\n".join(
        f"| {left_out} | {np.mean(demo):.3f} ± {np.std(demo):.3f} | "
        f"{np.mean(runs):.3f} ± {np.std(runs):.3f} | {'yes' if demo == runs else 'NO'} |"
        for left_out, demo, runs in checks
    )
    rows = [
        [
            e.factor,
            f"{100 * e.mean:+.1f} ± {100 * e.std:.1f}",
            f"[{100 * e.low:+.1f}, {100 * e.high:+.1f}]",
            e.verdict,
            f"{result.time_ratio[e.factor]:.2f}x",
            f"{result.cpu_ratio[e.factor]:.2f}x" if result.cpu_ratio else "—",
            f"{result.memory_ratio[e.factor]:.2f}x" if result.memory_ratio else "—",
        ]
        for e in result.effects
    ]
    extra, runs = result.overhead
    publish(
        "demo_ablation",
        "`ablate` on the demo with every recipe: which ones pay off",
        [
            "Recipe",
            "Effect on test accuracy (pp)",
            "95 % interval",
            "Verdict",
            "Wall time with / without",
            "CPU time with / without",
            "Peak memory with / without",
        ],
        rows,
        f"`lightning-recipes ablate -c demo.yaml --monitor test_acc --seeds {SEEDS}` on "
        "`lightning-recipes demo --recipes <all 16> --imbalance 3:0.1,8:0.1 --print-config`: "
        "digits, classes 3 and 8 kept at 10 % of the training split, MLP 128-64, 15 epochs, "
        f"seeds {result.seeds} (the split follows the seed). An effect is the test accuracy "
        "with every recipe minus the accuracy with that one left out, so positive helps "
        "and negative means the recipe hurts in this company; the interval is Student's t "
        "over the paired seeds, and only an interval that excludes 0 is a verdict.\n\n"
        f"With every recipe: test accuracy {np.mean(by_config):.3f} ± {np.std(by_config):.3f}. "
        "The same runs by the demo's own route (`run_demo`, what the retired "
        "`demo_leave_one_out.py` ran) are "
        f"{'identical seed by seed' if same else 'NOT identical'}:\n\n"
        "| Left out | `run_demo` (the retired script) | `ablate` on the config | identical |\n"
        f"|---|---|---|---|\n{check_rows}\n\n"
        "Two rows measure a different question than the retired script did, by design: "
        "`Freezer` is left out of a config whose backbone is still pretrained (the script "
        "dropped the pretraining too), and `SnapshotEnsemble` is left out of a config that "
        "keeps its cosine-restart schedule (the script switched to one-cycle); the accuracy "
        "is the final weights' either way.\n\n"
        f"ablate's own cost: {extra:.1f} s beside {runs:.1f} s of runs "
        f"({100 * extra / (extra + runs):.1f} %). Time ratios are geometric means over the "
        "seeds; wall time moves with whatever else the machine runs, CPU time (this "
        "process's) far less. Peak memory is the process's peak resident memory during each "
        "run, baseline included. Figure: `docs/img/ablation_demo.png`.",
    )


if __name__ == "__main__":
    main()
