"""The ``lightning-recipes`` console entry point: ``demo``, ``tune``, ``ablate``, fit/....

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's subcommands (`RecipesCLI`,
defined in `lightning_recipes.runner`). This module imports torch and Lightning only when a
subcommand runs, so ``lightning-recipes --help`` answers at once.

The commands quiet a few known third-party messages that every fit and every trial would
print and that a person cannot act on (`KNOWN_WARNINGS`, `KNOWN_LOG_MESSAGES`), for the
duration of the command only; the library itself never filters warnings or logs.
"""

import argparse
import contextlib
import logging
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from typing_extensions import override

if TYPE_CHECKING:  # imported on first use: see `__getattr__`
    from lightning_recipes.runner import RecipesCLI

__all__ = [
    "KNOWN_LOG_MESSAGES",
    "KNOWN_WARNINGS",
    "RecipesCLI",
    "console",
    "main",
    "quiet_known_noise",
]

# (category, message regex) of the third-party warnings the commands hide.
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    # torch deprecated LeafSpec, which Lightning's pytree helper still builds on every batch
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
)
# Lightning's info lines the commands hide: advertisements, and restating the default.
KNOWN_LOG_MESSAGES = re.compile(
    r"💡 Tip: For seamless cloud (?:logging|uploads)"
    r"|`Trainer\(limit_(?:train|val|test|predict)_batches=1\.0\)` was configured so 100% "
)
# Where Lightning's `rank_zero_info` logs.
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


def __getattr__(name: str) -> Any:
    """`RecipesCLI`, still importable from here, without importing Lightning up front."""
    if name == "RecipesCLI":
        from lightning_recipes.runner import RecipesCLI

        return RecipesCLI
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _KnownLogNoise(logging.Filter):
    """Drops the log records whose message matches `KNOWN_LOG_MESSAGES`."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        return KNOWN_LOG_MESSAGES.match(record.getMessage()) is None


@contextlib.contextmanager
def quiet_known_noise() -> Iterator[None]:
    """Hide `KNOWN_WARNINGS` and `KNOWN_LOG_MESSAGES` inside the block, and only there.

    Every other warning and log line shows as before; the warning filters and the loggers
    are restored on exit.
    """
    noise = _KnownLogNoise()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    with warnings.catch_warnings():
        for category, message in KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        for logger in loggers:
            logger.addFilter(noise)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(noise)


class _HelpFormatter(argparse.HelpFormatter):
    """Says each default once: ``(default: X)``, unless the help already says it or it is unset."""

    @override
    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default == "" or default == argparse.SUPPRESS
        if unset or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


OVERVIEW = """\
lightning-recipes: PyTorch Lightning callbacks and modules for well-known training techniques.

Commands:
  demo       train a classifier on the bundled digits (or --data mnist1d) and write a
             report (runs/<name>/)
  fit        train from a YAML config (LightningCLI), e.g.
             lightning-recipes fit -c examples/configs/digits.yaml
  validate   validate a model from a config and a checkpoint
  test       test a model from a config and a checkpoint
  predict    predict with a model from a config and a checkpoint
  tune       search hyperparameters of a config with Optuna, e.g.
             lightning-recipes tune -c examples/configs/digits.yaml \\
                 --space examples/configs/digits_space.yaml --n-trials 20
  ablate     which recipes of a config pay off: each on and off, paired seeds, e.g.
             lightning-recipes ablate -c my_config.yaml --seeds 3 --monitor val_acc

