"""The demo's choices: the data sets it trains on, and the ``--imbalance`` text it reads."""

from typing import Literal

from lightning_recipes.errors import config_error

__all__ = ["DEMO_DATA", "DemoData", "parse_imbalance"]

DEMO_DATA = ("digits", "mnist1d")
"""Data sets the demo trains on: scikit-learn's 8x8 digits, or MNIST-1D's 40-long signals."""

DemoData = Literal["digits", "mnist1d"]


def parse_imbalance(text: str) -> dict[int, float]:
    """Parse ``"3:0.1,8:0.05"`` into ``{3: 0.1, 8: 0.05}``.

    Args:
        text: Comma-separated ``class:fraction`` pairs; empty for none.

    Returns:
        The mapping.

    Examples:
        >>> parse_imbalance("3:0.1, 8:0.05")
        {3: 0.1, 8: 0.05}
    """
    result: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        cls, sep, fraction = item.partition(":")
        try:
            if not sep:
                raise ValueError(item)
            result[int(cls)] = float(fraction)
        except ValueError as err:
            raise config_error(
                "imbalance",
                text,
                "Write class:fraction pairs separated by commas, e.g. 3:0.1,8:0.1.",
            ) from err
    return result
