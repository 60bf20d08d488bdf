"""LightningCLI configs as plain dicts: load, list the settable keys, set dotted paths.

A config is the dict that ``lightning-recipes fit -c CONFIG.yaml`` reads. Every value in it
is addressed by a dotted path whose parts are dict keys or list indices, e.g.
``model.init_args.lr`` or ``trainer.callbacks.0.init_args.patience``. `expand_config` fills
in every default LightningCLI knows (the init arguments of the model, the datamodule, the
trainer and each callback), so that a search space can name any of them, not only those
written in the file.
"""

import copy
import difflib
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.validate import command_args
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "ConfigParser",
    "apply_params",
    "config_keys",
    "expand_config",
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


def _skeleton(node: Any) -> Any:
    """What `leaf_changes` compares besides values: keys, list lengths, classes, leaf types."""
    if isinstance(node, Mapping):
        return (
            "{",
            node.get("class_path") if isinstance(node.get("class_path"), str) else None,
            tuple(sorted((str(k), _skeleton(v)) for k, v in node.items() if k != "class_path")),
        )
    if isinstance(node, list):
        return ("[", tuple(_skeleton(v) for v in node))
    return type(node).__name__ if type(node) in _SCALARS else ("?", id(node))


class _Accepted:
    """The values LightningCLI's parser accepted at one leaf: each seen, and the numbers' span."""

    def __init__(self) -> None:
        self.seen: set[tuple[type, Any]] = set()
        self.span: dict[type, tuple[Any, Any]] = {}

    def add(self, value: Any) -> None:
        self.seen.add((type(value), value))
        if type(value) in (int, float) and value == value:  # not NaN
            low, high = self.span.get(type(value), (value, value))
            self.span[type(value)] = (min(low, value), max(high, value))

    def __contains__(self, value: Any) -> bool:
        if (type(value), value) in self.seen:
            return True
        span = self.span.get(type(value)) if type(value) in (int, float) else None
        return span is not None and span[0] <= value <= span[1]


def _parent(namespace: Any, path: str) -> tuple[Any, str | int] | None:
    """The section or list of a parsed config holding ``path``'s value, and its key or index.

    None where the path is absent.
    """
    from jsonargparse import Namespace

    node = namespace
    key: str | int | None = None
    for part in path.split("."):
        if key is not None:
            node = node[key]
        if isinstance(node, Namespace | dict) and part in node:
            key = part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            key = int(part)
        else:
            return None
    return (node, key) if key is not None else None


def _kept(namespace: Any, path: str, value: Any) -> bool:
    """Whether the parser kept ``value`` as is at ``path``.

    False where the path is missing or the parser turned the value into something else (a
    ``Path``, an enum, a float from an int, a number from a string such as ``"1e-3"``):
    only a full parse adapts a value like that.
    """
    found = _parent(namespace, path)
    if found is None:
        return False
    current = found[0][found[1]]
    return type(current) is type(value) and bool(current == value)


def _namespace_set(namespace: Any, path: str, reference: Any, value: Any) -> bool:
    """Set ``path`` of a parsed config to ``value`` if the parser kept ``reference`` as is there.

    Returns:
        Whether it was set (see `_kept`; nothing changes otherwise).
    """
    found = _parent(namespace, path)
    if found is None or not _kept(namespace, path, reference):
        return False
    found[0][found[1]] = value
    return True


