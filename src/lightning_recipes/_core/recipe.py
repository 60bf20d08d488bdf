"""`Recipe`: the furniture every recipe callback repeats, declared once.

A recipe callback names the constructor arguments that identify it (its checkpoint slot,
``state_key``), the strategy families it refuses at ``setup``, and what it reports to the
run (``run_summary``, the contract's `ReportsToRun`). `Recipe` turns those declarations
into behaviour; it adds no ``__init__``, so it sits beside `Callback` or beside a
Lightning callback that a recipe extends (``EarlyStopping``, ``WeightAveraging``).
"""

import copy
from operator import attrgetter
from typing import Any, ClassVar

from lightning.pytorch import Callback, Trainer
from typing_extensions import override

from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.trainer import StrategyFamily, refuse_strategies

__all__ = ["Recipe"]


def _kept(value: Any) -> Any:
    """``value`` as the cache keeps it: a copy of a container that may change in place."""
    return copy.copy(value) if isinstance(value, (dict, list, set)) else value


class Recipe(Callback):
    """Base of the library's callbacks: identity, refused strategies, run summary.

    Put it first among the bases (``class EarlyStopping(Recipe, LightningEarlyStopping)``)
    so that its `state_key` is the one Lightning reads; it has no ``__init__`` of its own.

    Attributes:
        identity: The arguments that tell two instances apart, in order: ``"name"`` reads
            the attribute ``name``; ``"key=path"`` stores under ``key`` the attribute at
            the (dotted) ``path``, e.g. ``"every=log_every_n_steps"``. The `state_key` is
            Lightning's ``_generate_state_key`` of them; with none, the base's key.
        refused_strategies: The strategy families the recipe cannot run under.
        refusal_reason: Why, and what to do instead: the end of `check_strategy`'s error.
        needs_recipes: Class names of the recipes this one cannot work without (the
            contract's "needs"): ``lightning-recipes ablate`` refuses to switch one of
            those off while this one stays on.

    Examples:
        >>> class Probe(Recipe):
        ...     identity = ("every=every_n_steps", "name")
        ...     refused_strategies = frozenset({"deepspeed"})
        ...     refusal_reason = "it reads whole gradients."
        ...
        ...     def __init__(self, every_n_steps: int = 1, name: str = "probe") -> None:
        ...         self.every_n_steps, self.name = every_n_steps, name
        >>> Probe(5).state_key
        "Probe{'every': 5, 'name': 'probe'}"
        >>> Probe().run_summary() is None  # nothing to report: left out of the report
        True
    """

    identity: ClassVar[tuple[str, ...]] = ()
    refused_strategies: ClassVar[frozenset[StrategyFamily]] = frozenset()
    refusal_reason: ClassVar[str] = ""
    needs_recipes: ClassVar[tuple[str, ...]] = ()
    _identity_keys: ClassVar[tuple[str, ...]] = ()
    _identity_getter: ClassVar["attrgetter[Any]"]  # quoted: not subscriptable at runtime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = [entry.partition("=") for entry in cls.identity]
        cls._identity_keys = tuple(key for key, _, _ in fields)
        if fields:  # one C call reads them all (a tuple of them, for two or more)
            cls._identity_getter = attrgetter(*(path or key for key, _, path in fields))

    @property
    @override
    def state_key(self) -> str:
        """Built from `identity`, so two instances in one Trainer keep their states apart.

        Lightning reads it on every hook call (about 8 times a step): the string is kept
        while the identifying values compare equal to the ones it was built from (plain
        values: numbers, strings, tuples; a list, dict or set is kept as a copy).
        """
        if not self._identity_keys:
            return super().state_key
        values = self._identity_getter(self)
        if len(self._identity_keys) == 1:
            values = (values,)
        cached: tuple[tuple[Any, ...], str] | None = self.__dict__.get("_state_key_cache")
        if cached is None or cached[0] != values:
            key = self._generate_state_key(**dict(zip(self._identity_keys, values, strict=True)))
            cached = self.__dict__["_state_key_cache"] = (tuple(map(_kept, values)), key)
        return cached[1]

    def check_strategy(self, trainer: Trainer, *, recipe: str | None = None) -> None:
        """Refuse the Trainer's strategy when it is one of `refused_strategies`.

        Call it from ``setup``, at the stages where the recipe would act.

        Args:
            trainer: The Trainer being set up.
            recipe: The recipe's name in the message; by default the name of the class that
                declares `refused_strategies` (a user's subclass keeps the recipe's name).

        Raises:
            RecipeConfigError: If the strategy's family is refused, with `refusal_reason`.
        """
        if recipe is None:
            recipe = next(c for c in type(self).__mro__ if "refused_strategies" in vars(c)).__name__
        refuse_strategies(
            trainer, self.refused_strategies, recipe=recipe, reason=self.refusal_reason
        )

    def run_summary(self) -> RecipeSummary | None:
        """What the recipe did in the last run, for the report; None: nothing to report."""
        return None
