"""Which recipes of a config pay off: the designs and the statistics of an ablation, pure.

The factors of an ablation are callbacks of a LightningCLI config's ``trainer.callbacks``,
each on or off (`config_factors`). A design (`configurations`) lists the sets of factors
that are on in each run: leave-one-out (all, then all but one: what each recipe adds in
this company), add-one-in (none, then each alone: what it does by itself) or the full
factorial (every subset, for a few factors: main effects averaged over the others). Every
configuration runs with the same seeds, so effects are paired differences per seed
(`factor_effects`): a mean, its standard deviation over seeds and a 95 % confidence
interval (Student's t); an interval holding 0 is **within the noise**, never called a win.
`recommended_config` drops the factors whose removal helped beyond the noise.

The runs themselves (a trial each, in an Optuna study) are `lightning_recipes.tuning`'s.
"""

import copy
import importlib
import math
import re
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from lightning_recipes.errors import RecipeConfigError, choice_error, config_error

__all__ = [
    "DESIGNS",
    "MAX_FACTORIAL_FACTORS",
    "AblationDesign",
    "Effect",
    "Factor",
    "check_switchable",
    "config_factors",
    "configuration_config",
    "configurations",
    "factor_effects",
    "recommended_config",
]

AblationDesign = Literal["leave-one-out", "add-one-in", "factorial"]
DESIGNS: tuple[AblationDesign, ...] = ("leave-one-out", "add-one-in", "factorial")
MAX_FACTORIAL_FACTORS = 6
"""The full factorial runs 2**k configurations per seed: 64 at most."""

_LIBRARY = "lightning_recipes."
# Two-sided 95 % quantiles of Student's t for 1-30 degrees of freedom (then the normal's).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


@dataclass(frozen=True)
class Factor:
    """A callback of the config that an ablation switches on and off.

    Attributes:
        name: Its name in tables: the class name, with ``#2``, ``#3`` for repeats.
        index: Its position in ``trainer.callbacks``.
        class_path: Its ``class_path``.
    """

    name: str
    index: int
    class_path: str


@dataclass(frozen=True)
class Effect:
    """What switching one factor on does to the monitored metric, paired over seeds.

    Attributes:
        factor: The factor's name.
        mean: Mean effect; positive helps (whatever the metric's direction).
        std: Its standard deviation over seeds (0 with one seed).
        low: Lower end of the 95 % confidence interval of the mean.
        high: Upper end.
        seeds: How many seeds.
        verdict: ``"helps"`` or ``"hurts"`` beyond the noise, else ``"within the noise"``.
    """

    factor: str
    mean: float
    std: float
    low: float
    high: float
    seeds: int
    verdict: str


def _callbacks(config: Mapping[str, Any]) -> list[Any]:
    trainer = config.get("trainer") or {}
    callbacks = trainer.get("callbacks") or []
    return [callbacks] if isinstance(callbacks, Mapping) else list(callbacks)


def config_factors(
    config: Mapping[str, Any], extra: Sequence[str | int] = (), keep: Sequence[str | int] = ()
) -> list[Factor]:
    """The factors of ``config``: its callbacks from this library, and those named in ``extra``.

    Args:
        config: A LightningCLI config (``trainer.callbacks`` entries with ``class_path``).
        extra: More callbacks to switch, by position in ``trainer.callbacks``, class name
            or ``class_path``.
        keep: Callbacks of this library to keep on in every run instead (same forms).

    Returns:
        The factors, in the config's order.

    Raises:
        RecipeConfigError: If ``extra`` names no callback of the config, or there is no
            factor at all.

    Examples:
        >>> cfg = {"trainer": {"callbacks": [
        ...     {"class_path": "lightning_recipes.augmentation.MixUp"},
        ...     {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor"}]}}
        >>> [f.name for f in config_factors(cfg)], [f.name for f in config_factors(cfg, [1])]
        (['MixUp'], ['MixUp', 'LearningRateMonitor'])
    """
    entries = _callbacks(config)
    paths = [e.get("class_path", "") if isinstance(e, Mapping) else "" for e in entries]
    chosen = {i for i, path in enumerate(paths) if path.startswith(_LIBRARY)}

    def named(argument: str, wanted: str | int) -> list[int]:
        found = [
            i
            for i, path in enumerate(paths)
            if wanted == i or wanted in (path, path.rsplit(".", 1)[-1])
        ]
        if not found or isinstance(wanted, bool):
            classes = [p.rsplit(".", 1)[-1] for p in paths]
            raise config_error(
                argument,
                wanted,
                f"Name a callback of trainer.callbacks by position (0-{len(paths) - 1}), class "
                f"name or class_path; the config has {classes}.",
            )
        return found

    for wanted in extra:
        chosen.update(named("factor", wanted))
    for wanted in keep:
        chosen.difference_update(named("keep", wanted))
    if not chosen:
        raise RecipeConfigError(
            "The config has no callback to ablate: trainer.callbacks holds no recipe of "
            "lightning_recipes. Name others with factor (position, class name or class_path)."
        )
    factors: list[Factor] = []
    seen: dict[str, int] = {}
    for i in sorted(chosen):
        base = paths[i].rsplit(".", 1)[-1] or f"callback {i}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        factors.append(Factor(name, i, paths[i]))
    return factors