class ConfigParser:
    """`RecipesCLI`'s parser, built once and reused for every config of a study.

    Building LightningCLI's parser (introspecting the Trainer, the model and data classes)
    costs about as much as a short trial; a study parses its config, the two ends of the
    search space and every trial's config. One `ConfigParser` builds the parser at its
    first use and reuses it: `expand` fills in the defaults, `cli` builds a trial's model,
    datamodule and Trainer exactly as ``lightning-recipes fit -c`` would.

    Parsing a trial's config costs more than building its objects (jsonargparse checks and
    adapts every value of the config, ~25 ms of CPU on the MNIST-1D CNN's config against
    ~7 ms to build the objects). With ``reuse=True``, `cli` parses the first trial's config
    of each shape (keys, list lengths, classes) in full and keeps the result; a later trial
    whose config differs from it only in scalar values (numbers, strings, booleans, None:
    the sampled parameters, the trial's folder) gets a copy of that parsed config with its
    values set, without parsing again. A value takes that path only where the parser kept
    the kept config's value as is (a path string it turned into a ``Path``, an enum, a
    float given as an int all parse again), and only a value the parser has accepted at
    that place before in a full parse, and kept as is (the ends of the search ranges are
    parsed when the study starts): the same value, or a number between two accepted numbers
    of its type (jsonargparse's number constraints are ranges). Anything else (another
    ``class_path``, a list of another length, a new categorical value) parses in full.
    """

    def __init__(self) -> None:
        self.parser: Any = None
        self._accepted: dict[Leaf, _Accepted] = {}
        # One parse kept per shape of config (see `_skeleton`): (config, its parse).
        self._templates: dict[Any, tuple[dict[str, Any], Any]] = {}
        self.parsed = 0
        """How many configs were parsed in full (the others reused a parse)."""

    def _accept(self, config: Mapping[str, Any], namespace: Any) -> None:
        """Record each scalar value of ``config`` that its parse (``namespace``) kept as is."""
        for leaf, value in _leaves(config):
            if _kept(namespace, leaf[0], value):
                self._accepted.setdefault(leaf, _Accepted()).add(value)

    def _reused(self, config: Mapping[str, Any], trusted: Collection[str]) -> Any:
        """The parse of ``config`` from the template's, or None where it must be parsed."""
        template = self._templates.get(_skeleton(config))
        if template is None:
            return None
        reference, namespace = template
        changes = leaf_changes(reference, config)
        if changes is None:
            return None
        for (path, classes), value in changes:
            accepted = self._accepted.get((path, classes))
            if path not in trusted and (accepted is None or value not in accepted):
                return None
        namespace = namespace.clone()
        for (path, _), value in changes:
            if not _namespace_set(namespace, path, get_path(reference, path), value):
                return None
        return namespace

    def _cli(
        self,
        args: list[str] | dict[str, Any],
        *,
        instantiate: bool,
        save_config: bool,
        dumped: Mapping[str, Any] | None = None,
        namespace: Any = None,
    ) -> Any:
        import sys

        from lightning_recipes.runner import RecipesCLI

        owner = self

        class _Reusing(RecipesCLI):
            def __init__(self) -> None:
                super().__init__(args=args, run=False, save_config=save_config)

            def setup_parser(self, *parser_args: Any) -> None:
                if owner.parser is None:
                    super().setup_parser(*parser_args)
                    owner.parser = self.parser
                else:
                    self.parser = owner.parser

            def parse_arguments(self, parser: Any, parse_args: Any) -> None:
                if namespace is not None:
                    self.config = namespace
                    return
                super().parse_arguments(parser, parse_args)
                owner.parsed += 1
                self.parsed_config = self.config.clone()  # before seeding can change it

            def before_instantiate_classes(self) -> None:
                if dumped is not None:  # LightningCLI's _dump_config keeps one it finds
                    self.config_dump = copy.deepcopy(dict(dumped))

            def instantiate_classes(self) -> None:
                if instantiate:
                    super().instantiate_classes()

            def _set_seed(self) -> None:  # parsing alone must not reseed the caller's RNG
                if instantiate:
                    super()._set_seed()

        saved, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when args and argv are set
        try:
            return _Reusing()
        finally:
            sys.argv = saved

    def expand(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with every default filled in; see `expand_config`."""
        cli = self._parse(config, ["--config", yaml.safe_dump(dict(config), sort_keys=False)])
        dumped = cli.parser.dump(cli.config, skip_none=False, skip_validation=True)
        full = yaml.load(dumped, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        full.pop("config", None)
        if not isinstance(full, dict):  # pragma: no cover - the parser always dumps a mapping
            raise RecipeConfigError("LightningCLI returned no config.")
        return full

    def check(self, config: Mapping[str, Any], *, template: bool = False) -> None:
        """Parse ``config`` as a trial's config is parsed (a dict), building nothing.

        Cheaper than `expand` (no dump); the values it accepts count as accepted for
        ``cli(..., reuse=True)``.

        Args:
            config: The config.
            template: Keep this parse for ``cli(..., reuse=True)`` (if none of this shape
                is kept yet): ``config`` has the shape of the trials' configs.

        Raises:
            RecipeConfigError: If LightningCLI rejects the config.
        """
        cli = self._parse(config, copy.deepcopy(dict(config)))
        if template:
            self._keep(config, cli.parsed_config)

    def _keep(self, config: Mapping[str, Any], namespace: Any) -> None:
        """Keep ``namespace`` (the parse of ``config``) for configs of its shape, if none is."""
        self._templates.setdefault(_skeleton(config), (copy.deepcopy(dict(config)), namespace))

    def _parse(self, config: Mapping[str, Any], args: list[str] | dict[str, Any]) -> Any:
        """Parse ``args`` (``config`` as arguments) without building; record its values."""
        try:
            cli = self._cli(args, instantiate=False, save_config=False)
        except SystemExit as err:
            raise RecipeConfigError(
                "LightningCLI rejected the config (its message is printed above); fix the YAML "
                "or the overrides."
            ) from err
        self._accept(config, cli.config)
        return cli

    def cli(
        self,
        config: str | Path | Mapping[str, Any],
        *,
        save_config: bool = True,
        dumped: Mapping[str, Any] | None = None,
        reuse: bool = False,
        trusted: Collection[str] = (),
    ) -> Any:
        """A `RecipesCLI` (``run=False``) built from ``config``, as ``fit -c`` would build it.

        Args:
            config: The path of a YAML config, or the config as a dict (parsed without a
                round trip through YAML text).
            save_config: Save ``config.yaml`` next to the logs, as ``fit`` does.
            dumped: ``config`` with every default filled in (as `expand` returns it), when
                the caller has it: LightningCLI dumps the parsed config once more to store
                the model's and the datamodule's hyperparameters (for
                ``load_from_checkpoint``), which costs as much as the parse itself.
            reuse: For a config dict: reuse the parse of the first config of the same
                shape (keys, list lengths, classes) built with ``reuse=True`` or checked
                with ``template=True``, where this one differs from it in scalar values only
                (see the class's description); the first of a shape is parsed and kept.
            trusted: Dotted paths whose new values need no earlier acceptance (the caller
                sets them, always of the type the template holds there: a trial's folder,
                its id).

        Returns:
            The CLI, with its ``model``, ``datamodule`` and ``trainer`` built.
        """
        namespace = None
        if reuse and isinstance(config, Mapping):
            namespace = self._reused(config, trusted)
        args: list[str] | dict[str, Any] = (
            copy.deepcopy(dict(config))
            if isinstance(config, Mapping)
            else ["--config", str(config)]
        )
        cli = self._cli(
            args, instantiate=True, save_config=save_config, dumped=dumped, namespace=namespace
        )
        if namespace is None and isinstance(config, Mapping):
            self._accept(config, cli.parsed_config)
            if reuse:
                self._keep(config, cli.parsed_config)
        return cli

    def cli_args(
        self,
        args: Sequence[str],
        *,
        save_config: bool = True,
        dumped: Mapping[str, Any] | None = None,
    ) -> Any:
        """A `RecipesCLI` (``run=False``) built from command-line arguments.

        The same as `cli`, for a ``-c config.yaml`` followed by ``--section.key=value``
        overrides, as on the command line.

        Args:
            args: The arguments, e.g. ``["-c", "fold.yaml", "--trainer.max_epochs=5"]``.
            save_config: Save ``config.yaml`` next to the logs, as ``fit`` does.
            dumped: The parsed config as LightningCLI dumps it, when the caller has it
                (see `cli`).

        Returns:
            The CLI, with its ``model``, ``datamodule`` and ``trainer`` built.
        """
        return self._cli(list(args), instantiate=True, save_config=save_config, dumped=dumped)


def expand_config(config: Mapping[str, Any], parser: ConfigParser | None = None) -> dict[str, Any]:
    """Parse ``config`` with `RecipesCLI`'s parser and return it with every default filled in.

    Nothing is instantiated: this only checks the config (unknown keys and wrong types fail
    here, with jsonargparse's message) and lists the init arguments of every class it names.

    Args:
        config: A config dict.
        parser: A `ConfigParser` to reuse (a new one by default).

    Returns:
        The complete config as a dict.

    Raises:
        RecipeConfigError: If LightningCLI rejects the config.
    """
    return (parser or ConfigParser()).expand(config)
