"""The ``lightning-recipes`` command: ``demo`` plus LightningCLI's fit/validate/test/predict."""

import argparse
import sys
from collections.abc import Sequence

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

__all__ = ["RecipesCLI", "console", "main"]

OVERVIEW = """\
lightning-recipes: PyTorch Lightning callbacks and modules for well-known training techniques.

Commands:
  demo       train a classifier on the bundled digits and write a report (runs/<name>/)
  fit        train from a YAML config (LightningCLI), e.g.
             lightning-recipes fit -c examples/configs/digits.yaml
  validate   validate a model from a config and a checkpoint
  test       test a model from a config and a checkpoint
  predict    predict with a model from a config and a checkpoint

Run `lightning-recipes <command> --help` for a command's options. fit/validate/test/predict
accept any LightningModule, LightningDataModule and callback by class_path (Lightning's CLI).
"""


class RecipesCLI(LightningCLI):
    """LightningCLI where the model and the datamodule are chosen by ``class_path``.

    Any ``LightningModule`` and ``LightningDataModule`` can be configured from YAML, the
    lightning-recipes ones included, and every callback through ``trainer.callbacks``.
    The config is saved next to the logs (overwriting the one of a previous run in the
    same folder).
    """

    def __init__(self, args: Sequence[str] | None = None, run: bool = True) -> None:
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=list(args) if args is not None else None,
            run=run,
        )


def _demo(argv: Sequence[str]) -> int:
    from lightning_recipes.demo import DEMO_RECIPES, parse_imbalance, run_demo

    parser = argparse.ArgumentParser(
        prog="lightning-recipes demo",
        description=(
            "Train a classifier on scikit-learn's bundled handwritten digits (no download), "
            "test it, print a summary table and write a report folder: report.md, "
            "metrics.json, curves.png, confusion.png and the logs."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--name", default=None, help="run name (default: digits-<model>)")
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="backbone")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument(
        "--imbalance",
        default="",
        help="shrink classes of the training split, e.g. 3:0.1,8:0.1 keeps 10%% of 3s and 8s",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", default="runs", help="folder holding the runs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--recipes",
        default="",
        help=f"comma-separated recipes to add: {', '.join(DEMO_RECIPES)}",
    )
    args = parser.parse_args(list(argv))
    result = run_demo(
        name=args.name,
        model=args.model,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        imbalance=parse_imbalance(args.imbalance) or None,
        seed=args.seed,
        out_dir=args.out,
        progress=not args.no_progress,
        recipes=[r for r in args.recipes.split(",") if r],
    )
    print()
    print(result.report.summary())
    print(f"Report written to {result.files['report']} ({result.seconds:.1f} s).")
    for kind, path in sorted(result.files.items()):
        print(f"  {kind:<10} {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-recipes`` console script.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo"]:
        return _demo(args[1:])
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW)
        return 0 if args else 2
    # Hand LightningCLI None when reading sys.argv itself, so it does not warn about a
    # duplicate; DDP launches re-run sys.argv, so the children take this same path.
    RecipesCLI(args=None if argv is None else args)
    return 0


def console() -> None:
    """Run `main` and exit with its status (the console script's target)."""
    sys.exit(main())


if __name__ == "__main__":
    console()
