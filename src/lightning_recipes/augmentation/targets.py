"""Route a mixed target into the module's own loss, without replacing the loss.

MixUp, CutMix and label smoothing need the loss of a *mixed* target while the batch
keeps its hard labels (metrics need them). The callbacks find the module's loss by the
convention ``ClassWeighting`` uses (the ``loss_fn`` / ``criterion`` / ``loss`` attribute,
or ``loss_attr``) and register one forward hook on it, shared by every augmentation
callback of this package (`TargetMixer`). The loss object stays the same object: class
weights that ``ClassWeighting`` installs in it (``weight``, ``pos_weight``), before or
after, are used by every term.

For one training batch the callbacks ``begin`` the mixer, add mixes and smoothing, and
``finish`` it after the training step. The hook acts only between those two calls and
only while the loss module is in training mode, so validation, testing, prediction and
anything called outside a training batch see the plain loss.
"""

import weakref
from typing import Any, ClassVar

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lightning_recipes._loss import LOSS_ATTRIBUTES, find_loss
from lightning_recipes.augmentation.mixing import MixTerm, compose_mix, mixed_loss
from lightning_recipes.errors import RecipeConfigError

__all__ = ["LOSS_ATTRIBUTES", "TargetMixer", "find_loss"]

_NO_SOFT_TARGETS = (nn.NLLLoss,)


class TargetMixer:
    """The forward hook on one loss module, shared by the callbacks that mix targets."""

    _by_loss: ClassVar["weakref.WeakKeyDictionary[nn.Module, TargetMixer]"] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loss: nn.Module) -> None:
        self.loss_name = type(loss).__name__
        self.supports_soft_targets = not isinstance(loss, _NO_SOFT_TARGETS)
        self.users: set[int] = set()
        self.handle: RemovableHandle | None = loss.register_forward_hook(
            self._hook, with_kwargs=True
        )
        self.begin()

    @classmethod
    def attach(cls, loss: nn.Module, user: object) -> "TargetMixer":
        """The mixer of ``loss`` (created on first use), with ``user`` registered."""
        mixer = cls._by_loss.get(loss)
        if mixer is None or mixer.handle is None:
            mixer = cls(loss)
            cls._by_loss[loss] = mixer
        mixer.users.add(id(user))
        return mixer

    def detach(self, user: object) -> None:
        """Unregister ``user``; the hook is removed with the last user."""
        self.users.discard(id(user))
        if not self.users and self.handle is not None:
            self.handle.remove()
            self.handle = None

    # ------------------------------------------------------------ one batch

    def begin(self) -> None:
        """Start a training batch: no mix, no smoothing yet."""
        self.batch_size = -1
        self.terms: list[MixTerm] = [MixTerm(1.0)]
        self.smoothing = 0.0
        self.active = False
        self.calls = 0

    def mix(self, index: Tensor, lam: float) -> None:
        """Record that the batch's inputs were mixed with partners ``index`` at ``lam``."""
        self.terms = compose_mix(self.terms, index, lam)
        self.batch_size = index.shape[0]
        self.active = True

    def smooth(self, smoothing: float) -> None:
        """Smooth this batch's targets towards the uniform distribution."""
        self.smoothing = smoothing
        self.active = True

    def finish(self) -> bool:
        """End the batch; False when it mixed but the loss was never called."""
        unused = self.active and self.calls == 0
        self.begin()
        return not unused

    # ------------------------------------------------------------ the hook

    def _hook(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> Any:
        if not self.active or not module.training:
            return None
        inputs = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if len(args) > 2 or not isinstance(inputs, Tensor) or not isinstance(target, Tensor):
            raise RecipeConfigError(
                f"The augmentation callbacks call {self.loss_name} as loss(input, target); it "
                "was called with other arguments. Call the loss as loss_fn(logits, labels)."
            )
        if self.batch_size >= 0 and target.shape[:1] != (self.batch_size,):
            raise RecipeConfigError(
                f"{self.loss_name} received targets of shape {tuple(target.shape)} during a "
                f"mixed batch of {self.batch_size} samples: mixing needs one target per "
                "sample, in batch order (samples along dimension 0). Call the loss on the "
                "whole batch's logits and labels."
            )
        if self.smoothing and not self.supports_soft_targets:
            raise RecipeConfigError(
                f"LabelSmoothing cannot smooth {self.loss_name}: it takes class ids only. "
                "Use nn.CrossEntropyLoss (log-softmax + NLL) on the logits."
            )
        self.calls += 1
        return mixed_loss(module, inputs, target, self.terms, self.smoothing, first=output)
