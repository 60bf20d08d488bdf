"""The run report: tables, figures and JSON that agree with what was measured."""

import json
from pathlib import Path

import torch

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
