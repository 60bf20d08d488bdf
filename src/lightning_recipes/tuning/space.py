"""Search spaces: which config keys a study varies, over which values, under which conditions.

A space is a mapping from a dotted config key (any path of the LightningCLI config, see
`lightning_recipes.tuning.config.config_keys`) to a parameter spec::

    model.init_args.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
    data.init_args.batch_size: {type: categorical, choices: [32, 64, 128]}
    depth:                                    # a virtual parameter: not a config key
      type: categorical
      choices: [2, 3]
      length_of: [model.init_args.backbone.init_args.hidden]
    model.init_args.backbone.init_args.hidden.0: {type: int, low: 16, high: 256, log: true}
    model.init_args.backbone.init_args.hidden.1: {type: int, low: 16, high: 256, log: true}
    model.init_args.backbone.init_args.hidden.2:
      {type: int, low: 16, high: 256, log: true, condition: {depth: 3}}

Spec fields: ``type`` (``float``, ``int`` or ``categorical``); ``low``, ``high``, ``log``,
``step`` for numbers; ``choices`` for categoricals; ``grid`` (explicit values for the grid
sampler); ``condition`` (``{name: value}`` or ``{name: [values]}``: the parameter is sampled
only when every named parameter was sampled with one of those values); ``virtual: true``
for a parameter that only drives conditions; ``length_of`` (a list of list-valued config
keys) for a virtual integer parameter that sets those lists' length: the list at each key
is cut to that length, and the items ``KEY.i`` of the space are sampled only for
``i < length`` (so "two or three hidden layers" needs no explicit condition, although one
may be written). A ``length_of`` key that holds a scalar in the config (one dropout for
every layer) is replaced by the list of sampled items.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes.errors import config_error
from lightning_recipes.tuning.config import get_path, unknown_key_error
from lightning_recipes.tuning.space_param import _LENGTH_KEY, Param, _order, _parse_param

__all__ = ["Param", "SearchSpace", "SpaceFunction", "load_space", "resize_lists"]

SpaceFunction: TypeAlias = Callable[[Any], dict[str, Any]]
"""A define-by-run space: ``(optuna.Trial) -> {config key: value}``."""


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space: the parameters in sampling order (conditions first).

    Attributes:
        params: The parameters; each one comes after every parameter its condition names.
    """

    params: tuple[Param, ...]

    @property
    def names(self) -> list[str]:
        """The parameter names, in sampling order."""
        return [p.name for p in self.params]

    @property
    def config_params(self) -> list[Param]:
        """The parameters that are config keys (not virtual)."""
        return [p for p in self.params if not p.virtual]

    def _lengths(self) -> dict[str, Param]:
        return {key: p for p in self.params for key in p.length_of}

    def _active(self, param: Param, sampled: Mapping[str, Any]) -> bool:
        for name, accepted in param.condition.items():
            if name not in sampled or sampled[name] not in accepted:
                return False
        for key, length_param in self._lengths().items():
            prefix = key + "."
            if param.name.startswith(prefix):
                rest = param.name[len(prefix) :].split(".", 1)[0]
                if length_param.name not in sampled or int(rest) >= int(sampled[length_param.name]):
                    return False
        return True

    def sample(self, trial: Any) -> dict[str, Any]:
        """Sample the space define-by-run: a parameter is asked only when it is active.

        Args:
            trial: An ``optuna.Trial``, or ``optuna.trial.FixedTrial(params)`` to rebuild the
                config values of a finished trial from its ``params``.

        Returns:
            Config key -> value, ready for `apply_params` after `resize_lists` (virtual
            parameters are left out; a ``length_of`` parameter appears as
            ``"__length__:KEY": n``).
        """
        sampled: dict[str, Any] = {}
        for param in self.params:
            if self._active(param, sampled):
                sampled[param.name] = param.suggest(trial)
        out: dict[str, Any] = {}
        for param in self.params:
            if param.name not in sampled:
                continue
            for key in param.length_of:
                out[_LENGTH_KEY + key] = int(sampled[param.name])
            if not param.virtual:
                out[param.name] = sampled[param.name]
        return out

    def check(self, config: Mapping[str, Any], valid_keys: Sequence[str]) -> None:
        """Check that every non-virtual parameter names a key of ``config``.

        Args:
            config: The (expanded) config the space applies to.
            valid_keys: Its settable keys (`config_keys` of it).

        Raises:
            RecipeConfigError: For an unknown key (listing the valid ones), or a list item that
                is neither in the config's list nor supplied by the space for every length.
        """
        valid = set(valid_keys)
        lengths = self._lengths()
        names = set(self.names)
        for param in self.params:
            for key in param.length_of:
                if key not in valid:
                    raise unknown_key_error(f"space[{param.name!r}].length_of", key, valid_keys)
                target = get_path(config, key)
                current = len(target) if isinstance(target, list) else 0
                longest = int(max(param.values() if param.type != "float" else [0]))
                missing = [
                    f"{key}.{i}" for i in range(current, longest) if f"{key}.{i}" not in names
                ]
                if missing:
                    raise config_error(
                        f"space[{param.name!r}]",
                        longest,
                        f"The list {key} has {current} items in the config; add "
                        f"{', '.join(missing)} to the space so that every length is filled.",
                    )
            if param.virtual or param.name in valid:
                continue
            owner = next((k for k in lengths if param.name.startswith(k + ".")), None)
            if owner is not None and re.fullmatch(r"\d+", param.name[len(owner) + 1 :]):
                continue  # an item of a list whose length the space sets
            raise unknown_key_error("space", param.name, valid_keys)

    def grid(self) -> dict[str, list[Any]]:
        """The values of every parameter for Optuna's ``GridSampler``.

        Conditional parameters are included (the grid sampler needs every name); a grid
        point whose condition fails simply does not use them, so such points repeat.

        Returns:
            Parameter name -> values.

        Raises:
            RecipeConfigError: For a float range without ``step`` or ``grid``.
        """
        return {p.name: p.values() for p in self.params}


