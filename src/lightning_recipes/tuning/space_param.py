"""One parameter of a search space (`Param`): its type, range, grid and condition, checked."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lightning_recipes.errors import choice_error, config_error

__all__ = ["Param", "ParamType"]

ParamType = Literal["float", "int", "categorical"]

_TYPES = ("float", "int", "categorical")
_FIELDS = {
    "float": {"type", "low", "high", "log", "step", "grid", "condition", "virtual", "length_of"},
    "int": {"type", "low", "high", "log", "step", "grid", "condition", "virtual", "length_of"},
    "categorical": {"type", "choices", "grid", "condition", "virtual", "length_of"},
}
_MAX_GRID = 100_000
_LENGTH_KEY = "__length__:"


@dataclass(frozen=True)
class Param:
    """One parameter of a `SearchSpace` (built by `load_space`; see the module docs).

    Attributes:
        name: The dotted config key, or a free name for a virtual parameter.
        type: ``"float"``, ``"int"`` or ``"categorical"``.
        low: Lower bound (numbers).
        high: Upper bound, inclusive (numbers).
        log: Sample on a log scale.
        step: Discretisation step (numbers), or None.
        choices: The values of a categorical.
        grid: Explicit values for the grid sampler, or None.
        condition: Parameter name -> accepted values; all must hold to sample this one.
        virtual: Not a config key (drives conditions and list lengths only).
        length_of: List-valued config keys whose length this parameter sets.
    """

    name: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    grid: tuple[Any, ...] | None = None
    condition: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    virtual: bool = False
    length_of: tuple[str, ...] = ()

    def values(self) -> list[Any]:
        """The finite set of values this parameter takes under the grid sampler.

        Returns:
            The grid values.

        Raises:
            RecipeConfigError: For a continuous float range without ``step`` or ``grid``.
        """
        if self.grid is not None:
            return list(self.grid)
        if self.type == "categorical":
            return list(self.choices)
        assert self.low is not None
        assert self.high is not None
        if self.type == "float" and self.step is None:
            raise config_error(
                f"space[{self.name!r}]",
                {"type": "float", "low": self.low, "high": self.high},
                "The grid sampler needs a finite set of values: give this float range a "
                "`step`, or list the values with `grid: [...]`, or use another sampler "
                "(random, tpe, gp).",
            )
        step = self.step if self.step is not None else 1
        count = math.floor((self.high - self.low) / step + 1e-9) + 1
        if count > _MAX_GRID:
            raise config_error(
                f"space[{self.name!r}]",
                {"low": self.low, "high": self.high, "step": step},
                f"This range has {count} grid values; pass a coarser `step` or `grid: [...]`.",
            )
        if self.type == "int":
            return [int(self.low) + i * int(step) for i in range(count)]
        return [round(self.low + i * step, 12) for i in range(count)]

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter from an Optuna trial.

        Args:
            trial: An ``optuna.Trial`` (or ``FixedTrial``).

        Returns:
            The sampled value.
        """
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None
        assert self.high is not None
        if self.type == "int":
            return trial.suggest_int(
                self.name,
                int(self.low),
                int(self.high),
                step=int(self.step) if self.step is not None else 1,
                log=self.log,
            )
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return round(value, 12) if self.step is not None else value  # 0.30000000000000004


