"""The training loss path: the one place where loss recipes change the training loss.

Loss recipes (``ClassWeighting``, ``MixUp``, ``CutMix``, ``LabelSmoothing``) never replace
the user's loss. They tell the module's `LossPath` what to do to the current training
step's loss (`LossEdit`): class weights (for the whole fit), mixed targets and smoothing
(for one batch). Two doors lead to the same edit, applied by one function, `edited_loss`:

1. **The functional door** (zero edits to the module): a ``TorchFunctionMode`` active only
   around the training step sees every call of ``F.cross_entropy``, ``F.nll_loss``,
   ``F.binary_cross_entropy_with_logits`` and ``F.binary_cross_entropy``. That includes the
   calls that ``nn.CrossEntropyLoss``, ``nn.NLLLoss``, ``nn.BCEWithLogitsLoss`` and
   ``nn.BCELoss`` make inside their ``forward``, whether the module holds the loss as an
   attribute (``self.loss_fn``) or builds one in ``training_step``. A call is edited when
   its target is the batch's labels, or a tensor derived from them by a dtype or shape
   change (``y.float()``, ``y.long()``, ``y.view(-1, 1)``, ``y.unsqueeze(1)``,
   ``F.one_hot(y)``, ...), and the module is in training mode. Any other call (an
   auxiliary loss, a distillation term, an attack run in eval mode) is left alone.
2. **The module door**: a loss module whose math is not one of those functions (the
   library's ``FocalLoss``) gets a forward hook that applies the same edit through its own
   ``forward``.

The mode costs every other torch call of the step a trip through Python (~1-8 us each:
~0.1 ms on a small CNN's step). So it checks a step, and the steps after it may skip it:

- **labels steps**: when every call the mode edited in the checked step had the batch's
  labels themselves as target (no derived labels such as ``y.float()``, no other loss on
  them), and the batch is a list or a dict, the other steps of the epoch put a view of
  the labels that is a tensor subclass (`_Labels`, torch's ``__torch_function__``
  protocol) in the batch for the training step: only calls that touch the labels reach
  Python, and the loss calls among them are edited by the same `loss_call`, bit for bit.
  The batch gets its own labels back before the backward pass;
- **buffer-only steps**: class weights alone, held by the loss object (``self.loss_fn``),
  need neither once a step showed every call passing them.

The first step of every epoch is checked again; a labels step that edits another number
of calls than the checked one makes the next step a checked one, and one that edits none
raises, as any step does. torch's functions are never replaced (no monkey-patching).

The order is the contract's (``docs/combining.md``, rule 6): the target's mix terms first
(MixUp and CutMix compose), then smoothing of the mixed target, every term computed with
the class weights. Validation, test and predict never see an edit (the mode is entered at
``on_train_batch_start`` and left before the backward pass), and a training step in which
an edit was due but no call matched raises `RecipeConfigError` naming what was looked for.

Under ``torch.compile`` the mode sees the loss call when the loss is computed outside the
compiled region (``self.model = torch.compile(model)``, the usual pattern); a compiled
region that itself calls the loss is traced with the mode active and must not graph-break
on it (tested in ``tests/test_loss_path.py``).
"""

import inspect
import weakref
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from lightning_recipes._core.labels import LabelKey, batch_labels
from lightning_recipes.errors import RecipeConfigError

__all__ = [
    "Kind",
    "LOSS_FUNCTIONS",
    "SUPPORTED_LOSS_MODULES",
    "LossEdit",
    "LossPath",
    "LossRecipe",
    "MixTerm",
    "check_loss_module",
    "compose_mix",
    "edited_loss",
    "uniform_target",
    "weighted_training_loss",
]

Kind = Literal["multiclass", "log_probs", "binary_logits", "binary_probs"]

LOSS_FUNCTIONS: dict[Callable[..., Tensor], Kind] = {
    F.cross_entropy: "multiclass",
    F.nll_loss: "log_probs",
    F.binary_cross_entropy_with_logits: "binary_logits",
    F.binary_cross_entropy: "binary_probs",
}
"""The loss functions the functional door edits, and what their input is."""