def resize_lists(config: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Split what `SearchSpace.sample` returned into list lengths and config values.

    Cuts each list named by a ``"__length__:KEY": n`` entry to ``n`` items in ``config``
    (in place; a scalar there, e.g. one dropout for every layer, becomes an empty list that
    the sampled items fill) and returns the other entries, list items in index order.

    Args:
        config: The config to edit in place (a copy the caller owns).
        params: The output of `SearchSpace.sample`.

    Returns:
        The config key -> value entries.
    """
    values: dict[str, Any] = {}
    items: list[tuple[str, int, str, Any]] = []
    lists = [k[len(_LENGTH_KEY) :] for k in params if k.startswith(_LENGTH_KEY)]
    for key, value in params.items():
        if key.startswith(_LENGTH_KEY):
            path = key[len(_LENGTH_KEY) :]
            target = get_path(config, path)
            if isinstance(target, list):
                del target[int(value) :]
            else:
                parent, _, last = path.rpartition(".")
                holder: Any = get_path(config, parent) if parent else config
                holder[int(last) if isinstance(holder, list) else last] = []
            continue
        owner = next((k for k in lists if key.startswith(k + ".")), None)
        rest = key[len(owner) + 1 :] if owner is not None else ""
        if owner is not None and rest.isdigit():
            items.append((owner, int(rest), key, value))
        else:
            values[key] = value
    for _, _, key, value in sorted(items, key=lambda item: (item[0], item[1])):
        values[key] = value
    return values


def load_space(source: str | Path | Mapping[str, Any]) -> SearchSpace:
    """Parse a search space from a YAML file, a YAML string or a mapping.

    Args:
        source: A path to a YAML file, YAML text, or a mapping of config key -> spec (see
            the module docs for the fields).

    Returns:
        The space, in sampling order.

    Raises:
        RecipeConfigError: For an empty space, an unknown type or field, a bad range, a
            condition on an unknown parameter or on a value it never takes, or a cycle.

    Examples:
        >>> space = load_space({"model.init_args.lr": {"type": "float", "low": 1e-4,
        ...                                            "high": 0.1, "log": True}})
        >>> space.names
        ['model.init_args.lr']
    """
    raw: Any = source
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    ):
        path = Path(source)
        if not path.is_file():
            raise config_error("space", str(source), "Pass the path of a YAML space file.")
        raw = yaml.safe_load(path.read_text())
    elif isinstance(source, str):
        raw = yaml.safe_load(source)
    if not isinstance(raw, Mapping):
        raise config_error(
            "space", raw, "Pass a mapping of config key -> {type: ..., ...} (a YAML mapping)."
        )
    if not raw:
        raise config_error("space", dict(raw), "The space is empty: give at least one parameter.")
    params = {str(name): _parse_param(name, spec) for name, spec in raw.items()}
    for param in params.values():
        for name, accepted in param.condition.items():
            if name == param.name:
                raise config_error(
                    f"space[{param.name!r}].condition",
                    name,
                    "A parameter cannot be its own condition.",
                )
            if name not in params:
                raise config_error(
                    f"space[{param.name!r}].condition",
                    name,
                    f"Name a parameter of the space: {sorted(params)}.",
                )
            other = params[name]
            possible = (
                list(other.choices)
                if other.type == "categorical"
                else (other.values() if other.step is not None or other.type == "int" else None)
            )
            if possible is not None and not any(v in possible for v in accepted):
                raise config_error(
                    f"space[{param.name!r}].condition",
                    {name: list(accepted)},
                    f"{name!r} never takes these values; it takes {possible}.",
                )
    return SearchSpace(params=tuple(_order(params)))
