"""Baseline: the bundled Classifier on digits, the reference every recipe is compared to.

For each backbone (MLP on 64 features, SmallCNN on 1x8x8 images) and three seeds: train
15 epochs with AdamW + one-cycle at lr 3e-3, then report test accuracy, macro F1 and
training time. Later recipes (early stopping, LR finder, class weighting, ...) quote their
gains against these figures.
"""

import statistics
import sys
import time
from pathlib import Path

from lightning.pytorch import seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import publish, quiet_trainer

from lightning_recipes.data import DigitsDataModule
from lightning_recipes.modules import MLP, Classifier, SmallCNN

SEEDS = (0, 1, 2)
EPOCHS = 15


def run(model_name: str, seed: int) -> dict[str, float]:
    seed_everything(seed, verbose=False)
    layout = "flat" if model_name == "mlp" else "image"
    data = DigitsDataModule(batch_size=64, layout=layout, seed=seed)
    backbone = (
        MLP(64, hidden=(128, 64), dropout=0.1) if model_name == "mlp" else SmallCNN(dropout=0.1)
    )
    model = Classifier(backbone, num_classes=10, lr=3e-3, scheduler="onecycle")
    trainer = quiet_trainer(max_epochs=EPOCHS)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    (tested,) = trainer.test(model, datamodule=data, verbose=False)
    return {
        "acc": tested["test_acc"],
        "f1": tested["test_macro_f1"],
        "seconds": seconds,
        "params": float(sum(p.numel() for p in model.parameters())),
    }


def main() -> None:
    rows = []
    for model_name in ("mlp", "cnn"):
        results = [run(model_name, seed) for seed in SEEDS]
        accs = [r["acc"] for r in results]
        rows.append(
            [
                model_name,
                int(results[0]["params"]),
                statistics.mean(accs),
                min(accs),
                statistics.mean(r["f1"] for r in results),
                statistics.mean(r["seconds"] for r in results),
            ]
        )
    publish(
        "baseline_digits",
        "Baseline: Classifier on the bundled digits",
        [
            "backbone",
            "params",
            "test acc (mean)",
            "test acc (min)",
            "macro F1 (mean)",
            "fit s (mean)",
        ],
        rows,
        f"Digits (1,797 8x8 images, stratified 70/15/15 split, 268 test images), {EPOCHS} epochs, "
        f"AdamW + one-cycle at lr 3e-3, batch 64, dropout 0.1, seeds {SEEDS} (each seed "
        "changes the split, the initialisation and the shuffle). MLP: 64-128-64-10 on flat "
        "features; SmallCNN: two 3x3 conv stages (16, 32 channels) with BatchNorm on 1x8x8 images.",
    )


if __name__ == "__main__":
    main()
