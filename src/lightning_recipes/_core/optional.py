"""Import optional dependencies at the point of use, naming the extra that provides them."""

import importlib
from types import ModuleType
from typing import Any

from lightning_recipes.errors import MissingExtraError


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise `MissingExtraError` naming the extra that installs it.

    Args:
        module: The dotted module name, e.g. ``"matplotlib.pyplot"``.
        extra: The lightning-recipes extra providing it, e.g. ``"plots"``.
        feature: What the user tried to use, for the message.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: If the module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the package is there but broken: show the real error
        raise MissingExtraError(feature, top, extra) from err


def new_figure(feature: str, **kwargs: Any) -> Any:
    """Create a matplotlib ``Figure`` without touching pyplot's global state.

    A bare ``Figure`` needs no backend, is never shown, and is freed with its last
    reference, so recipes can draw in training loops and notebooks alike without
    leaking figures or switching the user's backend.

    Args:
        feature: What the user tried to use, for the error message.
        **kwargs: Passed to ``matplotlib.figure.Figure`` (e.g. ``figsize``).

    Returns:
        A new ``matplotlib.figure.Figure``.
    """
    figure_module = require("matplotlib.figure", extra="plots", feature=feature)
    return figure_module.Figure(**kwargs)
