"""Layer groups of a backbone, and the learning rates that discriminative fine-tuning gives them.

Pure functions on modules: a backbone is split into ordered groups, from the input
(bottom) to the output (top); gradual unfreezing thaws them from the top, and
discriminative learning rates shrink towards the bottom. Parameters are tracked by
identity (two parameters with equal values are still two parameters).
"""

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "GroupSpec",
    "LayerGroup",
    "layer_decay_lrs",
    "layer_groups",
    "spread_lrs",
]


@dataclass
class LayerGroup:
    """Modules frozen and unfrozen together.

    Attributes:
        name: A readable name (the module path, or ``"stem"``/``"rest"``).
        modules: The modules of the group.
        params: Their parameters, each once, in definition order.
    """

    name: str
    modules: list[nn.Module]
    params: list[nn.Parameter] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Collect the parameters of the modules, each once (by identity)."""
        if not self.params:
            seen: set[int] = set()
            for module in self.modules:
                for param in module.parameters():
                    if id(param) not in seen:
                        seen.add(id(param))
                        self.params.append(param)


GroupSpec = str | Sequence[str] | Callable[[nn.Module], Sequence[nn.Module]]
"""``"auto"``, ``"children"``, a list of module names/globs, or a callable."""

_STAGE_ATTRIBUTES = ("blocks", "stages", "layers", "features")


def _auto(backbone: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Sensible groups for common architectures (see `layer_groups`)."""
    children = list(backbone.named_children())
    if isinstance(backbone, nn.Sequential) or not children:
        return [(name, [module]) for name, module in children]
    resnet = [f"layer{i}" for i in range(1, 5)]
    if all(hasattr(backbone, name) for name in resnet):
        stem = [m for n, m in children if n not in resnet and n not in ("fc", "avgpool")]
        top = (
            [("fc", [backbone.fc])] if isinstance(getattr(backbone, "fc", None), nn.Module) else []
        )
        return [("stem", stem)] + [(n, [getattr(backbone, n)]) for n in resnet] + top
    for attribute in _STAGE_ATTRIBUTES:
        stages = getattr(backbone, attribute, None)
        if isinstance(stages, nn.Sequential | nn.ModuleList) and len(stages) > 1:
            index = [n for n, _ in children].index(attribute)
            stem = [m for _, m in children[:index]]
            rest = [m for _, m in children[index + 1 :]]
            groups = [(f"{attribute}.{i}", [m]) for i, m in enumerate(stages)]
            return ([("stem", stem)] if stem else []) + groups + ([("rest", rest)] if rest else [])
    return [(name, [module]) for name, module in children]


def _by_names(backbone: nn.Module, patterns: Sequence[str]) -> list[tuple[str, list[nn.Module]]]:
    named = dict(backbone.named_modules())
    groups = []
    for pattern in patterns:
        matched = [m for n, m in named.items() if n and fnmatch.fnmatchcase(n, pattern)]
        if not matched:
            available = ", ".join(n for n, _ in backbone.named_children()) or "none"
            raise config_error(
                "groups",
                pattern,
                f"No module of the backbone matches it. Top-level modules: {available}.",
            )
        groups.append((pattern, matched))
    return groups


def layer_groups(backbone: nn.Module, groups: GroupSpec = "auto") -> list[LayerGroup]:
    """Split a backbone into ordered layer groups, from the input (bottom) to the output.

    * ``"auto"``: the children of an ``nn.Sequential``; for torchvision ResNets the stem
      (``conv1``, ``bn1``...) then ``layer1``...``layer4`` (and ``fc`` last, unless it
      was replaced by a parameterless module); for timm-style models with
      ``blocks`` / ``stages`` / ``layers`` / ``features`` a stem group, one group per
      block and a final ``rest`` group; otherwise the top-level children.
    * ``"children"``: the top-level children, in definition order.
    * A list of module names or globs (``["layer1", "layer2.*"]``): one group each, in
      list order (bottom first).
    * A callable ``backbone -> [module, ...]``: one group per module returned.

    Parameters directly on the backbone (not in a child) and in no group are put in a
    first ``"unmatched"`` group, so that none is left out.

    Args:
        backbone: The module to split.
        groups: How to split it.

    Returns:
        The groups, bottom first.

    Raises:
        RecipeConfigError: If a name matches nothing (the message lists the available
            modules), a module is in two groups, or there is no group.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> [(g.name, len(g.params)) for g in layer_groups(net) if g.params]
        [('0', 2), ('2', 2)]
    """
    if groups == "auto":
        spec = _auto(backbone)
    elif groups == "children":
        spec = [(name, [module]) for name, module in backbone.named_children()]
    elif isinstance(groups, str):
        raise config_error(
            "groups", groups, "Pass 'auto', 'children', a list of names or a callable."
        )
    elif callable(groups):
        spec = [(f"group{i}", [m]) for i, m in enumerate(groups(backbone))]
    else:
        spec = _by_names(backbone, list(groups))
    result = [LayerGroup(name, modules) for name, modules in spec]
    owner: dict[int, str] = {}
    for group in result:
        for param in group.params:
            if id(param) in owner:
                raise RecipeConfigError(
                    f"A parameter belongs to two layer groups ({owner[id(param)]!r} and "
                    f"{group.name!r}): make the groups disjoint."
                )
            owner[id(param)] = group.name
    leftover = [p for p in backbone.parameters() if id(p) not in owner]
    if leftover:
        result.insert(0, LayerGroup("unmatched", [], leftover))
    if not any(group.params for group in result):
        raise config_error("backbone", type(backbone).__name__, "It has no parameters to freeze.")
    return [group for group in result if group.params]


def layer_decay_lrs(base_lr: float, n_groups: int, decay: float) -> list[float]:
    """Learning rates of ``n_groups`` backbone groups under layer-wise decay.

    The head trains at ``base_lr`` (level 0); the backbone group nearest the head is level
    1, the next one level 2, and so on: level ``k`` gets ``base_lr * decay**k`` (as BEiT's
    layer decay and ULMFiT's discriminative fine-tuning).

    Args:
        base_lr: The head's learning rate.
        n_groups: Number of backbone groups.
        decay: Factor per level, in (0, 1] (1: no decay).

    Returns:
        The rates of the groups, **bottom first** (aligned with `layer_groups`).

    Examples:
        >>> layer_decay_lrs(1.0, 3, 0.5)
        [0.125, 0.25, 0.5]
    """
    if not decay > 0:
        raise config_error("lr_decay", decay, "Pass a factor in (0, 1], e.g. 0.5.")
    return [base_lr * decay ** (n_groups - i) for i in range(n_groups)]


def spread_lrs(low: float, high: float, n_groups: int) -> list[float]:
    """Rates spread geometrically from ``low`` (bottom group) to ``high`` (top), as fastai's slice.

    Args:
        low: The bottom group's rate.
        high: The top group's rate.
        n_groups: Number of groups.

    Returns:
        The rates, bottom first.

    Examples:
        >>> [round(v, 6) for v in spread_lrs(1e-4, 1e-2, 3)]
        [0.0001, 0.001, 0.01]
    """
    if not 0 < low <= high:
        raise config_error("low", low, f"Pass 0 < low <= high (high={high}).")
    if n_groups == 1:
        return [high]
    ratio = (high / low) ** (1 / (n_groups - 1))
    return [low * ratio**i for i in range(n_groups)]
