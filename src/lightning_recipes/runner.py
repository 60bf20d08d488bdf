"""`RecipesCLI`: the LightningCLI behind ``lightning-recipes fit/validate/test/predict``.

`tune` and `cross_validate` build their trials with it too, so a trial trains exactly what
``lightning-recipes fit -c`` would. The console entry point (`lightning_recipes.cli`)
imports this module only when a subcommand needs it, so ``lightning-recipes --help`` does
not import torch.
"""

import inspect
import re
import types
from argparse import Action
from collections.abc import Mapping, Sequence
from typing import Any, Union, get_args, get_origin

import docstring_parser
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from typing_extensions import override

from lightning_recipes._core.contract import RecipeSummary, run_summaries
from lightning_recipes._core.tables import _cell, format_table

__all__ = ["RecipesCLI", "fit_summary", "recipes_text"]

# The docstrings of Lightning's classes say "Default: ``1.0``." where jsonargparse adds
# "(type: ..., default: null)" to the same line: two defaults, which may even disagree.
# The value jsonargparse shows is the one the config and the command line control.
_DOCSTRING_DEFAULT = re.compile(r"\s*\bDefaults?(?::| to)\s*(?:``[^`]*``|[^\s.]+)\.")


# jsonargparse tries the members of a Union in their order, and ``float`` accepts an int, so
# whichever of int and float comes first decides what ``1`` becomes (jsonargparse's maintainer
# on one parsing for every source, command line or YAML: omni-us/jsonargparse#35; the order
# is respected since omni-us/jsonargparse#177). Lightning writes the Trainer's
# ``limit_{train,val,test,predict}_batches: Optional[Union[int, float]]``, int first, but
# typing caches ``Optional[X]`` by X's equality, which ignores the order of a Union's members:
# ``lightning.fabric``, imported first, writes ``Optional[Union[float, int]]`` (for
# ``Fabric.clip_gradients``), and the Trainer's annotation comes back as that cached object,
# float first (python/cpython#86483). LightningCLI therefore turns ``limit_train_batches: 1``
# (one batch) into ``1.0``, which Lightning reads as every batch (the 1 vs 1.0 footgun:
# Lightning-AI/pytorch-lightning#11950). The same cause, reported for val_check_interval:
# https://github.com/Lightning-AI/pytorch-lightning/issues/21259 ("importing lightning
# changes the order of type annotations"). `RecipesCLI` re-declares every Trainer argument
# whose annotation reads float before int with the same members, int first.


def _int_before_float(annotation: Any) -> Any | None:
    """``annotation`` with ``int`` tried before ``float``; None if it already is, or lacks one.

    The new Union is built from its flat tuple of members, a cache key that keeps their
    order (a nested ``Optional[Union[...]]`` would be looked up by equality again).
    """
    if get_origin(annotation) not in (Union, types.UnionType):
        return None
    members = list(get_args(annotation))
    if int not in members or float not in members or members.index(int) < members.index(float):
        return None
    members.remove(int)
    members.insert(members.index(float), int)
    return Union[tuple(members)]  # noqa: UP007 - a runtime tuple of members


def _keep_ints_ints(
    parser: LightningArgumentParser, trainer_class: type[Trainer], nested_key: str
) -> None:
    """Re-declare the ``trainer_class`` arguments that jsonargparse would read float-first.

    Each keeps its default and its help; only the order of its Union changes, so ``1``
    stays the int 1 (one batch) and ``1.0`` the float 1.0 (every batch), from the command
    line, a YAML file or a config dict alike.
    """
    signature = inspect.signature(trainer_class.__init__, eval_str=True)
    docs = {
        p.arg_name: p.description
        for p in docstring_parser.parse(trainer_class.__init__.__doc__ or "").params
    }
    group = parser.groups[nested_key] if parser.groups and nested_key in parser.groups else parser
    for name, parameter in signature.parameters.items():
        fixed = _int_before_float(parameter.annotation)
        if fixed is None:
            continue
        key = f"{nested_key}.{name}"
        default = parser.get_default(key)
        # argparse's documented way to override an argument with the same option string.
        saved, group.conflict_handler = group.conflict_handler, "resolve"
        try:
            group.add_argument(f"--{key}", type=fixed, default=default, help=docs.get(name))
        finally:
            group.conflict_handler = saved


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

    @override
    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """LightningCLI's Trainer, model and data arguments, with an int kept an int.

        Plain LightningCLI reads ``limit_train_batches: 1`` (or
        ``--trainer.limit_train_batches=1``) as ``1.0``, which the Trainer takes as every
        batch: a typing cache puts float before int in the annotation that jsonargparse
        reads (https://github.com/Lightning-AI/pytorch-lightning/issues/21259). Here ``1``
        stays one batch and ``1.0`` every batch, as in ``Trainer(limit_train_batches=...)``,
        for every Trainer argument annotated with both int and float (the four
        ``limit_*_batches`` and ``gradient_clip_val`` with Lightning 2.6). Each keeps
        Lightning's default and help; ``--help`` and the saved config list them last among
        the Trainer's arguments.

        Args:
            parser: The parser (the main one, or a subcommand's) to add the arguments to.
        """
        super().add_core_arguments_to_parser(parser)
        if isinstance(self.trainer_class, type):
            _keep_ints_ints(parser, self.trainer_class, "trainer")


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
