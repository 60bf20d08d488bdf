"""How `Freezer` is told its backbone: the forms checked, and resolved to layer groups.

A backbone is named by one module (``backbone="encoder"``, split by ``groups``), a list
of module names or globs, ``backbone_regex``, ``all_but_last`` or a callable
``pl_module -> nn.Module``. The splitting itself is `layer_groups` and `select_backbone`.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lightning.pytorch import LightningModule
from torch import nn

from lightning_recipes._core.validate import is_int, names_sequence
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.finetuning.groups import (
    GroupSpec,
    LayerGroup,
    check_group_spec,
    layer_groups,
    select_backbone,
)

__all__ = [
    "BackboneSpec",
    "check_backbone",
    "check_disjoint",
    "check_group_split",
    "check_head",
    "resolve_backbone",
    "spec_key",
]

BackboneSpec = str | Sequence[str] | Callable[[LightningModule], nn.Module]
"""A module name, a list of module names or globs, or ``pl_module -> nn.Module``."""


def check_backbone(backbone: Any, regex: Any, all_but_last: Any) -> BackboneSpec | None:
    """Validate the backbone forms; returns ``backbone`` (``"backbone"`` if none is given).

    Args:
        backbone: The ``backbone`` argument.
        regex: The ``backbone_regex`` argument.
        all_but_last: The ``all_but_last`` argument.

    Returns:
        The backbone (a list for a sequence of names), or None when ``backbone_regex`` or
        ``all_but_last`` names it.

    Raises:
        RecipeConfigError: If two forms are given, or the one given is not valid.
    """
    given = [
        name
        for name, value in (
            ("backbone", backbone),
            ("backbone_regex", regex),
            ("all_but_last", all_but_last),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise config_error(
            given[1],
            regex if given[1] == "backbone_regex" else all_but_last,
            f"Name the backbone one way only: {' and '.join(given)} were both given.",
        )
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            raise config_error(
                "backbone_regex", regex, "Pass a regular expression over module names."
            )
        try:
            re.compile(regex)
        except re.error as error:
            raise config_error(
                "backbone_regex", regex, f"It is not a valid regular expression ({error})."
            ) from None
        return None
    if all_but_last is not None:
        if not is_int(all_but_last):
            raise config_error(
                "all_but_last", all_but_last, "Pass the number of head modules, e.g. 1."
            )
        if all_but_last < 1:
            raise config_error(
                "all_but_last",
                all_but_last,
                "Pass at least 1: the head (the last top-level modules) must train.",
            )
        return None
    if backbone is None:
        return "backbone"
    if isinstance(backbone, str):
        if not backbone:
            raise config_error("backbone", backbone, "Pass a module name, e.g. 'backbone'.")
        return backbone
    if callable(backbone) and not isinstance(backbone, nn.Module):
        return backbone  # type: ignore[no-any-return]
    if isinstance(backbone, nn.Module):
        raise config_error(
            "backbone",
            type(backbone).__name__,
            "Pass the module's attribute name (e.g. 'backbone'), not the module.",
        )
    if not isinstance(backbone, Sequence) or isinstance(backbone, bytes):
        raise config_error(
            "backbone",
            backbone,
            "Pass a module name, a list of module names, a callable, or use "
            "backbone_regex / all_but_last.",
        )
    return list(
        names_sequence("backbone", backbone, what="module names or globs", example=["encoder"])
    )


def check_group_split(groups: Any, backbone: BackboneSpec | None) -> None:
    """Refuse a ``groups`` split that cannot apply to a backbone checked by `check_backbone`.

    Args:
        groups: The ``groups`` argument.
        backbone: What `check_backbone` returned.

    Raises:
        RecipeConfigError: If `layer_groups` cannot read ``groups``, or ``groups`` is not
            ``"auto"`` for a backbone form that makes one group per module.
    """
    check_group_spec(groups)
    one_group_per_module = backbone is None or (
        isinstance(backbone, Sequence) and not isinstance(backbone, str)
    )
    if groups != "auto" and one_group_per_module:
        raise config_error(
            "groups",
            groups,
            "It splits a backbone named by one module (backbone='name'); a list, "
            "backbone_regex or all_but_last already make one group per module.",
        )


def resolve_backbone(
    pl_module: LightningModule,
    backbone: BackboneSpec | None,
    groups: GroupSpec,
    regex: str | None,
    all_but_last: int | None,
) -> list[LayerGroup]:
    """The layer groups of ``pl_module``'s backbone, bottom first.

    Args:
        pl_module: The LightningModule.
        backbone: What `check_backbone` returned.
        groups: How to split a backbone named by one module (see `layer_groups`).
        regex: The ``backbone_regex`` argument.
        all_but_last: The ``all_but_last`` argument.

    Returns:
        The groups.

    Raises:
        RecipeConfigError: If the named module does not exist, the callable does not
            return a module, or `select_backbone` refuses the selection.
    """
    if regex is not None:
        return select_backbone(pl_module, regex=regex)
    if all_but_last is not None:
        return select_backbone(pl_module, all_but_last=all_but_last)
    available = ", ".join(name for name, _ in pl_module.named_children()) or "none"
    if isinstance(backbone, str):
        try:
            found = pl_module.get_submodule(backbone)
        except AttributeError:
            found = None
        if found is None or found is pl_module:
            raise config_error(
                "backbone", backbone, f"No such module. Top-level modules: {available}."
            )
        return layer_groups(found, groups)
    if callable(backbone):
        made = backbone(pl_module)
        if not isinstance(made, nn.Module):
            raise config_error("backbone", made, "The callable must return an nn.Module.")
        return layer_groups(made, groups)
    assert backbone is not None
    # A list names the backbone's modules: everything else is the head, not a group.
    return select_backbone(pl_module, names=list(backbone))


def check_head(
    model: nn.Module, groups: Sequence[LayerGroup], first_trainable: int, named: Any
) -> None:
    """Refuse a backbone that leaves nothing of ``model`` to train.

    Args:
        model: The LightningModule.
        groups: Its backbone's groups, bottom first.
        first_trainable: The index of the lowest group trainable at the start.
        named: How the backbone was named (for the message).

    Raises:
        RecipeConfigError: If every parameter of ``model`` is in a frozen group.
    """
    frozen = {id(p) for group in groups[:first_trainable] for p in group.params}
    if all(id(p) in frozen for p in model.parameters()):
        names = ", ".join(g.name for g in groups)
        raise config_error(
            "backbone",
            named,
            f"It covers every parameter of {type(model).__name__} (groups: {names}), "
            "so nothing would train in epoch 0. Leave the head out of the backbone.",
        )


def check_disjoint(
    groups: Sequence[LayerGroup], key: str, others: Iterable[tuple[str, Sequence[LayerGroup]]]
) -> None:
    """Refuse a backbone that shares parameters with another Freezer's.

    Each would undo the other's freezing and learning rates.

    Args:
        groups: This Freezer's groups.
        key: This Freezer's state key (for the message).
        others: ``(state key, groups)`` of every other Freezer in the Trainer.

    Raises:
        RecipeConfigError: If a parameter is in both this backbone and another.
    """
    mine = {id(p) for group in groups for p in group.params}
    for other_key, other_groups in others:
        if any(id(p) in mine for group in other_groups for p in group.params):
            raise RecipeConfigError(
                f"Two Freezers ({other_key} and {key}) freeze the same "
                "parameters: give each its own backbone, or use one Freezer."
            )


def spec_key(spec: Any) -> Any:
    """How a backbone or ``groups`` argument appears in a state key: a callable by its name.

    Args:
        spec: The argument.

    Returns:
        A callable's ``__qualname__`` (its type's if it has none), else ``spec``.

    Examples:
        >>> spec_key("encoder"), spec_key(len)
        ('encoder', 'len')
    """
    if callable(spec) and not isinstance(spec, str):
        return getattr(spec, "__qualname__", type(spec).__qualname__)
    return spec
