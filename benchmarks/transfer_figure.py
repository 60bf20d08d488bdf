"""Draw the Freezer schedule figure shown on the transfer-learning recipe page.

Run: ``.venv/bin/python benchmarks/transfer_figure.py`` (a second); writes
``docs/recipes/img/freezer_plan.png``.
"""

from pathlib import Path

from lightning_recipes.finetuning import Freezer, layer_groups
from lightning_recipes.modules import SmallCNN

OUT = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "img" / "freezer_plan.png"


def main() -> None:
    freezer = Freezer(unfreeze="gradual", every_n_epochs=2, lr_decay=0.5)
    freezer.groups = layer_groups(SmallCNN())
    figure = freezer.plot_plan(10, 3e-3)
    figure.axes[0].set_title("Freezer(unfreeze='gradual', every_n_epochs=2, lr_decay=0.5)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT, dpi=110, bbox_inches="tight")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