SUPPORTED_LOSS_MODULES: tuple[type[nn.Module], ...] = (
    nn.CrossEntropyLoss,
    nn.NLLLoss,
    nn.BCEWithLogitsLoss,
    nn.BCELoss,
)
"""torch's loss modules whose ``forward`` calls one of `LOSS_FUNCTIONS`."""

# Each loss function's parameters with their defaults, to bind a call's arguments by name
# (a dict built by hand: inspect.Signature.bind cost ~0.1 ms per call, measured).
_PARAMETERS: dict[Callable[..., Tensor], dict[str, Any]] = {
    func: {name: p.default for name, p in inspect.signature(func).parameters.items()}
    for func in LOSS_FUNCTIONS
}


def _bind(
    func: Callable[..., Tensor], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """``func``'s arguments by name, defaults filled in."""
    bound = dict(_PARAMETERS[func])
    bound.update(zip(bound, args, strict=False))
    bound.update(kwargs)
    return bound


# Operations whose result is "the labels" again, in another dtype or shape: a call whose
# target went through them still has the batch's labels as its target.
_DERIVES_LABELS: frozenset[Any] = frozenset(
    {
        Tensor.long,
        Tensor.int,
        Tensor.float,
        Tensor.double,
        Tensor.half,
        Tensor.bfloat16,
        Tensor.to,
        Tensor.type,
        Tensor.type_as,
        Tensor.squeeze,
        Tensor.unsqueeze,
        Tensor.view,
        Tensor.view_as,
        Tensor.reshape,
        Tensor.reshape_as,
        Tensor.flatten,
        Tensor.clone,
        Tensor.contiguous,
        Tensor.detach,
        Tensor.cpu,
        Tensor.cuda,
        torch.squeeze,
        torch.unsqueeze,
        torch.reshape,
        torch.flatten,
        F.one_hot,
    }
)


# torch's other losses: named in the error when they receive the labels.
_OTHER_LOSSES: frozenset[Any] = frozenset(
    getattr(F, name)
    for name in dir(F)
    if name.endswith("_loss") and getattr(F, name) not in LOSS_FUNCTIONS
) | frozenset({F.kl_div})


# ---------------------------------------------------------------- the pure math


@dataclass(frozen=True)
class MixTerm:
    """One term of a mixed target: ``coef * y[index]`` (``index`` None is ``y`` itself)."""

    coef: float
    index: Tensor | None = None


def compose_mix(terms: list[MixTerm], index: Tensor, lam: float) -> list[MixTerm]:
    """The target terms after mixing a batch whose targets are ``terms`` with ``index``.

    Mixing sample ``i`` with sample ``index[i]`` at weight ``lam`` turns the target
    ``t_i = sum_j c_j * y[idx_j][i]`` into ``lam * t_i + (1 - lam) * t[index][i]``.

    Args:
        terms: The current terms (``[MixTerm(1.0)]`` for an unmixed batch).
        index: The partner permutation.
        lam: The weight of each sample itself.

    Returns:
        Twice as many terms (terms with weight 0 are dropped).

    Examples:
        >>> out = compose_mix([MixTerm(1.0)], torch.tensor([1, 0]), 0.75)
        >>> [(t.coef, None if t.index is None else t.index.tolist()) for t in out]
        [(0.75, None), (0.25, [1, 0])]
    """
    kept = [MixTerm(t.coef * lam, t.index) for t in terms]
    moved = [
        MixTerm(t.coef * (1.0 - lam), index if t.index is None else t.index[index]) for t in terms
    ]
    return [t for t in kept + moved if t.coef != 0.0]


def uniform_target(kind: Kind, inputs: Tensor) -> Tensor:
    """The uniform target of label smoothing for a loss of ``kind`` on ``inputs``.

    ``1 / K`` over the class dimension (dimension 1) for cross-entropy and NLL; 0.5
    everywhere for the binary losses (each label's two outcomes equally likely).

    Examples:
        >>> uniform_target("multiclass", torch.zeros(2, 4))[0].tolist()
        [0.25, 0.25, 0.25, 0.25]
    """
    if kind in ("binary_logits", "binary_probs"):
        return torch.full_like(inputs, 0.5)
    return torch.full_like(inputs, 1.0 / inputs.shape[1])


def edited_loss(
    loss: Callable[[Tensor], Tensor],
    target: Tensor,
    terms: list[MixTerm],
    smoothing: float = 0.0,
    uniform_loss: Callable[[], Tensor] | None = None,
) -> Tensor:
    """``(1 - s) * sum_j c_j * loss(target[idx_j]) + s * uniform_loss()``.

    The loss of a mixed, smoothed target for any loss linear in its target
    (cross-entropy, NLL, BCE and their class-weighted forms are): mixing targets is mixing
    losses, so integer labels work, and class weights in ``loss`` weight every term.

    Args:
        loss: The loss of the step's inputs against a target (weights already bound).
        target: The batch's target, samples along dimension 0.
        terms: The target's mix terms (`compose_mix`; ``[MixTerm(1.0)]`` when unmixed).
        smoothing: Label smoothing in [0, 1).
        uniform_loss: The loss against the uniform target (needed when ``smoothing``).

    Returns:
        The loss.

    Examples:
        >>> logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
        >>> index = torch.tensor([1, 0, 3, 2])
        >>> ce = lambda t: F.cross_entropy(logits, t)
        >>> got = edited_loss(ce, y, [MixTerm(0.7), MixTerm(0.3, index)])
        >>> bool(torch.isclose(got, 0.7 * ce(y) + 0.3 * ce(y[index])))
        True
    """
    total: Tensor | None = None
    for term in terms:
        part = loss(target if term.index is None else target[term.index])
        if term.coef != 1.0:  # x * 1.0 is x, bit for bit: one op less for an unmixed target
            part = part * term.coef
        total = part if total is None else total + part
    if total is None:
        total = loss(target)
    if smoothing:
        if uniform_loss is None:
            raise ValueError("edited_loss: smoothing needs uniform_loss")
        total = total * (1.0 - smoothing) + uniform_loss() * smoothing
    return total


@dataclass
class LossEdit:
    """What the loss recipes ask of the current training step's loss.

    Attributes:
        weight: Class weights for multi-class losses (``weight=``), None for none.
        pos_weight: Weight of positives over negatives for BCE with logits, None for none.
        terms: The target's mix terms.
        smoothing: Label smoothing of the (mixed) target.
        owners: The recipe that set each part, for messages.
    """

    weight: Tensor | None = None
    pos_weight: Tensor | None = None
    terms: tuple[MixTerm, ...] = (MixTerm(1.0),)
    smoothing: float = 0.0

    @property
    def mixes(self) -> bool:
        """Whether the target is mixed."""
        return len(self.terms) != 1 or self.terms[0].index is not None

    @property
    def changes_loss(self) -> bool:
        """Whether anything is to be done to the loss."""
        return (
            self.weight is not None
            or self.pos_weight is not None
            or self.mixes
            or bool(self.smoothing)
        )


def _edit_call(
    func: Callable[..., Tensor],
    kind: Kind,
    bound: dict[str, Any],
    edit: LossEdit,
    installed: Callable[[Tensor], bool],
    batch_size: int,
) -> Tensor:
    """Apply ``edit`` to one call of a loss function (its arguments ``bound`` by name)."""
    inputs, target = bound["input"], bound["target"]
    name = func.__name__
    if edit.mixes and target.shape[:1] != (batch_size,):
        raise RecipeConfigError(
            f"{name} received the batch's labels with shape {tuple(target.shape)} during a "
            f"mixed batch of {batch_size} samples: mixing needs one target per sample, in "
            "batch order (samples along dimension 0). Compute the loss on the whole batch's "
            "logits and labels (flatten after the loss, not before)."
        )
    weight_arg = "pos_weight" if kind == "binary_logits" else "weight"
    wanted = edit.pos_weight if kind == "binary_logits" else edit.weight
    if kind == "binary_probs" and (edit.weight is not None or edit.pos_weight is not None):
        raise RecipeConfigError(
            "ClassWeighting cannot weight binary_cross_entropy (nn.BCELoss, on "
            "probabilities): it has no pos_weight. Use F.binary_cross_entropy_with_logits "
            "(nn.BCEWithLogitsLoss) on the logits."
        )
    if wanted is not None:
        given = bound.get(weight_arg)
        if given is None:
            bound[weight_arg] = wanted.to(device=inputs.device)  # as a weight buffer would be
        elif not installed(given):
            raise RecipeConfigError(
                f"ClassWeighting: this {name} call already passes {weight_arg}=; the class "
                "weights would be applied twice. Remove the argument, or remove ClassWeighting."
            )
    if edit.smoothing and bound.get("label_smoothing", 0.0):
        raise RecipeConfigError(
            f"LabelSmoothing: this {name} call already smooths "
            f"(label_smoothing={bound['label_smoothing']}); remove one of the two."
        )

    if (
        kind == "multiclass"
        and edit.smoothing
        and not edit.mixes
        and bound.get("weight") is None
        and not target.is_floating_point()
    ):
        # Smoothing alone, class indices, no weights: torch's own label_smoothing= is this
        # loss (to rounding, ~1e-7) in one call instead of two and the arithmetic; it also
        # leaves ignore_index samples out of the uniform term, as they are of the other.
        return func(**{**bound, "label_smoothing": edit.smoothing})

    def loss(t: Tensor) -> Tensor:
        return func(**{**bound, "target": t})

    def uniform_loss() -> Tensor:
        uniform = uniform_target(kind, inputs)
        if kind == "log_probs":
            # Soft targets need cross-entropy; log_softmax of log-probabilities is the
            # identity, so this is the NLL of the uniform target with the same weights.
            return F.cross_entropy(
                inputs, uniform, weight=bound.get("weight"), reduction=bound["reduction"]
            )
        return func(**{**bound, "target": uniform})

    return edited_loss(loss, target, list(edit.terms), edit.smoothing, uniform_loss)


def check_loss_module(loss: nn.Module, attr: str, recipe: str, *, weighting: bool) -> Kind | None:
    """Refuse, at setup, a loss module the loss recipes cannot act on.

    Args:
        loss: The module's loss object.
        attr: Its attribute name, for the message.
        recipe: The recipe asking.
        weighting: Whether the recipe installs class weights (BCELoss cannot take them).

    Returns:
        The kind of a torch loss module, or None for another module (its own forward is
        looked into by the functional door, or hooked: ``FocalLoss``).

    Raises:
        RecipeConfigError: For one of torch's losses other than those (MSE, L1, KL,
            ...), or ``BCELoss`` with class weights.
    """
    for cls, kind in zip(SUPPORTED_LOSS_MODULES, LOSS_FUNCTIONS.values(), strict=True):
        if isinstance(loss, cls) and not (weighting and kind == "binary_probs"):
            return kind
    torch_loss = type(loss).__module__.startswith("torch.")
    if not (torch_loss and isinstance(loss, nn.modules.loss._Loss)):
        return None
    raise RecipeConfigError(
        f"{recipe} cannot {'weight' if weighting else 'mix or smooth'} {attr} = "
        f"{type(loss).__name__}: it acts on classification losses with class targets "
        "(CrossEntropyLoss / F.cross_entropy, NLLLoss / F.nll_loss, BCEWithLogitsLoss / "
        "F.binary_cross_entropy_with_logits, lightning_recipes FocalLoss"
        f"{'' if weighting else ', BCELoss'}). Remove {recipe}, or point loss_attr= at the "
        "classification loss."
    )


# ---------------------------------------------------------------- the two doors


LABELS_STEPS = True
"""Whether the steps after a checked one skip the mode through `_Labels` (the tests turn
it off to compare with a run in which the mode sees every step)."""


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
        return bool(self.weights) or self.edit.changes_loss

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
        weight, pos_weight = self.weights.get(self.labels[id(target)][1], (None, None))
        return LossEdit(weight, pos_weight, self.edit.terms, self.edit.smoothing)

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
        if edit.mixes or edit.smoothing or given is None or not self._installed(given):
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
        if not edit.mixes and not edit.smoothing:
            return None  # weighted by its own buffer: nothing more to do
        if edit.mixes and target.shape[:1] != (self.batch_size,):
            raise RecipeConfigError(
                f"{type(module).__name__} received the labels with shape "
                f"{tuple(target.shape)} during a mixed batch of {self.batch_size} samples: "
                "mixing needs one target per sample, in batch order."
            )
        multiclass = getattr(module, "task", "multiclass") == "multiclass"
        kind: Kind = "multiclass" if multiclass else "binary_logits"
        return edited_loss(
            lambda t: module.forward(inputs, t),
            target,
            list(edit.terms),
            edit.smoothing,
            lambda: module.forward(inputs, uniform_target(kind, inputs)),
        )


@contextmanager
def weighted_training_loss(source: nn.Module, probe: nn.Module, batch: Any) -> Iterator[None]:
    """Run ``probe``'s training step on ``batch`` with the class weights of ``source``.

    For a recipe that trains a copy of the module (the LR finder's range test): the copy's
    loss is weighted as the module's is, through either door, with no batch mixing.

    Args:
        source: The module whose loss path holds the weights.
        probe: A deep copy of it.
        batch: The batch the copy trains on.
    """
    path = LossPath._by_module.get(source)
    if path is None or not path.weights:
        yield
        return
    twin = LossPath(probe)
    twin.users = dict(path.users)
    twin.weights = dict(path.weights)
    names = {id(module): name for name, module in source.named_modules()}
    for loss, buffer in path.installed:
        if id(loss) in names:
            twin.installed.append((probe.get_submodule(names[id(loss)]), buffer))
    twin.begin_batch(batch, (-1, -1))
    try:
        yield
    finally:
        twin.close()


class LossRecipe(Callback):
    """The Lightning side of a recipe that edits the training loss through the `LossPath`.

    Subclasses call `attach_loss_path` in ``setup`` and add their part to
    ``self.loss_path.edit`` (or call ``mix`` / ``smooth`` / ``set_class_weights``); this
    base starts each training batch (labels found, mode entered), leaves the mode before
    the backward pass, checks at the batch's end that the edit met the loss, and undoes
    everything at teardown and on exceptions.
    """

    loss_path: LossPath | None = None

    def attach_loss_path(self, pl_module: LightningModule, label_key: LabelKey) -> LossPath:
        """Join ``pl_module``'s loss path (idempotent)."""
        self.loss_path = LossPath.attach(pl_module, self, label_key)
        return self.loss_path

    @staticmethod
    def batch_token(trainer: Trainer, batch_idx: int) -> tuple[int, int]:
        """What identifies a training batch across the callbacks of one Trainer."""
        return (trainer.current_epoch, batch_idx)

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.loss_path is not None:
            self.loss_path.begin_batch(batch, self.batch_token(trainer, batch_idx))

    @override
    def on_before_zero_grad(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Automatic optimization zeroes the gradients after the training step, before the
        # backward pass: the step is over, and zero_grad's torch calls need not pay the mode.
        if self.loss_path is not None and pl_module.automatic_optimization:
            self.loss_path.leave_step()

    @override
    def on_before_backward(
        self, trainer: Trainer, pl_module: LightningModule, loss: Tensor
    ) -> None:
        # Manual optimization calls backward inside training_step: stay until its end.
        if self.loss_path is not None and pl_module.automatic_optimization:
            self.loss_path.leave_step()

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.loss_path is not None:
            token = self.batch_token(trainer, batch_idx)
            self.loss_path.end_batch(token, produced_loss=outputs is not None)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.loss_path is not None:
            self.loss_path.detach(self)
            self.loss_path = None

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if self.loss_path is not None:
            self.loss_path.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["loss_path"] = None  # hooks and a mode of one process
        return state
