"""The run report written by the demo: tables, figures, metrics as JSON."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.tables import _cell, format_table, markdown_table
from lightning_recipes.history import metric_series
from lightning_recipes.imbalance.metrics import per_class_recall

__all__ = ["RunReport", "format_table", "markdown_table", "per_class_recall", "write_report"]


@dataclass
class RunReport:
    """What the demo measured: enough to write the report and to assert on in tests.

    Attributes:
        title: Heading of the report.
        history: Per-epoch records from `MetricHistory`.
        test_metrics: Final test metrics.
        confusion: Test confusion matrix (rows: true class), if computed.
        config: The settings of the run, written into the report.
        recipes: What each recipe did (its ``run_summary()``), in callback order.
    """

    title: str
    history: list[dict[str, float]]
    test_metrics: dict[str, float]
    confusion: torch.Tensor | None = None
    config: dict[str, Any] = field(default_factory=dict)
    recipes: list[RecipeSummary] = field(default_factory=list)

    EPOCH_COLUMNS = ("epoch", "train_loss_epoch", "val_loss", "val_acc", "val_macro_f1", "lr")

    def epoch_table(self) -> tuple[list[str], list[list[Any]]]:
        """Headers and rows of the per-epoch table (columns that were recorded)."""
        headers = [c for c in self.EPOCH_COLUMNS if any(c in r for r in self.history)]
        rows = [
            [int(r["epoch"]) if c == "epoch" else r.get(c, float("nan")) for c in headers]
            for r in self.history
        ]
        return headers, rows

    def summary(self) -> str:
        """The console summary: per-epoch table, then test metrics."""
        headers, rows = self.epoch_table()
        text = format_table(headers, rows)
        if self.test_metrics:
            text += "\n" + format_table(
                ["test metric", "value"], [[k, v] for k, v in sorted(self.test_metrics.items())]
            )
        return text


def _plot_curves(history: list[dict[str, float]]) -> Any:
    figure = new_figure("The run report", figsize=(10, 3.8))
    loss_ax, score_ax = figure.subplots(1, 2)
    for ax, names, ylabel in (
        (loss_ax, ("train_loss_epoch", "val_loss"), "loss"),
        (score_ax, ("train_acc", "val_acc", "val_macro_f1"), "score"),
    ):
        for name in names:
            epochs, values = metric_series(history, name)
            if epochs:
                ax.plot(epochs, values, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    loss_ax.set_yscale("log")
    figure.suptitle("Training curves")
    figure.tight_layout()
    return figure


def _plot_confusion(confusion: torch.Tensor) -> Any:
    figure = new_figure("The run report", figsize=(5, 4.5))
    ax = figure.subplots()
    counts = confusion.cpu().numpy()
    image = ax.imshow(counts, cmap="Blues")
    for (true, pred), n in np.ndenumerate(counts):
        if n:
            color = "white" if n > counts.max() / 2 else "black"
            ax.text(pred, true, str(n), ha="center", va="center", fontsize=7, color=color)
    ticks = list(range(counts.shape[0]))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Test confusion matrix")
    figure.colorbar(image, ax=ax)
    figure.tight_layout()
    return figure


def write_report(report: RunReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``metrics.json``, ``curves.png`` (and ``confusion.png``).

    Args:
        report: What to write.
        out_dir: The run's folder; created if needed.

    Returns:
        ``{"report": ..., "metrics": ..., "curves": ..., "confusion": ...}`` paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / "report.md",
        "metrics": out / "metrics.json",
        "curves": out / "curves.png",
    }
    recall = per_class_recall(report.confusion) if report.confusion is not None else None
    payload: dict[str, Any] = {
        "config": report.config,
        "test": report.test_metrics,
        "history": report.history,
    }
    if report.recipes:
        payload["recipes"] = [summary.to_dict() for summary in report.recipes]
    if recall is not None and report.confusion is not None:
        payload["test_per_class_recall"] = recall.tolist()
        payload["test_confusion"] = report.confusion.tolist()
    paths["metrics"].write_text(json.dumps(payload, indent=2, default=str))
    _plot_curves(report.history).savefig(paths["curves"], dpi=110)
    lines = [f"# {report.title}", ""]
    if report.config:
        lines += [
            "## Settings",
            "",
            markdown_table(["setting", "value"], sorted(report.config.items())),
            "",
        ]
    if report.test_metrics:
        test_rows = sorted(report.test_metrics.items())
        lines += ["## Test metrics", "", markdown_table(["metric", "value"], test_rows), ""]
    if report.recipes:
        lines += ["## What each recipe did", ""]
        for summary in report.recipes:
            lines += recipe_section(summary, out)
    lines += ["## Training curves", "", "![training curves](curves.png)", ""]
    headers, rows = report.epoch_table()
    lines += ["## Per epoch", "", markdown_table(headers, rows), ""]
    if recall is not None and report.confusion is not None:
        paths["confusion"] = out / "confusion.png"
        _plot_confusion(report.confusion).savefig(paths["confusion"], dpi=110)
        recall_rows = [[c, int(report.confusion[c].sum()), float(r)] for c, r in enumerate(recall)]
        lines += [
            "## Per-class recall (test)",
            "",
            markdown_table(["class", "samples", "recall"], recall_rows),
            "",
            "![confusion matrix](confusion.png)",
            "",
        ]
    paths["report"].write_text("\n".join(lines))
    return paths


def _inline(value: Any) -> Any:
    """A value safe inside one Markdown table cell or list item: no ``|``, no line break."""
    if isinstance(value, str):
        return " ".join(value.split()).replace("|", "\\|")
    return value


def _fact_lines(name: str, value: Any) -> list[str]:
    """One fact as Markdown: a table for a list of records or a mapping of records.

    A table is a block of its own, with blank lines around its caption: right after a
    list item, a caption line would otherwise be swallowed into that item.
    """
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        headers = list(dict.fromkeys(k for row in value for k in row))
        rows = [[_inline(row.get(h)) for h in headers] for row in value]
        table = markdown_table([_inline(h) for h in headers], rows)
        return ["", f"{_inline(name)}:", "", table.rstrip("\n"), ""]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        headers = list(dict.fromkeys(k for row in value.values() for k in row))
        rows = [
            [_inline(key), *(_inline(row.get(h)) for h in headers)] for key, row in value.items()
        ]
        table = markdown_table(["", *(_inline(h) for h in headers)], rows)
        return ["", f"{_inline(name)}:", "", table.rstrip("\n"), ""]
    if isinstance(value, list | tuple):
        value = ", ".join(_cell(v) for v in value)
    return [f"- {_inline(name)}: {_inline(_cell(value))}"]


def recipe_section(summary: RecipeSummary, out_dir: Path) -> list[str]:
    """The report's Markdown lines for one recipe: its facts, notes and figures.

    Args:
        summary: What the recipe did.
        out_dir: The report's folder (figure links are made relative to it).

    Returns:
        Lines of Markdown.
    """
    lines = [f"### {summary.recipe}", ""]
    for name, value in summary.facts.items():
        lines += _fact_lines(name, value)
    lines.append("")
    for note in summary.notes:  # one quote each: adjacent "> " lines would merge into one
        lines += [f"> {_inline(note)}", ""]
    for caption, path in summary.figures.items():
        try:
            link = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            link = Path(path).as_posix()
        lines += [f"![{caption}]({link})", ""]
    return lines
