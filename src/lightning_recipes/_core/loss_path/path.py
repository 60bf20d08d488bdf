"""`LossPath`: the training-loss edits of one LightningModule, shared by every loss recipe."""

import weakref
from collections.abc import Callable, MutableMapping
from typing import Any, ClassVar

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lightning_recipes._core.labels import LabelKey, batch_labels
from lightning_recipes._core.loss_path.distill import Distill, check_distill_shapes, distilled
from lightning_recipes._core.loss_path.doors import _Labels, _LossMode
from lightning_recipes._core.loss_path.edit import (
    Kind,
    LossEdit,
    _bind,
    _edit_call,
    _offset_input,
    check_distill_kind,
    compose_mix,
    edited_loss,
    uniform_target,
)
from lightning_recipes.errors import RecipeConfigError

__all__ = ["LABELS_STEPS", "LossPath"]

LABELS_STEPS = True
"""Whether the steps after a checked one skip the mode through `_Labels` (the tests turn
it off to compare with a run in which the mode sees every step)."""


class LossPath:
    """The training-loss edits of one LightningModule, shared by every loss recipe.

    Recipes `attach` at setup (each with the ``label_key`` of its labels) and `detach` at
    teardown. Per training batch the first of them calls `begin_batch` (labels found,
    mode entered), recipes add mixes and smoothing, `leave_step` runs before the backward
    pass and `end_batch` after the batch (a due edit that met no loss call is an error).
    Class weights belong to one label (two ``ClassWeighting`` on two heads keep theirs
    apart); mixes and smoothing apply to every label of the batch, since every per-sample
    target of a mixed input is mixed.
    """

    _by_module: ClassVar["weakref.WeakKeyDictionary[nn.Module, LossPath]"] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, module: nn.Module) -> None:
        self._module = weakref.ref(module)
        self.users: dict[int, tuple[str, LabelKey]] = {}
        self.weights: dict[LabelKey, tuple[Tensor | None, Tensor | None]] = {}
        self.offsets: dict[LabelKey, Tensor] = {}
        self.installed: list[tuple[nn.Module, str]] = []
        self.hooked: dict[int, list[RemovableHandle]] = {}
        self.edit = LossEdit()
        self.token: tuple[int, int] | None = None
        self.open = False
        self.mode: _LossMode | None = None
        self.labels: dict[int, tuple[Tensor, LabelKey]] = {}
        self.batch_size = -1
        self.matched = 0
        self.seen: set[str] = set()
        self._entered: list[int] = []
        # Class weights alone, in a loss object that holds them: after a step in which the
        # mode saw every matched call pass that object's weight buffer, the steps of the
        # epoch skip the mode (it costs ~1-10 us per torch call of the step); the first
        # step of every epoch checks again.
        self.buffer_only = False
        self.skipped = False
        self._needs_mode = False
        # Any other edit: after a checked step in which every edited call had the labels
        # themselves as target, the epoch's other steps are labels steps (`_Labels`).
        self.labels_steps = False
        self.labels_ok = True
        self.labels_step = False
        self._checked_matched = 0
        self._batch: Any = None
        self._originals: dict[LabelKey, Tensor] = {}
        self._swapped: tuple[Any, Any, Tensor] | None = None
        self._keys_cache: tuple[tuple[Any, ...], list[tuple[LabelKey, str]]] | None = None

    # ------------------------------------------------------------ recipes

    @classmethod
    def attach(cls, module: nn.Module, user: object, label_key: LabelKey = None) -> "LossPath":
        """The path of ``module`` (created on first use), with ``user`` registered.

        Args:
            module: The LightningModule.
            user: The recipe (its class name is used in messages).
            label_key: Where the recipe's labels are in a batch (see ``batch_labels``);
                None reads ``(inputs, labels)`` pairs and dicts with one label-like key.
        """
        path = cls._by_module.get(module)
        if path is None:
            path = cls._by_module[module] = cls(module)
        path.users[id(user)] = (type(user).__name__, label_key)
        return path

    def detach(self, user: object) -> None:
        """Unregister ``user``; the last one leaves the module clean (hooks removed)."""
        self.users.pop(id(user), None)
        if self.users:
            return
        self.close()
        for handles in self.hooked.values():
            for handle in handles:
                handle.remove()
        self.hooked.clear()
        self.weights.clear()
        self.offsets.clear()
        self.installed.clear()
        module = self._module()
        if module is not None:
            self._by_module.pop(module, None)

    def set_class_weights(
        self,
        label_key: LabelKey,
        weight: Tensor | None,
        pos_weight: Tensor | None,
        installed: tuple[nn.Module, str] | None = None,
    ) -> None:
        """Class weights of the labels at ``label_key``, for every training step from now on.

        Args:
            label_key: Where those labels are in a batch.
            weight: Multi-class weights (``weight=`` of cross-entropy and NLL).
            pos_weight: Positive-over-negative weights (``pos_weight=`` of BCE with logits).
            installed: The loss module and buffer name that also hold them: a call that
                passes that buffer is weighted already.
        """
        self.weights[label_key] = (weight, pos_weight)
        if installed is not None and installed not in self.installed:
            self.installed.append(installed)

    def set_logit_offset(self, label_key: LabelKey, offset: Tensor | None) -> None:
        """A per-class offset added to the loss's input for the labels at ``label_key``.

        Logit adjustment's ``tau * log(prior)``: every training step from now on computes
        the loss of ``logits + offset`` (`shift_logits`), before mixing, smoothing and
        class weights are applied to it. None removes it.

        Args:
            label_key: Where those labels are in a batch.
            offset: One value per class, on the module's device; None for none.
        """
        if offset is None:
            self.offsets.pop(label_key, None)
        else:
            self.offsets[label_key] = offset

    def hook(self, loss: nn.Module) -> None:
        """Open the module door on a custom loss module (its math may be invisible to the mode).

        If a loss function inside its ``forward`` was edited by the mode, the door does
        nothing more; otherwise (the library's ``FocalLoss``) it applies the edit through
        the module's own ``forward``.
        """
        if id(loss) in self.hooked:
            return
        self.hooked[id(loss)] = [
            loss.register_forward_pre_hook(self._before_loss),
            loss.register_forward_hook(self._after_loss, with_kwargs=True),
        ]

    # ------------------------------------------------------------ one batch

    def begin_batch(self, batch: Any, token: tuple[int, int], *, enter: bool = True) -> bool:
        """Start the training batch ``token``: find its labels, enter the mode.

        Args:
            batch: The training batch.
            token: What identifies it (epoch, batch index).
            enter: Enter the mode now; False leaves that to `enter_step`, so that work done
                on the batch before the training step (the augmentations) does not pay the
                mode's cost on each torch call.

        Returns:
            False if the batch was already started (by another recipe).

        Raises:
            RecipeConfigError: If a recipe's labels cannot be found (pass ``label_key``).
        """
        if self.token == token:
            return False
        self.close()
        self.token = token
        self.edit = LossEdit()
        self.matched = 0
        self.seen = set()
        self.skipped = self._needs_mode = False
        self.labels_ok, self.labels_step = True, False
        self._batch, self._originals = batch, {}
        if token[1] == 0:
            self.buffer_only = self.labels_steps = False  # check again every epoch
        for key, owners in self._label_keys():
            labels = batch_labels(batch, key, owner=owners)
            self._originals[key] = labels
            self.track(labels, key)
            self.batch_size = int(labels.shape[0]) if labels.dim() else -1
        self.open = True
        if enter:
            self.enter_step()
        return True

    def _label_keys(self) -> list[tuple[LabelKey, str]]:
        """Each label key in use and the recipes reading it (kept while the users stay)."""
        users = tuple(self.users.values())
        if self._keys_cache is None or self._keys_cache[0] != users:
            keys = dict.fromkeys(key for _, key in users)
            owners = [" / ".join(sorted({n for n, k in users if k == key})) for key in keys]
            self._keys_cache = (users, list(zip(keys, owners, strict=True)))
        return self._keys_cache[1]

    def enter_step(self) -> None:
        """Enter the mode for the training step of the open batch (idempotent)."""
        if self.open and self.mode is None:
            if self.buffer_only and not self.edit.mixes and not self.edit.smoothing:
                self.skipped = True  # the weight buffer does the work; checked this epoch
                return
            self.skipped = False
            if self.labels_steps and LABELS_STEPS and self._swap_labels():
                self.labels_step = True
                return
            self.mode = _LossMode(self)
            self.mode.__enter__()  # type: ignore[no-untyped-call]

    def mix(self, index: Tensor, lam: float) -> None:
        """The batch's inputs were mixed with partners ``index`` at weight ``lam``."""
        self.edit.terms = tuple(compose_mix(list(self.edit.terms), index, lam))
        self.batch_size = int(index.shape[0])

    def smooth(self, smoothing: float) -> None:
        """Smooth this batch's (mixed) targets towards the uniform one."""
        self.edit.smoothing = smoothing

    def distil(
        self, teacher_logits: Tensor | Callable[[], Tensor], temperature: float, alpha: float
    ) -> None:
        """Distil this batch's loss from ``teacher_logits`` (the teacher on its inputs).

        A function is called at the loss call (once), for teachers that wait for it.
        """
        self.edit.distill = Distill(teacher_logits, temperature, alpha)

    def leave_step(self) -> None:
        """Leave the mode (before the backward pass: the optimizer step is not seen)."""
        if self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)  # type: ignore[no-untyped-call]
        if self._swapped is not None:
            container, slot, original = self._swapped
            self._swapped = None
            container[slot] = original  # the batch's own labels back, before backward

    def _swap_labels(self) -> bool:
        """Put a `_Labels` view in the batch in place of its labels (one label, list/dict)."""
        if len(self._originals) != 1:
            return False
        (labels,) = self._originals.values()
        batch = self._batch
        if isinstance(batch, list):
            slots: Any = range(len(batch))
        elif isinstance(batch, MutableMapping):
            slots = list(batch)
        else:
            return False  # a tuple cannot take the view: the mode stays
        slot = next((i for i in slots if batch[i] is labels), None)
        if slot is None:
            return False
        view = labels.as_subclass(_Labels)
        view._loss_path, view._plain = self, labels
        batch[slot] = view
        self._swapped = (batch, slot, labels)
        return True

    def close(self) -> None:
        """Leave the mode and forget the batch's tensors (idempotent; also on errors)."""
        self.leave_step()
        self.labels = {}
        self._batch, self._originals = None, {}
        self.open = False
        self._entered.clear()

    def _due(self) -> bool:
        return bool(self.weights) or bool(self.offsets) or self.edit.changes_loss

    def end_batch(self, token: tuple[int, int], produced_loss: bool) -> None:
        """End the batch; raise if an edit was due, a loss was produced, and none matched."""
        if self.token != token or not self.open:
            return
        due, skipped, labels_step = self._due(), self.skipped, self.labels_step
        self.close()
        if skipped:
            return
        if due and produced_loss and not self.matched:
            raise RecipeConfigError(self.no_match_message())
        if not due:
            return  # nothing to edit (an unmixed batch of MixUp(p=0.5)): nothing learned
        if labels_step:
            self.labels_steps = self.matched == self._checked_matched
            return
        if self.matched and self.installed:
            self.buffer_only = not self._needs_mode
        self.labels_steps = bool(self.matched) and self.labels_ok and not self.seen
        self._checked_matched = self.matched

    def _names(self) -> list[str]:
        return sorted({name for name, _ in self.users.values()}) or ["The loss recipes"]

    def no_match_message(self) -> str:
        """Why no loss call was edited in a step, and what was looked for."""
        seen = (
            f" The labels reached {', '.join(sorted(self.seen))}, which cannot be weighted, "
            "mixed or smoothed."
            if self.seen
            else ""
        )
        return (
            f"{', '.join(self._names())} found no training loss to act on in this training "
            "step: it looks for a call of F.cross_entropy, F.nll_loss, "
            "F.binary_cross_entropy_with_logits or F.binary_cross_entropy (directly, or "
            "through nn.CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss, BCELoss or the "
            "library's FocalLoss) whose target is the batch's labels (label_key), made "
            f"while the module is in training mode.{seen} Compute the training loss with "
            "one of them on the batch's labels, outside any torch.compile'd function (a "
            "compiled model is fine), or remove the recipe."
        )

    # ------------------------------------------------------------ the doors' side

    def is_labels(self, value: Any) -> bool:
        """Whether ``value`` is one of the batch's labels or derived from them."""
        return isinstance(value, Tensor) and id(value) in self.labels

    def track(self, value: Any, key: LabelKey | Tensor) -> None:
        """Count ``value`` as the labels at ``key`` (or as the labels ``key`` is derived from)."""
        if isinstance(key, Tensor):
            key = self.labels[id(key)][1]
        if isinstance(value, Tensor):
            self.labels[id(value)] = (value, key)

    def _edit_for(self, target: Tensor) -> LossEdit:
        key = self.labels[id(target)][1]
        weight, pos_weight = self.weights.get(key, (None, None))
        edit = self.edit
        offset = self.offsets.get(key)
        return LossEdit(weight, pos_weight, edit.terms, edit.smoothing, offset, edit.distill)

    def _training(self) -> bool:
        module = self._module()
        return self.open and module is not None and module.training

    def loss_call(
        self, func: Callable[..., Tensor], kind: Kind, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Tensor:
        """One call of a loss function seen by the mode: edited when it is the training loss."""
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not self._training() or not self.is_labels(target):
            return func(*args, **kwargs)
        assert isinstance(target, Tensor)
        edit = self._edit_for(target)
        if not edit.changes_loss:
            return func(*args, **kwargs)
        self.matched += 1
        bound = _bind(func, args, kwargs)
        given = bound.get("pos_weight" if kind == "binary_logits" else "weight")
        if (
            edit.mixes
            or edit.smoothing
            or edit.logit_offset is not None
            or edit.distill is not None
            or given is None
            or not self._installed(given)
        ):
            self._needs_mode = True  # this call is weighted or mixed by the mode itself
        return _edit_call(func, kind, bound, edit, self._installed, self.batch_size)

    def _installed(self, weight: Tensor) -> bool:
        return any(weight is getattr(loss, name, None) for loss, name in self.installed)

    def _before_loss(self, module: nn.Module, args: Any) -> None:
        self._entered.append(self.matched)

    def _after_loss(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> Any:
        before = self._entered.pop() if self._entered else self.matched
        if not self._training() or self.matched != before:
            return None  # not training, or a loss function inside was edited already
        inputs = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if isinstance(target, _Labels):
            target = target._plain  # a labels step: the view of the labels the path tracks
        if not isinstance(inputs, Tensor) or not self.is_labels(target):
            return None
        assert isinstance(target, Tensor)
        edit = self._edit_for(target)
        if not edit.changes_loss:
            return None
        weighted = any(loss is module for loss, _ in self.installed)
        if (edit.weight is not None or edit.pos_weight is not None) and not weighted:
            raise RecipeConfigError(
                f"ClassWeighting cannot weight {type(module).__name__}: it calls none of "
                "F.cross_entropy, F.nll_loss or F.binary_cross_entropy_with_logits on the "
                "labels, and has no weight buffer. Use one of those losses, or FocalLoss."
            )
        self.matched += 1
        multiclass = getattr(module, "task", "multiclass") == "multiclass"
        kind: Kind = "multiclass" if multiclass else "binary_logits"
        name = type(module).__name__
        offset = edit.logit_offset
        if edit.mixes and target.shape[:1] != (self.batch_size,):
            raise RecipeConfigError(
                f"{name} received the labels with shape {tuple(target.shape)} during a "
                f"mixed batch of {self.batch_size} samples: mixing needs one target per "
                "sample, in batch order."
            )
        student = inputs  # the teacher's KL term reads the model's own logits

        def hard() -> Tensor:
            if not edit.mixes and not edit.smoothing and offset is None:
                return output  # type: ignore[no-any-return]  # weighted by its own buffer
            shifted = student if offset is None else _offset_input(name, kind, student, offset)
            return edited_loss(
                lambda t: module.forward(shifted, t),
                target,
                list(edit.terms),
                edit.smoothing,
                lambda: module.forward(shifted, uniform_target(kind, shifted)),
            )

        if edit.distill is None:
            plain = not edit.mixes and not edit.smoothing and offset is None
            return None if plain else hard()
        self._needs_mode = True
        check_distill_kind(kind, name)
        check_distill_shapes(student, edit.distill, name)
        return distilled(hard, student, edit.distill, getattr(module, "reduction", "mean"))