def check_switchable(config: Mapping[str, Any], factors: Sequence[Factor]) -> None:
    """Refuse a factor that cannot be switched off alone, before any run.

    A factor cannot be left out when the rest of the config names it (another callback's,
    the model's or the data's arguments hold its class name or ``class_path``: a link that
    would dangle), or when another callback of the config declares that it needs it
    (`Recipe.needs_recipes`, the contract's "needs").

    Args:
        config: The LightningCLI config.
        factors: Its factors (`config_factors`).

    Raises:
        RecipeConfigError: Naming the factor, what holds on to it, and the fix.

    Examples:
        >>> cfg = {"trainer": {"callbacks": [
        ...     {"class_path": "lightning_recipes.augmentation.MixUp"},
        ...     {"class_path": "my.Probe", "init_args": {"after": "MixUp"}}]}}
        >>> check_switchable(cfg, config_factors(cfg))
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: factor 'MixUp' cannot be switched off alone: ...
    """
    entries = _callbacks(config)
    for factor in factors:
        name = factor.class_path.rsplit(".", 1)[-1]
        names = {factor.class_path, name}
        for where, value in _strings(config, ""):
            own = where.startswith(f"trainer.callbacks[{factor.index}]")
            entry_path = re.fullmatch(r"trainer\.callbacks\[\d+\]\.class_path", where)
            if own or entry_path or not isinstance(value, str):
                continue
            if value in names or value.endswith(f".{name}"):
                raise _unswitchable(factor, f"{where} names it ({value!r})")
        for j, entry in enumerate(entries):
            if j == factor.index or not isinstance(entry, Mapping):
                continue
            needs = getattr(_import_class(str(entry.get("class_path", ""))), "needs_recipes", ())
            if name in needs:
                other = str(entry.get("class_path", "")).rsplit(".", 1)[-1]
                raise _unswitchable(factor, f"{other} (trainer.callbacks[{j}]) needs it")


def _unswitchable(factor: Factor, reason: str) -> RecipeConfigError:
    return RecipeConfigError(
        f"factor {factor.name!r} cannot be switched off alone: {reason}. Keep it on in every "
        f"run (keep=[{factor.name!r}], `--keep {factor.name}` on the command line), or remove "
        "what holds on to it."
    )


def _strings(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a config with its dotted path (``trainer.callbacks[2].init_args.x``)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    else:
        yield where, value


def _import_class(class_path: str) -> type | None:
    """The class at ``class_path``, or None where it does not import (the parse says why)."""
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError):
        return None
    return found if isinstance(found, type) else None


def configurations(names: Sequence[str], design: AblationDesign) -> list[tuple[str, ...]]:
    """The sets of factors switched on in each run of ``design`` (one seed), in order.

    Examples:
        >>> configurations(["a", "b"], "leave-one-out")
        [('a', 'b'), ('b',), ('a',)]
        >>> configurations(["a", "b"], "add-one-in")
        [(), ('a',), ('b',)]
        >>> configurations(["a", "b"], "factorial")
        [(), ('a',), ('b',), ('a', 'b')]
    """
    if design not in DESIGNS:
        raise choice_error("design", design, DESIGNS)
    names = list(names)
    if len(set(names)) != len(names) or not names:
        raise config_error("factors", names, "Pass distinct factor names, at least one.")
    if design == "leave-one-out":
        return [tuple(names)] + [tuple(n for n in names if n != out) for out in names]
    if design == "add-one-in":
        return [()] + [(name,) for name in names]
    if len(names) > MAX_FACTORIAL_FACTORS:
        raise config_error(
            "design",
            design,
            f"A full factorial of {len(names)} factors runs {2 ** len(names)} configurations a "
            f"seed; use it for at most {MAX_FACTORIAL_FACTORS} factors (name them with factor) "
            "or use 'leave-one-out'.",
        )
    return [subset for size in range(len(names) + 1) for subset in combinations(names, size)]


