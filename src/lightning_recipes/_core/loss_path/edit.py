"""What the loss recipes do to a training loss: the edit and the one function applying it.

`edited_loss` is the math both doors of the loss path run (`lightning_recipes._core.
loss_path`); `LossEdit` is what the recipes ask of a step; `check_loss_module` refuses, at
setup, a loss the recipes cannot act on.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lightning_recipes._core.loss_path.distill import Distill, check_distill_shapes, distilled
from lightning_recipes.errors import RecipeConfigError

__all__ = [
    "LOSS_FUNCTIONS",
    "SUPPORTED_LOSS_MODULES",
    "Kind",
    "LossEdit",
    "MixTerm",
    "check_distill_kind",
    "check_loss_module",
    "compose_mix",
    "edited_loss",
    "shift_logits",
    "uniform_target",
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


def shift_logits(logits: Tensor, offset: Tensor) -> Tensor:
    """``logits + offset``, the per-class ``offset`` added along the class dimension.

    The class dimension is dimension 1 of a batch (``(N, C)`` or ``(N, C, d1, ...)``, as
    ``F.cross_entropy`` takes it) and dimension 0 of one unbatched sample (``(C,)``).
    Logit adjustment adds ``tau * log(prior)`` in the loss and subtracts it after training.

    Args:
        logits: The scores, classes along dimension 1 (0 when one-dimensional).
        offset: One value per class, shape ``(C,)``; cast to the logits' dtype and device.

    Returns:
        The shifted logits (a new tensor).

    Raises:
        ValueError: If ``offset`` does not have one value per class of ``logits``.

    Examples:
        >>> shift_logits(torch.zeros(2, 3), torch.tensor([1.0, 2.0, 3.0])).tolist()
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    """
    dim = 0 if logits.dim() == 1 else 1
    if offset.dim() != 1 or logits.dim() == 0 or logits.shape[dim] != offset.shape[0]:
        raise ValueError(
            f"shift_logits: an offset of shape {tuple(offset.shape)} does not match logits "
            f"of shape {tuple(logits.shape)} (one value per class, classes along dimension "
            f"{dim})."
        )
    offset = offset.to(device=logits.device, dtype=logits.dtype)
    if logits.dim() > 2:
        offset = offset.view(-1, *([1] * (logits.dim() - 2)))
    return logits + offset


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
        logit_offset: Added to the loss's input along the class dimension before every
            term (`shift_logits`): logit adjustment's ``tau * log(prior)``; None for none.
            Multi-class losses only (cross-entropy on logits, NLL on log-probabilities).
        distill: The teacher's logits on this step's inputs, with ``T`` and ``alpha``
            (`Distillation`): the edited loss becomes ``(1 - alpha) * loss + alpha *
            T^2 * KL(teacher || student)`` (`distilled`).
    """

    weight: Tensor | None = None
    pos_weight: Tensor | None = None
    terms: tuple[MixTerm, ...] = (MixTerm(1.0),)
    smoothing: float = 0.0
    logit_offset: Tensor | None = None
    distill: Distill | None = None

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
            or self.logit_offset is not None
            or self.distill is not None
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
    inputs = bound["input"]
    if edit.distill is None:
        return _hard_call(func, kind, bound, edit, installed, batch_size)
    check_distill_kind(kind, func.__name__)
    check_distill_shapes(inputs, edit.distill, f"this {func.__name__} call")
    return distilled(
        lambda: _hard_call(func, kind, bound, edit, installed, batch_size),
        inputs,
        edit.distill,
        bound["reduction"],
    )


def check_distill_kind(kind: Kind, where: str) -> None:
    """Refuse distillation into a binary loss (it is defined on a softmax over classes)."""
    if kind in ("binary_logits", "binary_probs"):
        raise RecipeConfigError(
            f"Distillation cannot distil into {where}: the teacher's soft targets are a "
            "softmax over classes, and a binary loss has none. Train the student with "
            "F.cross_entropy (or F.nll_loss on log-probabilities) over the classes."
        )


def _hard_call(
    func: Callable[..., Tensor],
    kind: Kind,
    bound: dict[str, Any],
    edit: LossEdit,
    installed: Callable[[Tensor], bool],
    batch_size: int,
) -> Tensor:
    """The call's classification loss with the weights, mixes and smoothing of ``edit``."""
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
    if edit.logit_offset is not None:
        inputs = bound["input"] = _offset_input(name, kind, inputs, edit.logit_offset)

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


def _offset_input(name: str, kind: Kind, inputs: Tensor, offset: Tensor) -> Tensor:
    """The loss's input with the logit offset added (NLL's log-probabilities renormalised)."""
    if kind not in ("multiclass", "log_probs"):
        raise RecipeConfigError(
            f"LogitAdjustment cannot adjust {name}: it adds log class priors to multi-class "
            "scores (F.cross_entropy / nn.CrossEntropyLoss on logits, F.nll_loss / "
            "nn.NLLLoss on log_softmax outputs). Binary and multi-label losses have no "
            "class prior to add; remove LogitAdjustment."
        )
    classes = inputs.shape[0 if inputs.dim() == 1 else 1] if inputs.dim() else 0
    if classes != offset.shape[0]:
        raise RecipeConfigError(
            f"LogitAdjustment: {name} received scores for {classes} classes, but the prior "
            f"was counted over {offset.shape[0]} classes. Pass num_classes= matching the "
            "model's output."
        )
    shifted = shift_logits(inputs, offset)
    if kind == "log_probs":
        # log_softmax(log p + o) = log_softmax(logits + o): the adjusted log-probabilities.
        shifted = torch.log_softmax(shifted, dim=0 if inputs.dim() == 1 else 1)
    return shifted


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
