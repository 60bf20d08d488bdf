"""The functional door of the loss path: a ``TorchFunctionMode``, and the labels view.

Both hand the loss calls whose target is the batch's labels to their `LossPath`
(`lightning_recipes._core.loss_path.path`), which edits them with `edited_loss`.
"""

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from lightning_recipes._core.loss_path.edit import _DERIVES_LABELS, _OTHER_LOSSES, LOSS_FUNCTIONS

if TYPE_CHECKING:
    from lightning_recipes._core.loss_path.path import LossPath

__all__: list[str] = []


class _Labels(Tensor):
    """The batch's labels during a labels step: only calls that touch them reach Python.

    A view of the labels (``as_subclass``) holding its `LossPath`: the loss functions'
    calls on it are edited by the path as the mode would; every other call runs as on a
    plain tensor and returns plain tensors (``DisableTorchFunctionSubclass``).
    """

    _loss_path: "LossPath | None" = None
    _plain: Tensor | None = None

    @classmethod
    def __torch_function__(
        cls,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        target = args[1] if len(args) > 1 else kwargs.get("target")
        kind = LOSS_FUNCTIONS.get(func)
        # Every call sees the plain labels (the batch's own tensor, which the path tracks),
        # so nothing below dispatches back here and every result is a plain tensor. A loss
        # function's tensors are its direct arguments: replaced without a tree walk
        # (torch's tree_map cost ~20 us a step there, measured).
        if kind is not None:
            args = tuple(_plain_labels(value) for value in args)
            kwargs = {name: _plain_labels(value) for name, value in kwargs.items()}
        else:
            args, kwargs = tree_map(_plain_labels, (args, kwargs))
        path = target._loss_path if isinstance(target, _Labels) else None
        if kind is not None and path is not None and not torch.compiler.is_compiling():
            return path.loss_call(func, kind, args, kwargs)
        return func(*args, **kwargs)


def _plain_labels(value: Any) -> Any:
    return value._plain if isinstance(value, _Labels) else value


_WATCHED: frozenset[Any] = frozenset(LOSS_FUNCTIONS) | _DERIVES_LABELS | _OTHER_LOSSES
"""Every function the mode does more with than call it."""


class _LossMode(TorchFunctionMode):
    """The functional door: edits loss calls whose target is the batch's labels."""

    def __init__(self, path: "LossPath") -> None:
        super().__init__()
        self.path = path

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func not in _WATCHED or torch.compiler.is_compiling():
            # Most calls of a step are none of the watched ones: passed on at once (the
            # mode's cost is this method's, per torch call). Inside a compiled region the
            # mode steps aside (no graph break): a loss computed there is not edited, and
            # the step's check says so.
            return func(*args, **kwargs)
        kind = LOSS_FUNCTIONS.get(func)
        if kind is not None:
            return self.path.loss_call(func, kind, args, kwargs)
        out = func(*args, **kwargs)
        if func in _DERIVES_LABELS:
            if args and self.path.is_labels(args[0]):
                self.path.track(out, args[0])
                self.path.labels_ok = False  # derived labels: only the mode follows them
        elif func in _OTHER_LOSSES and any(map(self.path.is_labels, args)):
            self.path.seen.add(func.__name__)  # a loss the recipes cannot edit (MSE, ...)
        return out
