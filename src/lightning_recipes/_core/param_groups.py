"""Optimizer parameter groups without weight decay on biases and normalisation weights."""

from collections.abc import Sequence
from typing import Any

from torch import nn

from lightning_recipes._core.selection import NORM_TYPES, check_types, is_type
from lightning_recipes._core.validate import names_sequence
from lightning_recipes.errors import config_error

__all__ = ["no_decay_param_groups"]


def no_decay_param_groups(
    module: nn.Module,
    weight_decay: float,
    *,
    no_decay_types: Sequence[str] = (*NORM_TYPES, "Embedding"),
    no_decay_names: Sequence[str] = (),
    only_trainable: bool = False,
) -> list[dict[str, Any]]:
    """Split ``module``'s parameters into a decayed group and a not-decayed one.

    Not decayed: every bias, every parameter of a normalisation layer (BatchNorm,
    LayerNorm, GroupNorm... and embeddings), every 0-d or 1-d parameter (scales, gains,
    learned temperatures), and parameters whose name ends with one of ``no_decay_names``.
    This is what fastai (``wd_bn_bias=False``), timm and the BERT recipes do: decay pulls
    kernels towards zero, but a normalisation scale pulled to zero switches a unit off.

    Use it in ``configure_optimizers``::

        torch.optim.AdamW(no_decay_param_groups(self, 0.05), lr=1e-3)

    Args:
        module: The model.
        weight_decay: Decay of the first group.
        no_decay_types: Class names of modules whose parameters are not decayed.
        no_decay_names: Extra parameter-name suffixes not to decay (``"pos_embed"``).
        only_trainable: Leave out parameters with ``requires_grad=False``.

    Returns:
        ``[{"params": decayed, "weight_decay": weight_decay},
        {"params": not_decayed, "weight_decay": 0.0}]``, empty groups left out, each
        parameter once, in module order.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        >>> groups = no_decay_param_groups(net, 0.01)
        >>> [len(g["params"]) for g in groups], [g["weight_decay"] for g in groups]
        ([2, 4], [0.01, 0.0])
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, int | float):
        raise config_error("weight_decay", weight_decay, "Pass a number >= 0.")
    if not weight_decay >= 0:
        raise config_error("weight_decay", weight_decay, "Pass a number >= 0.")
    no_decay_types = check_types("no_decay_types", no_decay_types, allow_empty=True)
    no_decay_names = names_sequence(
        "no_decay_names",
        no_decay_names,
        what="parameter-name suffixes",
        example=["pos_embed"],
        allow_empty=True,
    )
    decay: list[nn.Parameter] = []
    keep: list[nn.Parameter] = []
    seen: set[int] = set()
    for module_name, sub in module.named_modules():
        exempt_module = is_type(sub, no_decay_types)
        for param_name, param in sub.named_parameters(recurse=False):
            if id(param) in seen or (only_trainable and not param.requires_grad):
                continue
            seen.add(id(param))
            full = f"{module_name}.{param_name}" if module_name else param_name
            exempt = (
                exempt_module
                or param_name == "bias"
                or param.ndim <= 1
                or any(full.endswith(s) for s in no_decay_names)
            )
            (keep if exempt else decay).append(param)
    groups: list[dict[str, Any]] = []
    if decay:
        groups.append({"params": decay, "weight_decay": float(weight_decay)})
    if keep:
        groups.append({"params": keep, "weight_decay": 0.0})
    return groups
