"""Helpers for the ``peers_*`` benchmarks: summary rows for `publish_peers`, paired phrases.

Kept apart from ``_common.py`` so that each peers script can build its machine-readable
rows and the numbers of its prose the same way: per-seed values paired by position, the
paired difference ``ours - peer`` with its std over seeds, and ``paired_verdict``'s call.
"""

import statistics
from collections.abc import Sequence
from typing import Any

from _common import RESULTS, mean_std, paired_verdict


def peer_row(
    recipe: str,
    peer: str,
    metric: str,
    ours: Sequence[float],
    theirs: Sequence[float] | None,
    *,
    higher_is_better: bool = True,
    time_ratio: Sequence[float] | None = None,
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One row for `publish_peers`: per-seed values paired by position.

    ``theirs`` is None where the peer cannot run (``note`` says why). ``extra`` keys travel
    into the JSON as they are (``time_ratio_cpu``, ``baseline``, ``seeds``...).
    """
    row: dict[str, Any] = {
        "recipe": recipe,
        "peer": peer,
        "metric": metric,
        "higher_is_better": higher_is_better,
        "ours": [float(v) for v in ours],
        "theirs": None if theirs is None else [float(v) for v in theirs],
        "time_ratio": None if time_ratio is None else [float(v) for v in time_ratio],
        "note": note,
    }
    row.update(extra)
    return row


def ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """Per-seed ratios ``ours / theirs`` (fit times measured side by side)."""
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def paired(ours: Sequence[float], theirs: Sequence[float], higher_is_better: bool = True) -> str:
    """``+0.004 ± 0.018 (level)``: the paired difference ``ours - theirs`` and its verdict."""
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    verdict = paired_verdict(list(ours), list(theirs), higher_is_better)
    return f"{mean_std(diffs, sign=True)} ({verdict})"


def ratio_text(values: Sequence[float], digits: int = 2) -> str:
    """``1.13 ± 0.16x``: the mean of per-seed ratios with its std."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}x"


def append_findings(name: str, said: Sequence[str]) -> None:
    """Append the "What it says" section (one line per finding) to results/<name>.md."""
    path = RESULTS / f"{name}.md"
    path.write_text(
        path.read_text()
        + "\n## What it says\n\nPaired over seeds; level means within two standard errors "
        "of the mean difference.\n\n" + "\n".join(said) + "\n"
    )
