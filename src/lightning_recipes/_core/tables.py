"""Plain-text and Markdown tables for the console, reports and benchmark results.

Core helper shared by the run report, the gradient checks and the benchmarks (no recipe
package imports another, nor the demo's report, for a table).
"""

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["format_table", "markdown_table"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        small_or_large = value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4)
        return f"{value:.4g}" if small_or_large else f"{value:.4f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a GitHub-flavoured Markdown table (floats to 4 decimals).

    Args:
        headers: Column titles.
        rows: One sequence of cells per row.

    Returns:
        The table, one line per row, ending with a newline.

    Examples:
        >>> print(markdown_table(["a", "b"], [[1, 0.5]]), end="")
        | a | b |
        |---|---|
        | 1 | 0.5000 |
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as an aligned plain-text table for the console.

    Args:
        headers: Column titles.
        rows: One sequence of cells per row.

    Returns:
        The table, ending with a newline.

    Examples:
        >>> print(format_table(["epoch", "loss"], [[0, 1.25]]), end="")
        epoch  loss
        -----  ------
            0  1.2500
    """
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for raw, row in zip(rows, cells, strict=False):
        padded = [
            c.rjust(w) if isinstance(v, (int, float)) else c.ljust(w)
            for v, c, w in zip(raw, row, widths, strict=False)
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"
