"""Attribution methods: do they find the informative features, do they add up, what do they cost?

(a) Faithfulness: `make_classification` with 5 informative features out of 30
(``shuffle=False``, so the informative ones are features 0-4), an MLP trained on it, then
precision@5 of each method's global importance (mean |attribution| over 256 test inputs):
the share of the 5 most important features that are truly informative.
(b) Completeness: the gap |sum(attributions) - (f(x) - f(baseline))| of integrated
gradients as n_steps grows.
(c) Cost: seconds per 64 inputs for each method, and the overhead of the `Attribution`
callback at its defaults on a 15-epoch digits fit (timed side by side).

Run: ``.venv/bin/python benchmarks/attribution.py`` (about 2 minutes on 2 CPU cores).
"""

import logging
import tempfile
import time
import warnings
from typing import Any

import numpy as np
import torch
from _common import publish, quiet_trainer
from lightning.pytorch import seed_everything
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from lightning_recipes.attribution import METHODS, Attribution, explain
from lightning_recipes.data import ArrayDataModule, DigitsDataModule
from lightning_recipes.modules import MLP, Classifier

EXTRA: dict[str, dict[str, Any]] = {"occlusion": {"sliding_window_shapes": (1,)}}


def tabular_model() -> tuple[Classifier, torch.Tensor]:
    seed_everything(0, verbose=False)
    x, y = make_classification(
        n_samples=3000, n_features=30, n_informative=5, n_redundant=0, n_classes=3,
        shuffle=False, random_state=0,
    )  # fmt: skip
    x = StandardScaler().fit_transform(x).astype(np.float32)
    model = Classifier(MLP(30, [64, 64]), num_classes=3, lr=3e-3)
    data = ArrayDataModule(train=(x[:2500], y[:2500]), val_fraction=0.1, batch_size=64)
    quiet_trainer(max_epochs=20, num_sanity_val_steps=0).fit(model, data)
    return model, torch.from_numpy(x[2500:2756])


def faithfulness(model: Classifier, inputs: torch.Tensor) -> list[list[Any]]:
    rows = []
    background = inputs[:16]
    for method in METHODS:
        baselines = background if method in ("gradient_shap", "deep_lift_shap") else None
        start = time.perf_counter()
        result = explain(model, inputs, method, baselines=baselines, **EXTRA.get(method, {}))
        seconds = time.perf_counter() - start
        importance = result.attributions.abs().mean(dim=0)
        top5 = set(importance.argsort(descending=True)[:5].tolist())
        precision = len(top5 & set(range(5))) / 5
        rows.append([method, f"{precision:.1f}", f"{seconds * 64 / len(inputs):.3f}"])
    return rows


def completeness(model: Classifier, inputs: torch.Tensor) -> list[list[Any]]:
    rows = []
    for steps in (5, 10, 25, 50, 100, 200):
        result = explain(model, inputs[:64], "integrated_gradients", n_steps=steps)
        assert result.completeness_gap is not None
        gap = result.completeness_gap
        rows.append([f"IG n_steps={steps}", f"{float(gap.mean()):.2e}", f"{float(gap.max()):.2e}"])
    return rows


class TimedAttribution(Attribution):
    """Attribution that adds up the wall time spent in its own work (measured directly)."""

    seconds = 0.0

    def _run(self, trainer: Any, pl_module: Any, when: str) -> None:
        start = time.perf_counter()
        super()._run(trainer, pl_module, when)
        self.seconds += time.perf_counter() - start


def fit_seconds(plot: bool) -> tuple[float, float]:
    """Fit time of a 15-epoch digits fit, and the time spent inside the callback."""
    seed_everything(0, verbose=False)
    model = Classifier(MLP(64, [128, 64]), num_classes=10, lr=3e-3)
    callback = TimedAttribution(plot=plot)
    trainer = quiet_trainer(
        max_epochs=15, callbacks=[callback], num_sanity_val_steps=0,
        default_root_dir=tempfile.mkdtemp(),  # the callback's outputs, not in the repo
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, DigitsDataModule(batch_size=64))
    return time.perf_counter() - start, callback.seconds


def main() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    model, inputs = tabular_model()
    rows = faithfulness(model, inputs)
    gaps = completeness(model, inputs)
    overhead = []
    for plot, label in ((True, "Attribution()"), (False, "Attribution(plot=False)")):
        runs = [fit_seconds(plot) for _ in range(3)]
        fit = float(np.median([r[0] for r in runs]))
        inside = float(np.median([r[1] for r in runs]))
        share = f"{100 * inside / fit:.1f}% of the fit"
        overhead.append([f"{label}, digits fit", f"{inside:.3f} s of {fit:.2f} s", share])
    table = [[*r, "", ""] for r in rows]
    table += [[name, "", "", mean, worst] for name, mean, worst in gaps]
    table += [[name, "", "", value, change] for name, value, change in overhead]
    notes = """
(a) MLP 30-64-64-3 trained 20 epochs on make_classification(3000 samples, 30 features, 5
informative, shuffle=False: features 0-4 are the informative ones, the other 25 noise);
precision@5 of the mean |attribution| over 256 held-out inputs, target = predicted class;
SHAP-style methods use 16 held-out inputs as background, the others zero baselines. s per
64 inputs: wall time of explain() on 256 inputs, scaled. (b) Completeness gap of integrated
gradients on 64 inputs (mean and max over inputs). (c) Time spent inside the callback, measured
directly (the machine is too noisy for a difference of two fit times), median of 3 fits
of 15 epochs, for `Attribution()` (32 validation inputs, gradient_shap, at fit end) and
`Attribution(plot=False)`: a fixed cost per explanation, most of it the PNG of the
importance chart, not a share of each step.
"""
    publish(
        "attribution",
        "Attribution: faithfulness, completeness and cost",
        [
            "method / setting",
            "precision@5",
            "s per 64 inputs",
            "gap mean / time",
            "gap max / overhead",
        ],
        table,
        notes,
    )


if __name__ == "__main__":
    main()