Run `lightning-recipes <command> --help` for a command's options. fit/validate/test/predict
accept any LightningModule, LightningDataModule and callback by class_path (Lightning's CLI).
"""


def _demo(argv: Sequence[str]) -> int:
    from lightning_recipes.demo import DEMO_DATA, DEMO_RECIPES, parse_imbalance, run_demo

    parser = argparse.ArgumentParser(
        prog="lightning-recipes demo",
        description=(
            "Train a classifier on scikit-learn's bundled handwritten digits (no download), "
            "or with --data mnist1d on MNIST-1D's 1-D signals (generated, no download), "
            "test it, print a summary table and write a report folder: report.md, "
            "metrics.json, curves.png, confusion.png and the logs."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--name", default=None, help="run name (default: <data>-<model>)")
    parser.add_argument(
        "--data",
        choices=DEMO_DATA,
        default="digits",
        help="digits: 8x8 images, 1,797 samples; mnist1d: 40-long signals, 5,000 samples "
        "(the mnist1d package, extra data), where the recipes have more room to act",
    )
    parser.add_argument(
        "--model",
        choices=("mlp", "cnn"),
        default="mlp",
        help="backbone (cnn: SmallCNN on digits, the MNIST-1D paper's CNN on mnist1d)",
    )
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument(
        "--imbalance",
        default="",
        help="shrink classes of the training split, e.g. 3:0.1,8:0.1 keeps 10%% of 3s and 8s",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--out", default="runs", help="folder holding the runs: <out>/<name>/version_<n>/"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--recipes",
        default="",
        help=f"comma-separated recipes to add: {', '.join(DEMO_RECIPES)}",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the run as a LightningCLI config instead of training it (MLP only): "
        "`lightning-recipes fit -c` trains it, `lightning-recipes ablate -c` ablates it",
    )
    args = parser.parse_args(list(argv))
    if args.print_config:
        import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

        from lightning_recipes.demo_config import demo_config

        config = demo_config(
            [r for r in args.recipes.split(",") if r],
            data=args.data,
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            imbalance=parse_imbalance(args.imbalance) or None,
            seed=args.seed,
            model=args.model,
        )
        print(yaml.safe_dump(config, sort_keys=False), end="")
        return 0
    result = run_demo(
        name=args.name,
        model=args.model,
        data=args.data,
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
    print(f"Run folder: {result.run_dir} (each run gets a new version_<n>).")
    print(f"Report written to {result.files['report']} ({result.seconds:.1f} s).")
    for kind, path in sorted(result.files.items()):
        print(f"  {kind:<10} {path}")
    return 0


def _tune(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lightning-recipes tune",
        description=(
            "Search hyperparameters of a LightningCLI config with Optuna. Each trial trains "
            "the config with sampled values (as `lightning-recipes fit -c` would); the study "
            "is kept in a storage (a journal file by default), so running the same command "
            "again continues it. "
            "Writes <out>/<study>/study.md, the figures and best.yaml. Any other "
            "--section.key=value argument overrides the config, as with `fit`."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-c", "--config", required=True, help="LightningCLI YAML config")
    parser.add_argument("--space", required=True, help="search space YAML")
    parser.add_argument("--n-trials", type=int, required=True, help="budget of finished trials")
    parser.add_argument(
        "--sampler", choices=("grid", "random", "tpe", "gp"), default="tpe", help="Optuna sampler"
    )
    parser.add_argument(
        "--storage",
        default=None,
        help="storage URL: journal:///path/study.journal (default: "
        "<out>/<study>/study.journal), sqlite:///path.db, postgresql://user:pass@host/db "
        "(several machines), or 'memory' (this process only, no resume)",
    )
    parser.add_argument("--study-name", default=None, help="default: the config's file stem")
    parser.add_argument("--monitor", default="val_loss", help="metric to optimise")
    parser.add_argument(
        "--mode",
        choices=("auto", "min", "max"),
        default="auto",
        help="min or max; auto reads it from the --monitor name (loss, error -> min; acc, f1, "
        "auroc -> max) and refuses a name it cannot place",
    )
    parser.add_argument(
        "--pruner", choices=("median", "hyperband", "none"), default="median", help="pruner"
    )
    parser.add_argument("--seed", type=int, default=None, help="sampler seed")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before stopping")
    parser.add_argument("--n-jobs", type=int, default=1, help="parallel trials (subprocesses)")
    parser.add_argument("--cv", type=int, default=None, help="cross-validate each trial: folds")
    parser.add_argument(
        "--value", choices=("best", "last"), default="best", help="which epoch's value counts"
    )
    parser.add_argument("--heartbeat", type=int, default=10, help="trial heartbeat, seconds")
    parser.add_argument("--out", default="runs", help="folder holding <study>/")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    drawing = parser.add_mutually_exclusive_group()
    drawing.add_argument(
        "--figures",
        action="store_true",
        help="always draw the PNG figures of the report (default: when the trials of this "
        "run took 30 s or more; drawing costs ~1 s)",
    )
    drawing.add_argument(
        "--no-figures", action="store_true", help="never draw the PNG figures of the report"
    )
    args, overrides = parser.parse_known_args(list(argv))
    stray = [a for a in overrides if a.startswith("-") and not a.startswith("--")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")

    from lightning_recipes.errors import RecipeConfigError
    from lightning_recipes.tuning.search import tune

    try:
        study = _run_tune(tune, args, overrides)
    except RecipeConfigError as err:  # a usage error: say it like argparse, no traceback
        print(f"lightning-recipes tune: error: {err}", file=sys.stderr)
        return 2
    folder = f"{args.out}/{study.study_name}"
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    if finished:
        print(f"Best {args.monitor}: {study.best_value:.6g} (trial {study.best_trial.number})")
        print(f"Best config: {folder}/best.yaml  (lightning-recipes fit -c {folder}/best.yaml)")
    print(f"Report: {folder}/study.md")
    return 0


def _run_tune(tune: Any, args: argparse.Namespace, overrides: list[str]) -> Any:
    return tune(
        args.config,
        args.space,
        n_trials=args.n_trials,
        sampler=args.sampler,
        storage=args.storage,
        study_name=args.study_name,
        monitor=args.monitor,
        mode=args.mode,
        pruner=args.pruner,
        seed=args.seed,
        timeout=args.timeout,
        n_jobs=args.n_jobs,
        cv=args.cv,
        out_dir=args.out,
        progress=not args.no_progress,
        overrides=overrides,
        value=args.value,
        figures=True if args.figures else False if args.no_figures else "auto",
        heartbeat_interval=args.heartbeat,
    )


def _ablate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lightning-recipes ablate",
        description=(
            "Which recipes of a LightningCLI config pay off on your model: each callback of "
            "this library (and those named with --factor) switched on and off, every "
            "configuration trained with the same seeds, as trials of an Optuna study (a "
            "journal file by default: running the same command again resumes it). Writes "
            "<out>/<study>/ablation.md, ablation.png, ablation.json and recommended.yaml. Any "
            "other --section.key=value argument overrides the config, as with `fit`."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("-c", "--config", required=True, help="LightningCLI YAML config")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    parser.add_argument(
        "--design",
        choices=("leave-one-out", "add-one-in", "factorial"),
        default="leave-one-out",
        help="all minus one, none plus one, or every subset (at most 6 factors)",
    )
    parser.add_argument(
        "--factor",
        action="append",
        default=[],
        help="another callback to switch: its position in trainer.callbacks, class name or "
        "class_path (repeatable)",
    )
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        help="a callback of this library to keep on in every run instead of switching it "
        "(position, class name or class_path; repeatable)",
    )
    parser.add_argument(
        "--monitor",
        default="val_loss",
        help="metric that judges a run: logged in validation, or test_* (each run is then "
        "tested once fit ends)",
    )
    parser.add_argument("--mode", choices=("auto", "min", "max"), default="auto", help="min/max")
    parser.add_argument(
        "--value", choices=("best", "last"), default="best", help="which epoch's value counts"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="runs trained at once, in as many processes"
    )
    parser.add_argument("--storage", default=None, help="storage URL (as for tune)")
    parser.add_argument("--study-name", default=None, help="default: <config stem>-ablation")
    parser.add_argument("--out", default="runs", help="folder holding <study>/")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args, overrides = parser.parse_known_args(list(argv))
    stray = [a for a in overrides if a.startswith("-") and not a.startswith("--")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")

    from lightning_recipes.errors import RecipeConfigError
    from lightning_recipes.tuning.ablate import ablate

    factors = [int(f) if f.isdigit() else f for f in args.factor]
    keep = [int(f) if f.isdigit() else f for f in args.keep]
    try:
        result = ablate(
            args.config, seeds=args.seeds, design=args.design, factors=factors, keep=keep,
            monitor=args.monitor, mode=args.mode, value=args.value, storage=args.storage,
            study_name=args.study_name, out_dir=args.out, overrides=overrides,
            progress=not args.no_progress, n_jobs=args.n_jobs,
        )  # fmt: skip
    except RecipeConfigError as err:
        print(f"lightning-recipes ablate: error: {err}", file=sys.stderr)
        return 2
    for effect in result.effects:
        print(f"{effect.factor}: {effect.mean:+.4g} [{effect.low:+.3g}, {effect.high:+.3g}] "
              f"{effect.verdict}")  # fmt: skip
    print(f"Report: {result.out}/ablation.md")
    print(f"Recommended: {result.out}/recommended.yaml  "
          f"(lightning-recipes fit -c {result.out}/recommended.yaml)")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-recipes`` console script.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(OVERVIEW)
        return 0 if args else 2
    with quiet_known_noise():
        if args[0] == "demo":
            return _demo(args[1:])
        if args[0] == "tune":
            return _tune(args[1:])
        if args[0] == "ablate":
            return _ablate(args[1:])
        return _lightning_cli(args, from_sys_argv=argv is None)


def _lightning_cli(args: list[str], *, from_sys_argv: bool) -> int:
    from lightning_recipes.runner import RecipesCLI, fit_summary

    # Hand LightningCLI None when reading sys.argv itself, so it does not warn about a
    # duplicate; DDP launches re-run sys.argv, so the children take this same path.
    cli = RecipesCLI(args=None if from_sys_argv else args)
    if cli.subcommand == "fit" and cli.trainer.is_global_zero:
        summary = fit_summary(cli.trainer)
        if summary:
            print()
            print(summary, end="")
    return 0


def console() -> None:
    """Run `main` and exit with its status (the console script's target)."""
    status = main()
    if "torch.distributed" in sys.modules:  # a fit ran (--help imports no torch at all)
        from lightning_recipes._core.collectives import release_process_group

        release_process_group()
    sys.exit(status)


if __name__ == "__main__":
    console()
