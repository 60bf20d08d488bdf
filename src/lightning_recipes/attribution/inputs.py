"""The inputs `Attribution` explains and its SHAP background, taken from the dataloaders.

`_check_inputs` checks the ``inputs=`` argument; `first_inputs` reads the first inputs of
a dataloader without changing any random state; `training_background` takes the training
inputs of ``baselines="train_sample"``.
"""

from typing import Any

import torch
from torch import Tensor

from lightning_recipes._core.rng import dataloader_generators, preserved_rng
from lightning_recipes.errors import config_error

__all__ = ["first_inputs", "training_background"]

_BACKGROUND = 16  # training inputs taken for baselines="train_sample"


def _check_inputs(inputs: object) -> Tensor | None:
    """The input tensor of ``inputs=`` (a tensor or an ``(inputs, labels)`` pair)."""
    if inputs is None:
        return None
    if isinstance(inputs, tuple | list) and len(inputs) == 2 and isinstance(inputs[0], Tensor):
        inputs = inputs[0]
    if not isinstance(inputs, Tensor) or inputs.ndim < 2 or len(inputs) == 0:
        shown = f"<tensor of shape {tuple(inputs.shape)}>" if isinstance(inputs, Tensor) else inputs
        raise config_error(
            "inputs",
            shown,
            "Pass a tensor (N, ...) with a batch dimension (or an (inputs, labels) pair); "
            "x.unsqueeze(0) for a single example.",
        )
    return inputs.detach().cpu().clone()


def first_inputs(loaders: Any, count: int) -> Tensor | None:
    """The first ``count`` inputs of a dataloader (or list of them), RNG untouched.

    Args:
        loaders: A dataloader, a list of them (the first is read) or None.
        count: How many inputs to take (fewer when the dataloader has fewer).

    Returns:
        The inputs on the CPU, or None when there is no dataloader or its batches are not
        a tensor or an ``(inputs, ...)`` sequence.
    """
    loader = loaders[0] if isinstance(loaders, list | tuple) and loaders else loaders
    if loader is None or isinstance(loader, list | tuple):
        return None
    parts: list[Tensor] = []
    with preserved_rng(dataloader_generators(loader)):
        for batch in loader:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            if not isinstance(x, Tensor):
                return None
            parts.append(x.detach().cpu())
            if sum(len(p) for p in parts) >= count:
                break
    return torch.cat(parts)[:count].clone() if parts else None


def training_background(loaders: Any, sample_size: int) -> Tensor | None:
    """Up to 16 training inputs: the background distribution of ``baselines="train_sample"``.

    Args:
        loaders: The training dataloader.
        sample_size: The number of inputs explained.

    Returns:
        The background, never as many inputs as ``sample_size`` (unless both are 1), or
        None when no inputs can be read from ``loaders``.
    """
    # Never as many as the inputs: explain() would pair them one to one.
    count = _BACKGROUND if sample_size != _BACKGROUND else _BACKGROUND - 1
    background = first_inputs(loaders, count)
    if background is not None and len(background) == sample_size > 1:
        background = background[:-1]
    return background
