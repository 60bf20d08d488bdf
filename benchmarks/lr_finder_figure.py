"""Draw the LR range-test figure shown on the learning-rate recipe page.

Run: ``.venv/bin/python benchmarks/lr_finder_figure.py`` (a few seconds); writes
``docs/recipes/img/lr_finder_digits.png``.
"""

from pathlib import Path

from _common import quiet_trainer
from lightning.pytorch import seed_everything

from lightning_recipes import MLP, Classifier, DigitsDataModule, find_lr

OUT = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "img" / "lr_finder_digits.png"


def main() -> None:
    seed_everything(0, verbose=False)
    model = Classifier(MLP(64, [64]), num_classes=10, optimizer="adam")
    result = find_lr(quiet_trainer(), model, DigitsDataModule(batch_size=64), plot=False)
    figure = result.plot()
    figure.axes[0].set_title("LR range test: digits, MLP 64-64-10, Adam, batch 64")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT, dpi=110, bbox_inches="tight")
    print(f"chosen {result.chosen:.3g}; every rule: {result.suggestions}; written to {OUT}")


if __name__ == "__main__":
    main()
