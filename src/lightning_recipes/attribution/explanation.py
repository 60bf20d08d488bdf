"""What `explain` returns (`Explanation`) and its per-feature summary (`feature_importance`).

Pure: tensors in, tensors out, no captum and no Lightning.
"""

from dataclasses import dataclass

from torch import Tensor

__all__ = ["Explanation", "feature_importance"]


@dataclass
class Explanation:
    """The attributions of one method for a batch of inputs, detached and on the CPU.

    Attributes:
        method: The name in `METHODS`, or the captum class name when a class was passed.
        attributions: ``float32``, the inputs' shape: each input feature's contribution to
            the explained output.
        target: ``(N,)`` ``long``: the class explained for each input.
        completeness_gap: ``(N,)``: ``|sum(attributions) - (f(x) - f(baseline))|`` per
            input, for the methods with a convergence delta (``integrated_gradients``,
            ``deep_lift``, ``deep_lift_shap``, ``gradient_shap``; for the last two the mean
            over the baseline samples), else ``None``. Near 0 means the attributions add
            up to the change of the output.

    Examples:
        >>> import torch
        >>> e = Explanation("saliency", torch.ones(2, 3), torch.tensor([0, 1]), None)
        >>> e.attributions.shape, e.completeness_gap
        (torch.Size([2, 3]), None)
    """

    method: str
    attributions: Tensor
    target: Tensor
    completeness_gap: Tensor | None


def feature_importance(explanation: Explanation) -> tuple[Tensor, dict[int, Tensor]]:
    """Mean absolute attribution per feature, over all inputs and per explained class.

    Args:
        explanation: The result of `explain` on 2-D (tabular) inputs.

    Returns:
        ``(overall, by_class)``: a ``(features,)`` tensor, and one per class present.

    Examples:
        >>> import torch
        >>> from lightning_recipes.attribution.explain import Explanation
        >>> e = Explanation("saliency", torch.tensor([[1.0, -3.0], [3.0, 1.0]]),
        ...                 torch.tensor([0, 1]), None)
        >>> overall, by_class = feature_importance(e)
        >>> overall.tolist(), by_class[0].tolist()
        ([2.0, 2.0], [1.0, 3.0])
    """
    magnitude = explanation.attributions.abs().reshape(len(explanation.attributions), -1)
    by_class = {
        int(c): magnitude[explanation.target == c].mean(dim=0)
        for c in sorted(set(explanation.target.tolist()))
    }
    return magnitude.mean(dim=0), by_class
