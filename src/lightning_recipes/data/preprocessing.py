"""Preprocessing fitted on the training split only, then applied to every split.

Fitting a scaler on all the data before splitting leaks the validation (and test)
statistics into training; in K-fold cross-validation it leaks every fold into every
other. The datamodules therefore fit these transforms on their final training dataset
(the training folds, after any imbalance) and only apply them to validation, test and
predict data.
"""

from typing import Literal

import torch

from lightning_recipes.errors import choice_error

__all__ = ["SCALERS", "Scaler", "StandardScaler", "make_scaler"]

Scaler = Literal["standard"]
SCALERS: tuple[Scaler, ...] = ("standard",)


class StandardScaler:
    """Standardise every feature to zero mean and unit variance on the data it is fitted on.

    Features are per position of a sample (a pixel of an image counts as one feature).
    The scale is the population standard deviation, as scikit-learn's ``StandardScaler``;
    a constant feature keeps scale 1 (it is only centred).

    Attributes:
        mean: The fitted per-feature mean (shape of one sample), None before `fit`.
        scale: The fitted per-feature standard deviation, None before `fit`.

    Examples:
        >>> import torch
        >>> scaler = StandardScaler().fit(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> scaler.transform(torch.tensor([[1.0, 3.0]])).tolist()
        [[0.0, 2.0]]
    """

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    def fit(self, features: torch.Tensor) -> "StandardScaler":
        """Learn the per-feature mean and standard deviation.

        Args:
            features: ``(n, ...)`` floating features of the training split.

        Returns:
            This scaler.
        """
        x = features.double()
        self.mean = x.mean(dim=0)
        std = x.std(dim=0, correction=0)
        self.scale = torch.where(std > 0, std, torch.ones_like(std))
        return self

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        """Apply the fitted standardisation.

        Args:
            features: ``(n, ...)`` features shaped like the fitted ones.

        Returns:
            The standardised features, in the input's dtype.

        Raises:
            RuntimeError: If called before `fit`.
        """
        if self.mean is None or self.scale is None:
            raise RuntimeError("StandardScaler.transform called before fit.")
        return ((features.double() - self.mean) / self.scale).to(features.dtype)


def make_scaler(name: str | None) -> StandardScaler | None:
    """Build the scaler called ``name`` (None for no scaling).

    Args:
        name: ``"standard"`` or None.

    Returns:
        An unfitted scaler, or None.
    """
    if name is None:
        return None
    if name not in SCALERS:
        raise choice_error("scaler", name, SCALERS)
    return StandardScaler()
