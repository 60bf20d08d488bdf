"""Parameter groups of `GradientMonitor`: by module, layer, parameter, or name globs."""

from collections.abc import Mapping, Sequence
from typing import Literal

from torch import nn

from lightning_recipes._core.selection import first_unmatched, name_matches
from lightning_recipes.errors import choice_error, config_error

__all__ = ["GroupBy", "check_groups", "parameter_groups"]

GroupBy = Literal["module", "layer", "parameter", "none"]


def parameter_groups(
    named_parameters: Sequence[tuple[str, nn.Parameter]],
    groups: GroupBy | Mapping[str, Sequence[str]],
) -> tuple[list[str], list[int]]:
    """Assign each parameter to a named group.

    Args:
        named_parameters: ``module.named_parameters()`` as a list.
        groups: ``"module"`` (top-level child: ``backbone``, ``head``), ``"layer"`` (the
            module owning the parameter: ``backbone.0``), ``"parameter"`` (each one),
            ``"none"`` (no groups: one group ``all``), or ``{group: [glob, ...]}`` matched
            against parameter names, first match wins, unmatched ones in ``other``.

    Returns:
        ``(group_names, group_of_each_parameter)``, groups in order of first appearance.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> parameter_groups(list(net.named_parameters()), "layer")
        (['0', '2'], [0, 0, 1, 1])
        >>> parameter_groups(list(net.named_parameters()), {"last": ["2.*"]})
        (['other', 'last'], [0, 0, 1, 1])
    """
    if isinstance(groups, Mapping):
        _check_globs_match([n for n, _ in named_parameters], groups)
    names: list[str] = []
    index: dict[str, int] = {}
    assignment: list[int] = []
    for param_name, _ in named_parameters:
        if isinstance(groups, Mapping):
            group = next(
                (g for g, globs in groups.items() if name_matches(param_name, globs)),
                "other",
            )
        elif groups == "module":
            group = param_name.split(".")[0]
        elif groups == "layer":
            group = param_name.rpartition(".")[0] or param_name
        elif groups == "parameter":
            group = param_name
        else:
            group = "all"
        if group not in index:
            index[group] = len(names)
            names.append(group)
        assignment.append(index[group])
    return names, assignment


def _check_globs_match(names: list[str], groups: Mapping[str, Sequence[str]]) -> None:
    """Refuse a glob that matches no parameter: a typo would silently empty its group."""
    for group, globs in groups.items():
        glob = first_unmatched(names, globs)
        if glob is not None:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise config_error(
                "groups",
                {k: list(v) for k, v in groups.items()},
                f"{glob!r} (group {group!r}) matches no parameter; the parameters are: {shown}.",
            )


def check_groups(groups: object) -> None:
    """Refuse what `parameter_groups` would read wrongly (a glob string, an empty mapping)."""
    choices = ("module", "layer", "parameter", "none")
    if isinstance(groups, str):
        if groups not in choices:
            raise choice_error("groups", groups, choices)
        return
    if not isinstance(groups, Mapping):
        raise config_error(
            "groups",
            groups,
            f"Pass one of {', '.join(map(repr, choices))} or a mapping "
            "{group: [glob, ...]}, e.g. {'head': ['head.*']}.",
        )
    if not groups:
        raise config_error(
            "groups",
            groups,
            "An empty mapping puts every parameter into 'other': pass {group: [glob, ...]} "
            "with at least one group, or groups='none' for the total only.",
        )
    for name, globs in groups.items():
        if not isinstance(name, str) or not name:
            raise config_error(
                "groups", groups, f"Group names must be non-empty strings: {name!r}."
            )
        if (
            isinstance(globs, str)
            or not isinstance(globs, Sequence)
            or not globs
            or not all(isinstance(g, str) and g for g in globs)
        ):
            hint = f"[{globs!r}]" if isinstance(globs, str) else "['head.*']"
            raise config_error(
                "groups",
                groups,
                f"Group {name!r} needs a non-empty list of glob strings, e.g. {{{name!r}: "
                f"{hint}}} (a plain string would be read character by character).",
            )
