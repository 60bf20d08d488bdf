"""`FocalLoss`: the ``nn.Module`` form of `focal.focal_loss` (Lin et al. 2017).

``weight`` is a buffer that callbacks (e.g. class weighting) can replace, like
``CrossEntropyLoss.weight``; the math is `lightning_recipes.imbalance.focal.focal_loss`.
"""

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_recipes._core.validate import is_int
from lightning_recipes.errors import config_error
from lightning_recipes.imbalance.focal import (
    FOCAL_REDUCTIONS,
    FOCAL_TASKS,
    Reduction,
    Task,
    _as_alpha,
    _as_weight,
    _check_options,
    _check_values,
    focal_loss,
)

__all__ = ["FOCAL_REDUCTIONS", "FOCAL_TASKS", "FocalLoss", "focal_loss"]


class FocalLoss(nn.Module):
    """Focal loss as an ``nn.Module``: a drop-in for ``CrossEntropyLoss``/``BCEWithLogitsLoss``.

    Computes `focal_loss`. ``weight`` (and ``alpha`` when given per class) are buffers:
    they follow ``.to(device)`` and are saved in the ``state_dict``, and assigning
    ``loss.weight = tensor`` changes the class weights, as with ``CrossEntropyLoss``. For
    binary/multilabel tasks ``pos_weight`` is an alias of ``weight``, as in
    ``BCEWithLogitsLoss``.

    Args:
        gamma: Focusing parameter ``>= 0``; 0 gives cross-entropy.
        alpha: Multiclass: None, a float scale ``>= 0`` or one value per class.
            Binary/multilabel: None or the factor of positives, in ``[0, 1]``.
        weight: Multiclass: per-class weights, as ``CrossEntropyLoss(weight=...)``.
            Binary/multilabel: ``pos_weight``, as ``BCEWithLogitsLoss(pos_weight=...)``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        ignore_index: Multiclass target value to ignore.

    Raises:
        RecipeConfigError: If an argument is invalid (see `focal_loss`), or ``alpha`` or
            ``weight`` holds negative or non-finite values.

    Examples:
        >>> import torch
        >>> loss = FocalLoss(gamma=2.0, weight=[1.0, 3.0])
        >>> loss
        FocalLoss(task='multiclass', gamma=2.0, alpha=None, weight=[1.0, 3.0], reduction='mean',
                  ignore_index=-100)
        >>> loss(torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
        tensor(0.0227)
        >>> loss.weight = torch.tensor([1.0, 1.0])  # e.g. set by a callback
        >>> sorted(loss.state_dict())
        ['weight']
    """

    weight: Tensor | None
    alpha: float | Tensor | None

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | Tensor | None = None,
        weight: Sequence[float] | Tensor | None = None,
        reduction: Reduction = "mean",
        task: Task = "multiclass",
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        _check_options(gamma, reduction, task)
        if not is_int(ignore_index):
            raise config_error("ignore_index", ignore_index, "Pass an integer class id.")
        alpha_value = _as_alpha(alpha, task)
        weight_value = _as_weight(weight)
        self.gamma = float(gamma)
        self.reduction: Reduction = reduction
        self.task: Task = task
        self.ignore_index = ignore_index
        if isinstance(alpha_value, Tensor):
            _check_values("alpha", alpha_value)
            self.register_buffer("alpha", alpha_value)
        else:
            self.alpha = alpha_value
        if weight_value is not None:
            _check_values("weight", weight_value)
        self.register_buffer("weight", weight_value)

    @property
    def pos_weight(self) -> Tensor | None:
        """Alias of ``weight`` for binary/multilabel tasks, as in ``BCEWithLogitsLoss``.

        Returns:
            The weight of positives per class, or None.

        Raises:
            AttributeError: For ``task="multiclass"``, which has no positives: use
                ``weight``. So ``hasattr(loss, "pos_weight")`` tells the two apart.

        Examples:
            >>> import torch
            >>> loss = FocalLoss(task="multilabel")
            >>> loss.pos_weight = torch.tensor([2.0, 1.0])
            >>> loss.weight
            tensor([2., 1.])
            >>> hasattr(FocalLoss(task="multiclass"), "pos_weight")
            False
        """
        if self.task == "multiclass":
            raise AttributeError("pos_weight exists for task='binary'/'multilabel'; use weight.")
        return self.weight

    @pos_weight.setter
    def pos_weight(self, value: Tensor | None) -> None:
        if self.task == "multiclass":
            raise AttributeError("pos_weight exists for task='binary'/'multilabel'; use weight.")
        self.weight = value

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute `focal_loss` with this module's settings.

        Args:
            logits: Unnormalised scores (see `focal_loss`).
            target: Class ids (multiclass) or 0/1 targets of the logits' shape.

        Returns:
            The loss, reduced as configured.

        Raises:
            RecipeConfigError: If the shapes or dtypes do not fit (see `focal_loss`).

        Examples:
            >>> import torch
            >>> FocalLoss(gamma=0.0, task="binary")(torch.zeros(2), torch.ones(2))
            tensor(0.6931)
        """
        return focal_loss(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            weight=self.weight,
            reduction=self.reduction,
            task=self.task,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        """The settings shown by ``repr``.

        Returns:
            ``task, gamma, alpha, weight, reduction`` (and ``ignore_index`` if multiclass).

        Examples:
            >>> FocalLoss(task="binary", alpha=0.25).extra_repr()
            "task='binary', gamma=2.0, alpha=0.25, weight=None, reduction='mean'"
        """
        parts = [
            f"task={self.task!r}",
            f"gamma={self.gamma}",
            f"alpha={_brief(self.alpha)}",
            f"weight={_brief(self.weight)}",
            f"reduction={self.reduction!r}",
        ]
        if self.task == "multiclass":
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(parts)


def _brief(value: float | Tensor | None) -> str:
    """A short text for ``repr``: the values of small tensors, the shape of large ones."""
    if not isinstance(value, Tensor):
        return repr(value)
    if value.numel() <= 8:
        return repr([round(v, 4) for v in value.detach().cpu().flatten().tolist()])
    return f"<tensor of shape {tuple(value.shape)}>"
