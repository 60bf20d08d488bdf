"""Layer groups of a backbone, and the learning rates that discriminative fine-tuning gives them.

Pure functions on modules: a backbone is split into ordered groups, from the input
(bottom) to the output (top); gradual unfreezing thaws them from the top, and
discriminative learning rates shrink towards the bottom. Parameters are tracked by
identity (two parameters with equal values are still two parameters).
"""

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from lightning_recipes._core.selection import name_matches
from lightning_recipes._core.validate import is_real, names_sequence, positive_int
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "GroupSpec",
    "LayerGroup",
    "check_group_spec",
    "layer_decay_lrs",
    "layer_groups",
    "select_backbone",
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


GroupSpec = Literal["auto", "children"] | Sequence[str] | Callable[[nn.Module], Sequence[nn.Module]]
"""``"auto"``, ``"children"``, a list of module names/globs, or a callable."""


def check_group_spec(groups: Any, argument: str = "groups") -> None:
    """Refuse a layer-group specification that `layer_groups` cannot read.

    Args:
        groups: The specification.
        argument: The argument name to put in the message.

    Raises:
        RecipeConfigError: For an unknown string, an empty list, a list holding
            something other than non-empty strings or a name twice, or any other type.
    """
    if isinstance(groups, str):
        if groups not in ("auto", "children"):
            raise config_error(
                argument, groups, "Pass 'auto', 'children', a list of names or a callable."
            )
        return
    if callable(groups) and not isinstance(groups, nn.Module):
        return
    if not isinstance(groups, Sequence) or isinstance(groups, bytes):
        raise config_error(
            argument, groups, "Pass 'auto', 'children', a list of module names or a callable."
        )
    names_sequence(argument, groups, what="module names or globs", example=["0", "1"])


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
    return _match_names(backbone, patterns, "groups", "the backbone")


def _top_level(module: nn.Module) -> str:
    return ", ".join(name for name, _ in module.named_children()) or "none"


def _match_names(
    root: nn.Module, patterns: Sequence[str], argument: str, where: str
) -> list[tuple[str, list[nn.Module]]]:
    """One group per name or glob, matched against the qualified module names of ``root``."""
    named = dict(root.named_modules())
    groups = []
    for pattern in patterns:
        matched = [m for n, m in named.items() if n and name_matches(n, [pattern])]
        if not matched:
            raise config_error(
                argument,
                pattern,
                f"No module of {where} matches it. Top-level modules: {_top_level(root)}.",
            )
        groups.append((pattern, matched))
    return groups


def _outside(root: nn.Module, grouped: set[int]) -> list[nn.Module]:
    """The largest submodules of ``root`` that neither are nor hold a grouped module."""
    parent: dict[int, nn.Module] = {}
    for module in root.modules():
        for child in module.children():
            parent[id(child)] = module
    inside: set[int] = set()  # modules that hold a grouped module
    for module in root.modules():
        if id(module) in grouped:
            up = parent.get(id(module))
            while up is not None and id(up) not in inside:
                inside.add(id(up))
                up = parent.get(id(up))
    found: list[nn.Module] = []

    def walk(module: nn.Module) -> None:
        for child in module.children():
            if id(child) in grouped:
                continue
            if id(child) in inside:
                walk(child)
            else:
                found.append(child)

    walk(root)
    return found


def _checked(spec: list[tuple[str, list[nn.Module]]]) -> list[LayerGroup]:
    """The groups of ``spec``, refusing a parameter in two groups."""
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
    return result


