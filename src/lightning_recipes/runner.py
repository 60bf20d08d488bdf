"""`RecipesCLI`: the LightningCLI behind ``lightning-recipes fit/validate/test/predict``.

`tune` and `cross_validate` build their trials with it too, so a trial trains exactly what
``lightning-recipes fit -c`` would. The console entry point (`lightning_recipes.cli`)
imports this module only when a subcommand needs it, so ``lightning-recipes --help`` does
not import torch.
"""

import re
from argparse import Action
from collections.abc import Mapping, Sequence
from typing import Any

from jsonargparse import DefaultHelpFormatter
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from typing_extensions import override

from lightning_recipes._contract import RecipeSummary, run_summaries
from lightning_recipes._tables import _cell, format_table

__all__ = ["RecipesCLI", "fit_summary", "recipes_text"]

# The docstrings of Lightning's classes say "Default: ``1.0``." where jsonargparse adds
# "(type: ..., default: null)" to the same line: two defaults, which may even disagree.
# The value jsonargparse shows is the one the config and the command line control.
_DOCSTRING_DEFAULT = re.compile(r"\s*\bDefaults?(?::| to)\s*(?:``[^`]*``|[^\s.]+)\.")


class _HelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help with each default said once (its own ``default:``)."""

    @override
    def _get_help_string(self, action: Action) -> str:
        text = super()._get_help_string(action)
        return _DOCSTRING_DEFAULT.sub("", text) if "default: %(default)s" in text else text


class RecipesCLI(LightningCLI):
    """LightningCLI where the model and the datamodule are chosen by ``class_path``.

    Any ``LightningModule`` and ``LightningDataModule`` can be configured from YAML, the
    lightning-recipes ones included, and every callback through ``trainer.callbacks``.
    The config is saved next to the logs (overwriting the one of a previous run in the
    same folder).
    """

    def __init__(
        self,
        args: Sequence[str] | Mapping[str, Any] | None = None,
        run: bool = True,
        save_config: bool = True,
    ) -> None:
        """Parse ``args`` (or the command line) and build the classes.

        Args:
            args: The arguments, as on the command line, or a config dict; None reads
                ``sys.argv``.
            run: Run the subcommand (``fit``...) given in the arguments.
            save_config: Save the config next to the logs (``config.yaml``).
        """
        super().__init__(
            save_config_callback=SaveConfigCallback if save_config else None,
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_kwargs={"overwrite": True},
            args=dict(args) if isinstance(args, Mapping) else None if args is None else list(args),
            run=run,
        )

    @override
    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().init_parser(**kwargs)


def _fact_text(name: str, value: Any, indent: str) -> list[str]:
    """One fact as console lines: a table for records, otherwise ``name: value``."""
    records: list[tuple[str | None, dict[str, Any]]] = []
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        records = [(None, row) for row in value]
    elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        records = [(str(key), row) for key, row in value.items()]
    if not records:
        if isinstance(value, list | tuple):
            value = ", ".join(_cell(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
        return [f"{indent}{name}: {_cell(value)}"]
    columns = list(dict.fromkeys(k for _, row in records for k in row))
    keyed = any(key is not None for key, _ in records)
    headers = ([""] if keyed else []) + columns
    rows = [([key] if keyed else []) + [row.get(c, "") for c in columns] for key, row in records]
    table = format_table(headers, rows).rstrip("\n").splitlines()
    return [f"{indent}{name}:", *(f"{indent}  {line}" for line in table)]


def recipes_text(summaries: Sequence[RecipeSummary]) -> str:
    """What each recipe did, as plain text for the console (the report's facts, notes, figures).

    Args:
        summaries: The recipes' ``run_summary()`` results, in callback order.

    Returns:
        The text, ending with a newline; empty when there is no summary.
    """
    if not summaries:
        return ""
    lines = ["What the recipes did:"]
    for summary in summaries:
        lines.append(f"  {summary.recipe}")
        for name, value in summary.facts.items():
            lines += _fact_text(name, value, "    ")
        lines += [f"    note: {note}" for note in summary.notes]
        lines += [f"    figure: {path} ({caption})" for caption, path in summary.figures.items()]
    return "\n".join(lines) + "\n"


def fit_summary(trainer: Trainer) -> str:
    """The text ``lightning-recipes fit`` prints at the end: each recipe, the best checkpoint.

    Args:
        trainer: The Trainer that ran ``fit``.

    Returns:
        The text, ending with a newline.
    """
    text = recipes_text(run_summaries(trainer.callbacks))  # type: ignore[attr-defined]
    checkpoint = trainer.checkpoint_callback
    if isinstance(checkpoint, ModelCheckpoint) and checkpoint.best_model_path:
        score = checkpoint.best_model_score
        scored = f" ({checkpoint.monitor} = {float(score):.6g})" if score is not None else ""
        text += f"Best checkpoint: {checkpoint.best_model_path}{scored}\n"
    return text
