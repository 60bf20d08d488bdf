"""Adversarial training on digits and breast cancer: clean and PGD accuracy, and its cost.

For each dataset and seed, three fits side by side, interleaved: standard training,
FGSM-fast training (`AdversarialTraining(method="fgsm")`, Wong et al. 2020) and PGD-k
training (`AdversarialTraining(method="pgd", steps=K)`, Madry et al. 2018), all at the same
training epsilon. Each fitted model is then evaluated on the test split with
`RobustnessEvaluation` (L-inf PGD with a random start, ``EVAL_STEPS`` steps, at several
epsilons; epsilon 0 is the clean accuracy) and with a one-step FGSM at the training
epsilon (`robust_accuracy`), which, much higher than PGD, is the sign of catastrophic
overfitting. The fit wall time of each method is divided by that of the standard fit of
the same seed. Writes results/robustness.md.

- digits: pixels in [0, 1] (`DigitsDataModule` divides by 16), so ``clip=(0, 1)``; an MLP
  64 -> 256 -> 256 -> 10.
- breast cancer: 30 standardised features (`TabularDataModule`), no valid range, so no
  clip; epsilons in standard deviations; an MLP 30 -> 64 -> 64 -> 2.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/robustness.py`` (``--quick``: one seed,
few epochs, for development).
"""

import argparse
import logging
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.pytorch import Callback, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish, quiet_trainer

from lightning_recipes._core.tables import format_table
from lightning_recipes.data import DigitsDataModule, TabularDataModule
from lightning_recipes.modules import MLP, Classifier
from lightning_recipes.robustness import AdversarialTraining, RobustnessEvaluation, robust_accuracy

logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

METHODS = ("standard", "FGSM-fast", "PGD-7")
PGD_STEPS = 7
EVAL_STEPS = 20


@dataclass(frozen=True)
class Setting:
    """One dataset: how to load it, the model, the radii and the valid input range."""

    name: str
    hidden: tuple[int, ...]
    train_eps: float
    epsilons: tuple[float, float, float]  # half, once and twice the training epsilon
    clip: tuple[float, float] | None
    epochs: int
    lr: float

    def data(self, seed: int) -> DigitsDataModule:
        if self.name == "digits":
            return DigitsDataModule(batch_size=64, seed=seed)
        return TabularDataModule("breast_cancer", batch_size=32, seed=seed)


SETTINGS = (
    Setting("digits", (256, 256), 0.1, (0.05, 0.1, 0.2), (0.0, 1.0), 30, 3e-3),
    Setting("digits", (256, 256), 0.2, (0.1, 0.2, 0.4), (0.0, 1.0), 30, 3e-3),
    Setting("breast cancer", (64, 64), 0.25, (0.125, 0.25, 0.5), None, 40, 3e-3),
)


def callbacks(setting: Setting, method: str) -> list[Callback]:
    clip = list(setting.clip) if setting.clip is not None else None
    if method == "standard":
        return []
    if method == "FGSM-fast":
        return [AdversarialTraining(eps=setting.train_eps, method="fgsm", clip=clip)]
    return [AdversarialTraining(eps=setting.train_eps, method="pgd", steps=PGD_STEPS, clip=clip)]


def run(setting: Setting, method: str, seed: int, epochs: int) -> dict[str, float]:
    """Fit one model; its fit time, PGD accuracies and FGSM accuracy at the training eps."""
    seed_everything(seed)
    data = setting.data(seed)
    data.setup("fit")
    num_classes, num_features = data.num_classes, data.num_features
    model = Classifier(MLP(num_features, hidden=setting.hidden), num_classes, lr=setting.lr)
    evaluation = RobustnessEvaluation(
        epsilons=setting.epsilons,
        attack="pgd",
        steps=EVAL_STEPS,
        clip=list(setting.clip) if setting.clip is not None else None,
        num_samples=10_000,  # the whole test split
        plot=False,
    )
    trainer = quiet_trainer(
        max_epochs=epochs,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[*callbacks(setting, method), evaluation],
    )
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=data)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    trainer.test(model, datamodule=data, verbose=False)
    result = {f"pgd@{e:g}": a for e, a in evaluation.results["test"].items()}
    test = data.test_dataset
    assert test is not None
    fgsm = robust_accuracy(
        model, test.features, test.targets, [setting.train_eps], "fgsm", clip=setting.clip
    )
    return {**result, "fgsm": fgsm[setting.train_eps], "seconds": seconds, "cpu": cpu}


