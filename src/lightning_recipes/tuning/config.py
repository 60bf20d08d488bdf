"""LightningCLI configs as plain dicts: load, list the settable keys, set dotted paths.

A config is the dict that ``lightning-recipes fit -c CONFIG.yaml`` reads. Every value in it
is addressed by a dotted path whose parts are dict keys or list indices, e.g.
``model.init_args.lr`` or ``trainer.callbacks.0.init_args.patience``. `expand_config` fills
in every default LightningCLI knows (the init arguments of the model, the datamodule, the
trainer and each callback), so that a search space can name any of them, not only those
written in the file: it and the parser that builds trials live in `config_parser`.
"""

import copy
import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.validate import command_args
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "apply_params",
    "config_keys",
    "get_path",
    "leaf_changes",
    "load_config",
    "parse_overrides",
    "unknown_key_error",
]


def _walk(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _walk(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            path = f"{prefix}.{index}"
            yield path
            yield from _walk(value, path)


def config_keys(config: Mapping[str, Any]) -> list[str]:
    """Every settable dotted path of ``config``: dict keys and list indices, at any depth.

    Containers are listed as well as their items, so both ``...hidden`` (the whole list)
    and ``...hidden.0`` (one width) are keys.

    Args:
        config: A LightningCLI config as a dict.

    Returns:
        The dotted paths, in document order.

    Examples:
        >>> config_keys({"model": {"init_args": {"lr": 0.1, "hidden": [8, 4]}}})
        ['model', 'model.init_args', 'model.init_args.lr', 'model.init_args.hidden', \
'model.init_args.hidden.0', 'model.init_args.hidden.1']
    """
    return list(_walk(config, ""))


def unknown_key_error(argument: str, key: str, valid: Sequence[str]) -> RecipeConfigError:
    """A `RecipeConfigError` for a key that is not in the config, listing the valid ones.

    Args:
        argument: What named the key (e.g. ``"space"`` or ``"overrides"``).
        key: The unknown dotted path.
        valid: The valid dotted paths.

    Returns:
        The error, ready to be raised.
    """
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    leaves = ", ".join(valid)
    return config_error(
        argument,
        key,
        f"It is not a key of the config.{hint} Valid keys: {leaves}.",
    )


def _index(part: str, size: int, path: str, *, allow_append: bool) -> int:
    if not part.isdigit():
        raise RecipeConfigError(f"Invalid key {path!r}: {part!r} is not a list index.")
    index = int(part)
    limit = size + 1 if allow_append else size
    if index >= limit:
        raise RecipeConfigError(
            f"Invalid key {path!r}: index {index} is past the end of a list of {size} items"
            + (" (an index equal to the length appends)." if allow_append else ".")
        )
    return index


def get_path(config: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path.

    Args:
        config: A config dict.
        path: The dotted path.

    Returns:
        The value.

    Raises:
        KeyError: If the path does not exist.
    """
    node: Any = config
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(path)
    return node


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = config
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = [] if parts[depth + 1].isdigit() else {}
                node = node[part]
        elif isinstance(node, list):
            index = _index(part, len(node), path, allow_append=True)
            if index == len(node):
                node.append(None if last else ([] if parts[depth + 1].isdigit() else {}))
            if last:
                node[index] = value
            else:
                if node[index] is None:
                    node[index] = [] if parts[depth + 1].isdigit() else {}
                node = node[index]
        else:
            prefix = ".".join(parts[:depth])
            raise RecipeConfigError(
                f"Invalid key {path!r}: {prefix!r} holds {node!r}, not a section or a list."
            )


def apply_params(config: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted path of ``params`` set to its value.

    Paths are applied in order, so ``{"a.hidden": [8, 8, 8], "a.hidden.2": 4}`` first
    replaces the list, then one item. A list index equal to the list's length appends;
    missing sections are created.

    Args:
        config: A config dict (not modified).
        params: Dotted path -> value.

    Returns:
        The new config.

    Examples:
        >>> apply_params({"m": {"hidden": [8, 4]}}, {"m.hidden.1": 2, "m.hidden.2": 1, "m.lr": 0.1})
        {'m': {'hidden': [8, 2, 1], 'lr': 0.1}}
    """
    new: dict[str, Any] = copy.deepcopy(dict(config))
    for path, value in params.items():
        _set_path(new, path, copy.deepcopy(value))
    return new


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """Parse LightningCLI-style ``--section.key=value`` overrides into dotted path -> value.

    Values are read as YAML (``5`` is an int, ``[1, 2]`` a list, ``null`` is None).
    ``--key value`` (two items) is accepted as well as ``--key=value``.

    Args:
        overrides: The arguments, e.g. ``["--trainer.max_epochs=5"]``.

    Returns:
        The overrides, in order.

    Raises:
        RecipeConfigError: For a string instead of a list, or an argument that is not an
            override.

    Examples:
        >>> parse_overrides(["--trainer.max_epochs=5", "--model.init_args.lr", "1e-3"])
        {'trainer.max_epochs': 5, 'model.init_args.lr': 0.001}
    """
    command_args("overrides", overrides)
    parsed: dict[str, Any] = {}
    items = list(overrides)
    i = 0
    while i < len(items):
        item = items[i]
        key = item[2:] if item.startswith("--") else item
        if "=" in key:
            key, text = key.split("=", 1)
            i += 1
        elif item.startswith("--") and i + 1 < len(items) and not items[i + 1].startswith("--"):
            text = items[i + 1]
            i += 2
        else:
            raise config_error(
                "overrides",
                item,
                "Pass overrides as --section.key=value, e.g. --trainer.max_epochs=5.",
            )
        if not key or key.endswith("+") or " " in key:
            raise config_error(
                "overrides",
                item,
                "Pass a dotted config key, e.g. --trainer.max_epochs=5 (appending with += "
                "is not supported: give the list index, --trainer.callbacks.2=...).",
            )
        parsed[key] = _scalar(text)
    return parsed


def _scalar(text: str) -> Any:
    """A command-line value as YAML reads it, with ``1e-3`` a float as on the command line.

    PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``): ``1e-3`` would stay a
    string, and jsonargparse (YAML 1.2-like) would read it as a number in ``fit``.
    """
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(
    source: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Read a LightningCLI YAML config and apply ``--section.key=value`` overrides.

    Args:
        source: The path of a YAML config, or a config dict (copied).
        overrides: LightningCLI-style overrides, see `parse_overrides`.

    Returns:
        The config dict.

    Raises:
        RecipeConfigError: If the file is missing or is not a YAML mapping, or an override is
            malformed.
    """
    if isinstance(source, Mapping):
        config: Any = copy.deepcopy(dict(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise config_error("config", str(source), "Pass the path of a LightningCLI YAML file.")
        config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise config_error(
            "config", str(source), "The file must hold a YAML mapping (trainer:, model:, data:)."
        )
    return apply_params(config, parse_overrides(overrides))


_SCALARS = (bool, int, float, str, type(None))
"""The leaf types a trial may change without a new parse (see `ConfigParser.cli`)."""

Leaf = tuple[str, tuple[str, ...]]
"""A scalar leaf of a config: its dotted path and the ``class_path`` of each section above it."""


def _leaves(
    node: Any, prefix: str = "", classes: tuple[str, ...] = ()
) -> Iterator[tuple[Leaf, Any]]:
    """Each scalar leaf of a config with its value."""
    if isinstance(node, Mapping):
        owner = node.get("class_path")
        inner = (*classes, owner) if isinstance(owner, str) else classes
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key), inner)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{prefix}.{index}", classes)
    elif type(node) in _SCALARS:
        yield (prefix, classes), node


def leaf_changes(
    reference: Any, config: Any, prefix: str = "", classes: tuple[str, ...] = ()
) -> list[tuple[Leaf, Any]] | None:
    """The scalar leaves where ``config`` differs from ``reference``, or None if more differs.

    None when the two differ in anything but the values of scalar leaves of the same type:
    a key added or removed, a list of another length, another ``class_path``, a section
    where the other has a value.

    Args:
        reference: A config (or part of one).
        config: Another.
        prefix: The dotted path of both (empty at the root).
        classes: The ``class_path`` of each section above both.

    Returns:
        ((path, classes), new value) per changed leaf, in document order; or None.

    Examples:
        >>> leaf_changes({"m": {"lr": 0.1, "n": [1, 2]}}, {"m": {"lr": 0.2, "n": [1, 2]}})
        [(('m.lr', ()), 0.2)]
        >>> leaf_changes({"m": {"n": [1, 2]}}, {"m": {"n": [1, 2, 3]}}) is None
        True
    """
    if isinstance(reference, Mapping) and isinstance(config, Mapping):
        if reference.keys() != config.keys() or reference.get("class_path") != config.get(
            "class_path"
        ):
            return None
        owner = reference.get("class_path")
        inner = (*classes, owner) if isinstance(owner, str) else classes
        found: list[tuple[Leaf, Any]] = []
        for key, value in reference.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            changed = leaf_changes(value, config[key], path, inner)
            if changed is None:
                return None
            found += changed
        return found
    if isinstance(reference, list) and isinstance(config, list):
        if len(reference) != len(config):
            return None
        found = []
        for index, (old, new) in enumerate(zip(reference, config, strict=True)):
            changed = leaf_changes(old, new, f"{prefix}.{index}", classes)
            if changed is None:
                return None
            found += changed
        return found
    if type(reference) in _SCALARS and type(config) is type(reference):
        return [] if reference == config else [((prefix, classes), config)]
    return None
