"""`ConfigParser`: LightningCLI's parser, built once per study, parsing and building trials.

`expand_config` fills a config with every default LightningCLI knows; `ConfigParser.cli`
builds a trial as ``lightning-recipes fit -c`` would, reusing a parse whose values were
checked (both ends of every range) instead of parsing each trial again.
"""

import copy
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.tuning.config import _SCALARS, Leaf, _leaves, get_path, leaf_changes

__all__ = ["ConfigParser", "expand_config"]

# LightningCLI's parser, built once per thread and reused by every ConfigParser (every study
# of a process): building it introspects the Trainer (~25 ms, a fifth of a short trial).
# Parsing leaves it as it was (a study parses many configs, of several shapes, with one); a
# parser is not shared between threads.
_BUILT: dict[int, Any] = {}


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

    Building LightningCLI's parser (introspecting the Trainer) costs a fifth of a short
    trial; a study parses its config, the two ends of the search space and every trial's
    config. The parser is built at the first use in a thread and reused by every
    `ConfigParser` of that thread: `expand` fills in the defaults, `cli` builds a trial's model,
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
                    owner.parser = _BUILT.get(threading.get_ident())
                if owner.parser is None:
                    super().setup_parser(*parser_args)
                    owner.parser = _BUILT[threading.get_ident()] = self.parser
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

    def expand(
        self,
        config: Mapping[str, Any],
        *,
        trial_shape: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """``config`` with every default filled in; see `expand_config`.

        Args:
            config: The config.
            trial_shape: config -> the config a trial of it parses (its folder, its
                settings): the config is parsed in that shape (the expanded config is
                then a trial's) and the parse kept for ``cli(..., reuse=True)``, as
                ``check(..., template=True)`` keeps one.
        """
        if trial_shape is None:
            cli = self._parse(config, ["--config", yaml.safe_dump(dict(config), sort_keys=False)])
        else:
            shaped = trial_shape(config)
            cli = self._parse(shaped, copy.deepcopy(dict(shaped)))
            self._keep(shaped, cli.parsed_config)
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
        if self.parser is not None and _skeleton(config) in self._templates:
            self._check_values(config)
            return
        cli = self._parse(config, copy.deepcopy(dict(config)))
        if template:
            self._keep(config, cli.parsed_config)

    def _check_values(self, config: Mapping[str, Any]) -> None:
        """Parse ``config``, which differs from a kept parse's in values only, without defaults.

        jsonargparse checks and adapts each given value as in a full parse, but fills in no
        defaults: a quarter of the cost (~5 ms against ~20 ms on the MNIST-1D CNN's config).
        The kept config of the same shape was parsed in full, so nothing a full parse would
        find missing is missing here.
        """
        try:
            namespace = self.parser.parse_object(copy.deepcopy(dict(config)), defaults=False)
        except SystemExit as err:
            raise RecipeConfigError(
                "LightningCLI rejected the config (its message is printed above); fix the YAML "
                "or the overrides."
            ) from err
        self._accept(config, namespace)

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
