"""benchmarks/peers_report.py: peers.md and the pair figures from synthetic summaries."""

import importlib.util
import json
import struct
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def peers_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peers_report", BENCHMARKS / "peers_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["peers_report"] = module
    spec.loader.exec_module(module)
    return module


def summary(rows: list[dict]) -> str:
    return json.dumps(
        {
            "script": "benchmarks/x.py",
            "command": "python benchmarks/x.py --seeds 3",
            "measured": "2026-12-07",
            "machine": "test",
            "rows": rows,
        }
    )


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_builds_peers_md_and_figures(peers_report: ModuleType, tmp_path: Path) -> None:
    results, img = tmp_path / "results", tmp_path / "img"
    results.mkdir()
    (results / "peers_averaging.json").write_text(
        summary(
            [
                {
                    "recipe": 'WeightAverage("ema")',
                    "peer": "Lightning EMAWeightAveraging",
                    "metric": "test accuracy",
                    "higher_is_better": True,
                    "ours": [0.91, 0.92, 0.93],
                    "theirs": [0.91, 0.92, 0.93],
                    "time_ratio": [0.98, 1.0, 1.02],
                    "note": "weights identical",
                    "verdict": "level",
                },
                {
                    "recipe": 'WeightAverage("ema")',
                    "peer": "Lightning EMAWeightAveraging",
                    "metric": "test NLL",
                    "higher_is_better": False,
                    "ours": [0.30, 0.31, 0.32],
                    "theirs": [0.40, 0.41, 0.42],
                    "time_ratio": [0.98, 1.0, 1.02],
                },
            ]
        )
    )
    (results / "peers_averaging.md").write_text(
        "# Weight averaging\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## What it says\n\n"
        "```\n# a comment, not a heading\n```\n"
    )
    (results / "peers_mixing.json").write_text(
        summary(
            [
                {
                    "recipe": "CutMix(1.0)",
                    "peer": "timm CutMix",
                    "metric": "test accuracy",
                    "ours": [0.93, 0.94],
                    "theirs": None,
                    "time_ratio": None,
                    "note": "the peer fails: IndexError",
                    "figure": "peers_cutmix",  # its own page's figure
                },
                {
                    "recipe": "MixUp(0.4)",
                    "peer": "timm Mixup",
                    "metric": "test accuracy",
                    "ours": [0.94, 0.95],
                    "theirs": [0.90, 0.90],
                    "time_ratio": [1.2, 1.3],
                    "time_ratio_cpu": [1.1, 1.2],
                    "verdict": "ahead",
                },
            ]
        )
    )
    (results / "peers_tune.json").write_text("{not json")  # a broken run reads "not run"
    out = tmp_path / "peers.md"

    written = peers_report.build(results, img, out)

    text = out.read_text()
    assert text.startswith("# Every recipe beside the peer it replaces")
    assert "do not edit by hand" in text
    table = text.split("\n## ")[0]
    assert "| MixUp(0.4) | timm Mixup | test accuracy | 0.945 ± 0.007 | 0.900 ± 0.000 |" in table
    assert "**ahead**" in table
    assert "1.25 ± 0.07x wall, 1.15 ± 0.07x CPU" in table
    assert "test NLL (lower is better) | 0.310 ± 0.010 | 0.410 ± 0.010 | -0.100 ± 0.000" in table
    assert "| **level** | 1.00 ± 0.02x | weights identical |" in table
    assert "the peer fails: IndexError" in table
    for missing in ("peers_tune", "peers_transfer", "peers_cv"):
        assert f"not run (`{missing}.py`)" in table
    assert "## WeightAverage (SWA, EMA) vs" in text
    assert "[peers_averaging.md](peers_averaging.md)" in text
    assert "`python benchmarks/x.py --seeds 3`" in text
    assert "\n### Weight averaging\n" in text
    assert "\n#### What it says\n" in text
    assert "\n# a comment, not a heading\n" in text  # code blocks left alone
    assert text.index("## MixUp, CutMix") < text.index("## WeightAverage")  # the order

    figures = {p.name for p in written if p.suffix == ".png"}
    assert figures == {"peers_averaging.png", "peers_mixing.png", "peers_cutmix.png"}
    width, height = png_size(img / "peers_averaging.png")
    assert 800 <= width <= 2000
    assert 300 <= height <= 1500
    assert not (img / "peers_tune.png").exists()


def test_no_results_at_all(peers_report: ModuleType, tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    written = peers_report.build(results, tmp_path / "img", None)
    assert written == [results / "peers.md"]
    text = written[0].read_text()
    assert text.count("not run (`peers_") == len(peers_report.PAIRS)


def test_float_rounding_is_level(peers_report: ModuleType) -> None:
    # Two implementations of the same sums: a few ulps apart on every seed alike, std ~0.
    ours = [0.3410001, 0.3520001, 0.3330001]
    row = {
        "recipe": "ours",
        "peer": "theirs",
        "metric": "test NLL",
        "higher_is_better": False,
        "ours": ours,
        "theirs": [0.341, 0.352, 0.333],
        "verdict": "ahead",  # as an older rule stored it
    }
    assert peers_report.verdict_of(row) == "level"
    assert peers_report.verdict_of({**row, "theirs": [0.351, 0.362, 0.343]}) == "ahead"
    assert peers_report.verdict_of({**row, "verdict": "identical"}) == "identical"
    assert peers_report.verdict_of({**row, "theirs": None}) is None
