"""The run report: tables, figures and JSON that agree with what was measured."""

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
import torch

from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes.report import (
    RunReport,
    format_table,
    markdown_table,
    per_class_recall,
    write_report,
)

HISTORY = [
    {
        "epoch": 0.0,
        "step": 10.0,
        "train_loss_epoch": 1.5,
        "val_loss": 1.2,
        "val_acc": 0.6,
        "lr": 0.01,
    },
    {
        "epoch": 1.0,
        "step": 20.0,
        "train_loss_epoch": 0.8,
        "val_loss": 0.7,
        "val_acc": 0.8,
        "lr": 0.005,
    },
]


def test_tables() -> None:
    assert markdown_table(["a", "b"], [[1, 0.25], ["x", 1e-5]]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 1 | 0.2500 |",
        "| x | 1e-05 |",
    ]
    lines = format_table(["name", "value"], [["acc", 0.5], ["loss", 12.25]]).splitlines()
    assert lines[0].split() == ["name", "value"]
    assert lines[2] == "acc    0.5000"
    assert lines[3] == "loss  12.2500"


def test_per_class_recall_handles_empty_classes() -> None:
    recall = per_class_recall(torch.tensor([[4, 0, 0], [1, 1, 0], [0, 0, 0]]))
    assert recall[:2].tolist() == [1.0, 0.5]
    assert torch.isnan(recall[2])


def test_write_report(tmp_path: Path) -> None:
    confusion = torch.tensor([[5, 1], [2, 2]])
    report = RunReport("Test run", HISTORY, {"test_acc": 0.7}, confusion, {"seed": 0})
    files = write_report(report, tmp_path / "run")
    assert set(files) == {"report", "metrics", "curves", "confusion"}
    for key in ("curves", "confusion"):
        assert files[key].read_bytes().startswith(b"\x89PNG")
    data = json.loads(files["metrics"].read_text())
    assert data["test"] == {"test_acc": 0.7}
    assert data["history"] == HISTORY
    assert data["test_per_class_recall"] == [5 / 6, 0.5]
    text = files["report"].read_text()
    assert "# Test run" in text
    assert "| test_acc | 0.7000 |" in text
    assert "![training curves](curves.png)" in text
    assert "| 1 | 4 | 0.5000 |" in text
    assert "val_acc" in report.summary()
    assert "test_acc" in report.summary()


def _fit_with_an_lr_finder() -> RecipeSummary:
    from lightning.pytorch import Trainer, seed_everything

    from lightning_recipes import LRFinder
    from lightning_recipes.data import DigitsDataModule
    from lightning_recipes.modules import MLP, Classifier

    seed_everything(0)
    finder = LRFinder(num_steps=15, milestones=[1], plot=False, verbose=False)
    trainer = Trainer(
        accelerator="cpu", max_epochs=2, limit_train_batches=3, limit_val_batches=1,
        callbacks=[finder], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Classifier(MLP(64, [16]), num_classes=10), DigitsDataModule())
    return finder.run_summary()


def test_the_report_of_an_lr_finder_is_well_formed_markdown(tmp_path: Path) -> None:
    markdown = pytest.importorskip("markdown")
    finder = _fit_with_an_lr_finder()
    assert len(finder.facts["tests"]) == 2  # at the start and at epoch 1
    other = RecipeSummary(
        "Other",
        facts={"a | b": "x|y", "by group": {"head": {"lr": 0.1}}, "last": "line\nbreak"},
        notes=["First note.", "Second note."],
    )
    report = RunReport("Run", HISTORY, {"test_acc": 0.7}, recipes=[finder, other])
    text = write_report(report, tmp_path)["report"].read_text()
    root = ElementTree.fromstring(f"<div>{markdown.markdown(text, extensions=['tables'])}</div>")

    def plain(element: ElementTree.Element) -> str:
        return "".join(element.itertext())

    items = [plain(li) for li in root.iter("li")]
    list_lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(items) == len(list_lines)  # every list item is one item ...
    assert all("\n" not in item for item in items), items  # ... and swallows no line
    assert f"rule: {finder.facts['rule']}" in items
    assert "a | b: x|y" in items
    assert "last: line break" in items
    paragraphs = [plain(p) for p in root.iter("p")]
    for caption in ("tests:", "by group:"):
        assert caption in paragraphs  # the table's caption is a paragraph of its own
    assert "First note." in paragraphs
    assert "Second note." in paragraphs  # two notes, two paragraphs
    tables = {tuple(plain(th) for th in table.iter("th")): table for table in root.iter("table")}
    lr_table = tables[("epoch", "chosen lr", "applied", "previous lr", "trainable share")]
    rows = [[plain(td) for td in tr.iter("td")] for tr in lr_table.iter("tr")][1:]
    assert [row[0] for row in rows] == ["0", "1"]
    assert all(len(row) == 5 for row in rows)
    assert ("", "lr") in tables
