"""Exceptions raised by lightning-recipes.

Every error says what was wrong and how to fix it. Configuration errors subclass both
Lightning's ``MisconfigurationException`` (so Lightning users' existing handlers catch them)
and ``ValueError`` (so plain Python code does).
"""

from collections.abc import Iterable
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException

__all__ = [
    "BatchMixingError",
    "MissingExtraError",
    "MissingMetricError",
    "NonFiniteGradientError",
    "RecipeConfigError",
    "RecipeWarning",
    "choice_error",
    "config_error",
]


class RecipeConfigError(MisconfigurationException, ValueError):
    """A recipe was given an argument it cannot work with.

    Raised at construction for bad arguments and at ``setup`` for checks that need the
    Trainer. The message names the argument, the value received and the fix.

    Examples:
        >>> from lightning_recipes.errors import RecipeConfigError
        >>> issubclass(RecipeConfigError, ValueError)
        True
    """


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed.

    The message names the pip extra that installs it, e.g.
    ``pip install 'lightning-recipes[plots]'``.
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        self.feature = feature
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package '{module}', which is not installed. "
            f"Install it with: pip install 'lightning-recipes[{extra}]'",
            name=module,
        )


class MissingMetricError(RuntimeError):
    """A monitored metric was not logged; the message lists the metrics that were.

    A ``RuntimeError``, as Lightning's callbacks raise in the same situation, so code that
    catches theirs catches ours.
    """


class BatchMixingError(RuntimeError):
    """The model mixes samples across the batch dimension (see `BatchMixingCheck`)."""


class NonFiniteGradientError(FloatingPointError):
    """A gradient held NaN or Inf; the message names the parameter and the global step."""


def config_error(argument: str, value: Any, fix: str) -> RecipeConfigError:
    """Build a `RecipeConfigError` in the house format.

    Args:
        argument: The name of the offending argument, as the user spelled it.
        value: The value that was received.
        fix: What to pass instead, as a sentence.

    Returns:
        The error, ready to be raised.

    Examples:
        >>> str(config_error("dropout", 1.5, "Pass a probability in [0, 1)."))
        'Invalid dropout=1.5. Pass a probability in [0, 1).'
    """
    return RecipeConfigError(f"Invalid {argument}={value!r}. {fix}")


def choice_error(argument: str, value: Any, choices: Iterable[str]) -> RecipeConfigError:
    """Build a `RecipeConfigError` for a name that is not one of the known choices.

    Args:
        argument: The name of the offending argument.
        value: The value that was received.
        choices: The accepted names.

    Returns:
        The error, ready to be raised.

    Examples:
        >>> str(choice_error("activation", "swish", ["relu", "tanh"]))
        "Invalid activation='swish'. Choose one of: 'relu', 'tanh'."
    """
    listed = ", ".join(repr(c) for c in choices)
    return config_error(argument, value, f"Choose one of: {listed}.")


class RecipeWarning(UserWarning):
    """The category of every warning a recipe raises (filter or escalate them as one)."""