def cell(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` (the value alone for one seed)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs")
    args = parser.parse_args()
    seeds = (0,) if args.quick else (0, 1, 2)
    torch.set_num_threads(1)  # a tiny MLP: one thread, so CPU time measures the work
    rows = []
    baseline: dict[str, float] = {}
    start = time.perf_counter()
    for setting in SETTINGS:
        run(setting, "PGD-7", 0, 1)  # warm-up (imports, first-call costs), not counted
        epochs = max(2, setting.epochs // 5) if args.quick else setting.epochs
        found: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
        for seed in seeds:
            for method in METHODS:  # side by side: the same seed, one after the other
                found[method].append(run(setting, method, seed, epochs))
                print(setting.name, method, seed, found[method][-1],
                      f"{time.perf_counter() - start:.0f}s", flush=True)  # fmt: skip
        for method in METHODS:
            runs, base = found[method], found["standard"]
            wall = [r["seconds"] / b["seconds"] for r, b in zip(runs, base, strict=True)]
            cpu = [r["cpu"] / b["cpu"] for r, b in zip(runs, base, strict=True)]
            rows.append(
                [
                    f"{setting.name}, ε = {setting.train_eps:g}",
                    method,
                    *(cell([r[f"pgd@{e:g}"] for r in runs]) for e in (0.0, *setting.epsilons)),
                    cell([r["fgsm"] for r in runs]),
                    cell(wall, 1),
                    cell(cpu, 1),
                ]
            )
        standard = statistics.mean(r["seconds"] for r in found["standard"])
        baseline[f"{setting.name} ε = {setting.train_eps:g}, {epochs} epochs"] = standard
    headers = ["dataset, training ε", "training", "clean", "PGD ε/2", "PGD ε", "PGD 2ε",
               "FGSM ε", "fit wall time (x)", "fit CPU time (x)"]  # fmt: skip
    if args.quick:  # a check of the script: print, write nothing
        print(format_table(headers, rows))
        return
    note = ", ".join(f"{name} {s:.1f} s" for name, s in baseline.items())
    digits, tabular = SETTINGS[0], SETTINGS[-1]
    publish(
        "robustness",
        "Adversarial training: clean and PGD accuracy, and the cost",
        headers,
        rows,
        f"""
Test accuracy (mean ± std over seeds {list(seeds)}) of one model per training method,
under no attack ("clean") and under an L-inf PGD attack of {EVAL_STEPS} steps with a
random start (`RobustnessEvaluation(attack="pgd", steps={EVAL_STEPS})` on the whole test
split) at half, once and twice the training radius ε; "FGSM ε" is the one-step FGSM
(`robust_accuracy(..., "fgsm")`) at ε. All three methods train at ε: FGSM-fast is
`AdversarialTraining(method="fgsm")` (random start, step 1.25 ε), PGD-{PGD_STEPS} is
`AdversarialTraining(method="pgd", steps={PGD_STEPS})` (step 2.5 ε / {PGD_STEPS}); the whole
batch is attacked (ratio 1). "fit wall time (x)" and "fit CPU time (x)": the time of
`trainer.fit` divided by that of the standard fit of the same seed, run in the same
process one after the other, on one torch thread (mean standard fit: {note}). Both
include Lightning's per-step overhead, the same for all three, so they are lower than
the ratio of gradient computations per step (1 : 2 : {PGD_STEPS + 1}); the machine is
shared, so the wall-time ratio is the noisier one.

- digits: pixels in [0, 1], attacks clipped to [0, 1];
  `Classifier(MLP(64, {digits.hidden}))`, AdamW {digits.lr:g}, batch 64, {digits.epochs}
  epochs; test split 270 images.
- breast cancer: 30 standardised features (no valid range, so no clip; ε in standard
  deviations of the training split); `Classifier(MLP(30, {tabular.hidden}))`, AdamW
  {tabular.lr:g}, batch 32, {tabular.epochs} epochs; test split 86 samples.

The last weights are tested (no validation, no early stopping).
""",
    )


if __name__ == "__main__":
    main()
