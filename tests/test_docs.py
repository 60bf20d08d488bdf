"""Every ```python block of the README and the docs runs (blocks of one page share state).

Each page runs in an empty temporary current folder, which must still be empty afterwards:
a snippet that a reader copies must not litter their current folder either (outputs go to
a folder the snippet names, e.g. ``default_root_dir=tempfile.mkdtemp()``).
"""

import os
import re
from pathlib import Path

import pytest
from mktestdocs import check_md_file

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # whatever a page writes here would land in a reader's cwd
    monkeypatch.setenv("PYTHONHASHSEED", os.environ.get("PYTHONHASHSEED", "0"))
    check_md_file(page, memory=True)
    written = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))
    assert written == [], f"{page.name} wrote into the current folder: {written}"


def test_the_augmentation_page_quotes_the_benchmarks_epochs() -> None:
    script = (ROOT / "benchmarks" / "augmentation.py").read_text()
    [epochs] = re.findall(r"^EPOCHS = (\d+)$", script, flags=re.MULTILINE)
    page = (ROOT / "docs" / "recipes" / "augmentation.md").read_text()
    benchmark = " ".join(page.split("## Benchmark", 1)[1].split())
    quoted = re.findall(r"(\d+) epochs", benchmark)
    assert quoted, "the benchmark section names its number of epochs"
    assert set(quoted) == {epochs}, f"the page says {quoted} epochs, the benchmark runs {epochs}"