def _number(where: str, name: str, value: Any, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise config_error(f"space[{name!r}].{where}", value, "Pass a number.")
    if integer and not float(value).is_integer():
        raise config_error(f"space[{name!r}].{where}", value, "An int parameter needs int bounds.")
    if not math.isfinite(value):
        raise config_error(f"space[{name!r}].{where}", value, "Pass a finite number.")
    return float(value)


def _parse_param(name: str, spec: Any) -> Param:
    arg = f"space[{name!r}]"
    if not isinstance(name, str) or not name or name != name.strip() or ".." in name:
        raise config_error("space", name, "Each key must be a dotted config key or a name.")
    if not isinstance(spec, Mapping):
        raise config_error(
            arg, spec, "Give a mapping, e.g. {type: float, low: 1.0e-4, high: 0.1, log: true}."
        )
    kind = spec.get("type")
    if kind not in _TYPES:
        raise choice_error(f"{arg}.type", kind, _TYPES)
    extra = set(spec) - _FIELDS[kind]
    if extra:
        raise config_error(
            arg,
            sorted(extra),
            f"Unknown field(s) for a {kind} parameter; valid fields: {sorted(_FIELDS[kind])}.",
        )
    virtual = spec.get("virtual", False)
    length_of_raw = spec.get("length_of", ())
    if isinstance(length_of_raw, str):
        length_of_raw = (length_of_raw,)
    if not isinstance(virtual, bool):
        raise config_error(f"{arg}.virtual", virtual, "Pass true or false.")
    if not isinstance(length_of_raw, list | tuple) or not all(
        isinstance(k, str) and k for k in length_of_raw
    ):
        raise config_error(f"{arg}.length_of", length_of_raw, "Pass a list of config keys.")
    length_of = tuple(length_of_raw)
    if length_of:
        virtual = True
    condition = _parse_condition(arg, spec.get("condition", {}))
    low = high = step = None
    log = False
    choices: tuple[Any, ...] = ()
    if kind == "categorical":
        raw = spec.get("choices")
        if not isinstance(raw, list | tuple) or len(raw) == 0:
            raise config_error(f"{arg}.choices", raw, "Pass a non-empty list of values.")
        if any(not isinstance(c, None | bool | int | float | str) for c in raw):
            raise config_error(
                f"{arg}.choices",
                raw,
                "Optuna stores categorical choices as None, bool, int, float or str; to choose "
                "between lists, use a virtual parameter with length_of or conditions.",
            )
        if len({(type(c), c) for c in raw}) != len(raw):
            raise config_error(f"{arg}.choices", raw, "Remove the duplicate choices.")
        choices = tuple(raw)
    else:
        integer = kind == "int"
        for required in ("low", "high"):
            if required not in spec:
                raise config_error(arg, dict(spec), f"A {kind} parameter needs `{required}`.")
        low = _number("low", name, spec["low"], integer)
        high = _number("high", name, spec["high"], integer)
        if not low < high:
            raise config_error(f"{arg}.high", spec["high"], f"Pass high > low (low={spec['low']}).")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise config_error(f"{arg}.log", log, "Pass true or false.")
        if log and low <= 0:
            raise config_error(f"{arg}.low", spec["low"], "A log range needs low > 0.")
        if spec.get("step") is not None:
            step = _number("step", name, spec["step"], integer)
            if step <= 0:
                raise config_error(f"{arg}.step", spec["step"], "Pass a positive step.")
            if log:
                raise config_error(
                    f"{arg}.step", spec["step"], "Optuna cannot combine `step` with `log: true`."
                )
            if step > high - low:
                raise config_error(f"{arg}.step", spec["step"], "Pass a step <= high - low.")
            ratio = (high - low) / step
            if abs(ratio - round(ratio)) > 1e-6:
                raise config_error(
                    f"{arg}.step",
                    spec["step"],
                    f"high - low ({high - low:g}) must be a multiple of the step, or Optuna "
                    "silently moves high.",
                )
    grid_raw = spec.get("grid")
    grid: tuple[Any, ...] | None = None
    if grid_raw is not None:
        if not isinstance(grid_raw, list | tuple) or len(grid_raw) == 0:
            raise config_error(f"{arg}.grid", grid_raw, "Pass a non-empty list of values.")
        for value in grid_raw:
            inside = (
                value in choices
                if kind == "categorical"
                else isinstance(value, int | float)
                and not isinstance(value, bool)
                and low is not None
                and high is not None
                and low <= value <= high
            )
            if not inside:
                raise config_error(
                    f"{arg}.grid", grid_raw, f"{value!r} is outside the parameter's range."
                )
        grid = tuple(grid_raw)
    if length_of:
        if kind == "float":
            raise config_error(f"{arg}.length_of", list(length_of), "A length must be an int.")
        if kind == "categorical":
            bad = any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in choices)
        else:
            bad = low is None or low < 1
        if bad:
            raise config_error(
                f"{arg}.length_of", list(length_of), "The lengths must be integers >= 1."
            )
    return Param(
        name=name,
        type=kind,
        low=low,
        high=high,
        log=log,
        step=step,
        choices=choices,
        grid=grid,
        condition=condition,
        virtual=virtual,
        length_of=length_of,
    )


def _parse_condition(arg: str, raw: Any) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, Mapping):
        raise config_error(f"{arg}.condition", raw, "Pass a mapping {parameter: value(s)}.")
    condition: dict[str, tuple[Any, ...]] = {}
    for key, value in raw.items():
        accepted = tuple(value) if isinstance(value, list | tuple) else (value,)
        if not accepted:
            raise config_error(f"{arg}.condition", dict(raw), f"Give {key!r} at least one value.")
        condition[str(key)] = accepted
    return condition


def _order(params: dict[str, Param]) -> list[Param]:
    ordered: list[Param] = []
    state: dict[str, int] = {}

    def visit(param: Param, chain: tuple[str, ...]) -> None:
        if state.get(param.name) == 2:
            return
        if state.get(param.name) == 1:
            cycle = " -> ".join((*chain, param.name))
            raise config_error(f"space[{param.name!r}].condition", cycle, "Remove the cycle.")
        state[param.name] = 1
        for name in param.condition:
            visit(params[name], (*chain, param.name))
        for owner in params.values():  # a list's length is sampled before its items
            if any(param.name.startswith(key + ".") for key in owner.length_of):
                visit(owner, (*chain, param.name))
        state[param.name] = 2
        ordered.append(param)

    for param in params.values():
        visit(param, ())
    return ordered