def select_backbone(
    model: nn.Module,
    names: Sequence[str] | None = None,
    regex: str | None = None,
    all_but_last: int | None = None,
) -> list[LayerGroup]:
    """The backbone of ``model`` named by its modules, one layer group per module, bottom first.

    Exactly one of the three forms is given. Every parameter of ``model`` outside the
    returned groups (the head) is not part of the backbone.

    * ``names``: module names or globs (``["stem", "block*"]``), one group per entry, in
      list order.
    * ``regex``: every module whose qualified name matches the regular expression
      entirely (``re.fullmatch``), outermost matches only, in definition order.
    * ``all_but_last``: the top-level children that hold parameters, in definition
      order, except the last ``all_but_last`` of them (the head). Children without
      parameters (activations, losses, metrics) are not counted.

    Args:
        model: The whole model (e.g. the LightningModule).
        names: Module names or globs.
        regex: A regular expression over qualified module names.
        all_but_last: How many trailing top-level children form the head.

    Returns:
        The backbone's groups, bottom first, without empty groups.

    Raises:
        RecipeConfigError: If a name or the regex matches nothing (the message lists the
            top-level modules), a parameter is in two groups, nothing is left for the
            backbone, or no group has parameters.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), nn.Linear(2, 1))
        >>> [g.name for g in select_backbone(net, regex=r"[01]")]
        ['0']
        >>> [g.name for g in select_backbone(net, all_but_last=1)]
        ['0', '2']
    """
    if sum(form is not None for form in (names, regex, all_but_last)) != 1:
        raise RecipeConfigError("select_backbone needs exactly one of names, regex, all_but_last.")
    if names is not None:
        spec = _match_names(model, list(names), "backbone", "the LightningModule")
    elif regex is not None:
        pattern = re.compile(regex)
        spec = []
        for name, module in model.named_modules():
            if not name or not pattern.fullmatch(name):
                continue
            if any(name.startswith(f"{outer}.") for outer, _ in spec):
                continue  # inside a module already selected
            spec.append((name, [module]))
        if not spec:
            raise config_error(
                "backbone_regex",
                regex,
                f"No module name matches it entirely. Top-level modules: {_top_level(model)}.",
            )
    else:
        assert all_but_last is not None
        children = [(n, m) for n, m in model.named_children() if any(True for _ in m.parameters())]
        if all_but_last >= len(children):
            listed = ", ".join(n for n, _ in children) or "none"
            raise config_error(
                "all_but_last",
                all_but_last,
                f"The module has {len(children)} top-level modules with parameters ({listed}): "
                "leave at least one for the backbone and one for the head.",
            )
        spec = [(n, [m]) for n, m in children[: len(children) - all_but_last]]
    groups = [group for group in _checked(spec) if group.params]
    if not groups:
        raise RecipeConfigError(
            "The backbone selected has no parameters to freeze: name modules that have some."
        )
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

    Parameters of the backbone in no group are put in a first ``"unmatched"`` group (with
    the modules that hold them, so that their BatchNorm layers are frozen too), so that
    none is left out.

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
    if not isinstance(backbone, nn.Module):
        raise config_error("backbone", backbone, "Pass an nn.Module.")
    check_group_spec(groups)
    if groups == "auto":
        spec = _auto(backbone)
    elif groups == "children":
        spec = [(name, [module]) for name, module in backbone.named_children()]
    elif callable(groups):
        made = list(groups(backbone))
        if not all(isinstance(m, nn.Module) for m in made):
            raise config_error("groups", groups, "The callable must return a list of nn.Module.")
        spec = [(f"group{i}", [m]) for i, m in enumerate(made)]
    else:
        assert not isinstance(groups, str)
        spec = _by_names(backbone, list(groups))
    result = _checked(spec)
    owner = {id(p) for group in result for p in group.params}
    leftover = [p for p in backbone.parameters() if id(p) not in owner]
    if leftover:
        grouped = {id(m) for group in result for m in group.modules}
        modules = _outside(backbone, grouped)
        result.insert(0, LayerGroup("unmatched", modules, leftover))
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
    _check_rate("base_lr", base_lr)
    _check_count(n_groups)
    if not is_real(decay) or not 0 < decay <= 1:
        raise config_error("decay", decay, "Pass a factor in (0, 1], e.g. 0.5.")
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
    _check_rate("low", low)
    _check_rate("high", high)
    if not low <= high:
        raise config_error("low", low, f"Pass 0 < low <= high (high={high}).")
    _check_count(n_groups)
    if n_groups == 1:
        return [high]
    ratio = (high / low) ** (1 / (n_groups - 1))
    return [low * ratio**i for i in range(n_groups)]


def _check_rate(argument: str, value: Any) -> None:
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise config_error(argument, value, "Pass a positive, finite learning rate.")


def _check_count(n_groups: Any) -> None:
    positive_int("n_groups", n_groups, "Pass a positive integer number of groups.")