def configuration_config(
    config: Mapping[str, Any], factors: Sequence[Factor], on: Sequence[str]
) -> dict[str, Any]:
    """``config`` with the factors not in ``on`` removed from ``trainer.callbacks``."""
    off = {f.index for f in factors if f.name not in set(on)}
    result = copy.deepcopy(dict(config))
    kept = [c for i, c in enumerate(_callbacks(config)) if i not in off]
    if off:
        result.setdefault("trainer", {})["callbacks"] = copy.deepcopy(kept)
    return result


def _t95(seeds: int) -> float:
    return _T95[seeds - 2] if seeds - 2 < len(_T95) else 1.96


def _summarise(name: str, per_seed: Sequence[float]) -> Effect:
    seeds = len(per_seed)
    mean = statistics.fmean(per_seed)
    std = statistics.stdev(per_seed) if seeds > 1 else 0.0
    half = _t95(seeds) * std / math.sqrt(seeds) if seeds > 1 else math.inf
    low, high = mean - half, mean + half
    verdict = "helps" if low > 0 else "hurts" if high < 0 else "within the noise"
    return Effect(name, mean, std, low, high, seeds, verdict)


def factor_effects(
    scores: Mapping[tuple[str, ...], Sequence[float]],
    names: Sequence[str],
    design: AblationDesign,
    mode: Literal["min", "max"],
) -> list[Effect]:
    """Each factor's effect, paired over seeds, ranked from most helpful to most harmful.

    Args:
        scores: For each configuration of ``configurations(names, design)``, the monitored
            value of each seed (the same seeds, in the same order, for every configuration).
        names: The factors' names.
        design: The design the runs followed.
        mode: ``"max"`` when a higher value is better (the effect is then the change in the
            value), ``"min"`` when lower is better (the effect is minus the change).

    Returns:
        One `Effect` per factor, sorted by mean effect, most helpful first.

    Raises:
        RecipeConfigError: If a configuration of the design is missing or the seeds differ
            in number.

    Examples:
        >>> runs = {("a", "b"): [0.9, 0.8], ("b",): [0.7, 0.6], ("a",): [0.9, 0.8]}
        >>> [(e.factor, round(e.mean, 3)) for e in factor_effects(runs, ["a", "b"],
        ...     "leave-one-out", "max")]
        [('a', 0.2), ('b', 0.0)]
    """
    if mode not in ("min", "max"):
        raise choice_error("mode", mode, ("min", "max"))
    design_runs = configurations(names, design)
    missing = [c for c in design_runs if c not in scores]
    counts = {len(scores[c]) for c in design_runs if c in scores}
    if missing or len(counts) != 1 or 0 in counts:
        raise RecipeConfigError(
            f"An ablation needs every configuration of its design with the same seeds; "
            f"missing {missing[:3]}, seed counts {sorted(counts)}."
        )
    sign = 1.0 if mode == "max" else -1.0
    seeds = counts.pop()

    def value(on: Sequence[str], seed: int) -> float:
        return sign * float(scores[tuple(on)][seed])

    effects = []
    for name in names:
        if design == "leave-one-out":
            rest = tuple(n for n in names if n != name)
            per_seed = [value(tuple(names), s) - value(rest, s) for s in range(seeds)]
        elif design == "add-one-in":
            per_seed = [value((name,), s) - value((), s) for s in range(seeds)]
        else:
            with_it = [c for c in design_runs if name in c]
            without = [c for c in design_runs if name not in c]
            per_seed = [
                statistics.fmean(value(c, s) for c in with_it)
                - statistics.fmean(value(c, s) for c in without)
                for s in range(seeds)
            ]
        effects.append(_summarise(name, per_seed))
    return sorted(effects, key=lambda e: -e.mean)


def recommended_config(
    config: Mapping[str, Any], factors: Sequence[Factor], effects: Sequence[Effect]
) -> dict[str, Any]:
    """``config`` without the factors that hurt beyond the noise (whose removal helped)."""
    hurt = {e.factor for e in effects if e.verdict == "hurts"}
    return configuration_config(config, factors, [f.name for f in factors if f.name not in hurt])
