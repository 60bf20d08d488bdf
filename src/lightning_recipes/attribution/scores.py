"""What `explain` attributes: the model's ``(N, classes)`` scores and the class per input.

`select_output` picks the scores out of a model returning a dict, tuple or list (the
``output=`` argument of `explain`); the private helpers wrap such a model so that captum
sees the scores alone, and check the scores and the ``target=`` argument against each
other.
"""

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_recipes._core.validate import is_int
from lightning_recipes.errors import config_error

__all__ = ["select_output"]


class _SelectOutput(nn.Module):
    """Wraps a model returning a dict/tuple so that it returns one entry of it."""

    def __init__(self, model: nn.Module, output: int | str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return select_output(self.model(*args, **kwargs), self.output)


def select_output(value: Any, output: int | str | None) -> Any:
    """The entry ``output`` of a model's dict/tuple/list output (the value itself for None).

    Args:
        value: What the model returned.
        output: A key (for a mapping) or an index (for a tuple/list), or None.

    Returns:
        The selected entry.

    Raises:
        RecipeConfigError: Naming ``output`` when it does not fit the output.

    Examples:
        >>> select_output({"logits": 1, "aux": 2}, "logits"), select_output((3, 4), -1)
        (1, 4)
    """
    if output is None:
        return value
    if isinstance(value, Mapping):
        if output not in value:
            keys = ", ".join(repr(k) for k in value)
            raise config_error("output", output, f"The model returns a dict with keys: {keys}.")
        return value[output]
    if isinstance(value, (tuple, list)):
        if not is_int(output) or not -len(value) <= int(output) < len(value):
            raise config_error(
                "output",
                output,
                f"The model returns a {type(value).__name__} of {len(value)}: pass an index "
                f"in [0, {len(value) - 1}].",
            )
        return value[int(output)]
    raise config_error(
        "output",
        output,
        f"The model returns a {type(value).__name__}, not a dict or tuple: leave output=None.",
    )


def _with_output(model: nn.Module, output: int | str | None) -> nn.Module:
    if output is None:
        return model
    if not (is_int(output) or isinstance(output, str)):
        raise config_error("output", output, "Pass a key (str) or an index (int), or None.")
    return _SelectOutput(model, output)


def _resolve_target(
    target: int | Tensor | None, output: Any, batch_size: int
) -> tuple[Any, Tensor]:
    """Captum's ``target`` argument and the ``(N,)`` explained classes on the CPU."""
    if isinstance(output, (Mapping, tuple, list)):
        entries = (
            f"keys {', '.join(repr(k) for k in output)}"
            if isinstance(output, Mapping)
            else f"{len(output)} entries"
        )
        raise config_error(
            "output",
            None,
            f"The model returns a {type(output).__name__} ({entries}): pass output=<key or "
            "index> to choose the (N, classes) scores to explain.",
        )
    if not isinstance(output, Tensor) or output.ndim not in (1, 2) or len(output) != batch_size:
        shown = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise config_error(
            "model output",
            shown,
            "explain() needs a model returning (N, classes) scores (or (N,) scores): wrap "
            "the model so that it returns one score per class.",
        )
    if output.ndim == 1:
        if target is not None:
            raise config_error(
                "target", target, "The model returns one score per input: leave target=None."
            )
        return None, torch.zeros(batch_size, dtype=torch.long)
    classes = output.shape[1]
    if target is None:
        explained = output.argmax(dim=-1)
    elif isinstance(target, Tensor) and not target.is_floating_point():
        explained = target.detach().to(output.device, torch.long).reshape(-1).clone()
        if explained.numel() == 1:
            explained = explained.expand(batch_size).clone()
        elif explained.numel() != batch_size:
            raise config_error(
                "target",
                tuple(target.shape),
                f"Pass one class index per input ({batch_size}) or a single int.",
            )
    elif is_int(target):
        explained = torch.full((batch_size,), target, dtype=torch.long, device=output.device)
    else:
        raise config_error("target", target, "Pass None, an int or a tensor of class indices.")
    if len(explained) and not (int(explained.min()) >= 0 and int(explained.max()) < classes):
        raise config_error(
            "target",
            target,
            f"The model has {classes} outputs: pass class indices in [0, {classes - 1}].",
        )
    return explained, explained.cpu()
