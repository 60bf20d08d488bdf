"""WeightPenalty: L1/L2/elastic-net penalties on chosen layers, as if added to the loss."""

import math
from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.selection import (
    DEFAULT_TYPES,
    check_globs,
    check_selection,
    check_types,
    first_unmatched,
    name_matches,
    select_modules,
    selected_parameters,
)
from lightning_recipes._core.validate import flag, is_real, listing
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.regularization.penalty import add_penalty_grad_, penalty_value

__all__ = ["WeightPenalty"]


def _strength(argument: str, value: Any) -> float:
    if not is_real(value) or not 0 <= value < math.inf:
        raise config_error(argument, value, "Pass a finite strength >= 0, e.g. 1e-4.")
    return float(value)


class WeightPenalty(Recipe):
    """Add ``l1 * sum|w| + l2 * sum w**2`` over chosen layers to the training loss.

    Keras' ``kernel_regularizer=l1_l2(l1, l2)`` as a callback: the module's loss and code
    do not change. Instead of building the penalty into the autograd graph, the callback
    adds its gradient, ``l1 * sign(w) + 2 * l2 * w``, to the gradients right after each
    backward pass (``on_after_backward``), divided by ``accumulate_grad_batches`` as
    Lightning divides the loss, and multiplied by the AMP loss scale under fp16. Training
    changes exactly as if the penalty had been added to the loss of every training step
    (tested against an explicit loss term, also under gradient accumulation, mixed
    precision and 2-rank DDP), at the cost of one fused ``torch._foreach`` pass per
    backward and no host sync.

    Layers: by default the ``weight`` of every Linear and convolution (not biases, not
    normalisation layers, not embeddings). Choose others with ``types`` (class names),
    ``names`` / ``exclude`` (globs on module names) and ``biases``. ``per_layer`` gives
    layers their own strengths, as Keras does per layer: ``{"head": {"l2": 1e-3}}``.
    Frozen parameters (``requires_grad=False``) are skipped, as an explicit term would not
    train them either.

    The penalty (the value, not multiplied by anything) is sent to the loggers as
    ``penalty`` every ``log_every_n_steps`` optimizer steps, one host read per logging
    step, and kept in `history`.

    Refused at setup: manual optimization (the Trainer then runs no accumulation and
    does not know which optimizer steps which penalised layer: add the term to your loss),
    and sharded strategies (FSDP, DeepSpeed: gradients are sharded differently from
    parameters).

    Args:
        l1: L1 strength of every chosen layer (default 0).
        l2: L2 strength of every chosen layer (default 0). Not ``weight_decay``: see the
            docs for the difference with decoupled decay (AdamW).
        types: Class names of the layers to penalise; default Linear, Bilinear and the
            convolutions.
        names: Globs on module names; only matching layers are penalised (None: all).
        exclude: Globs of module names to leave out.
        biases: Also penalise the layers' biases.
        per_layer: ``{module-name glob: {"l1": ..., "l2": ...}}``; the first glob matching
            a chosen layer sets its strengths (missing keys are 0).
        log_every_n_steps: Logging period in optimizer steps; default the Trainer's.

    Examples:
        >>> penalty = WeightPenalty(l2=1e-4, per_layer={"head": {"l1": 1e-5}})
        >>> penalty.l2
        0.0001
    """

    identity = ("l1", "l2", "types", "names", "exclude", "biases", "per_layer=_per_layer_key")
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "under sharding the gradients are split differently from the parameters. "
        "Add the penalty to your loss instead (penalty_value in "
        "lightning_recipes.regularization)."
    )

    def __init__(
        self,
        l1: float = 0.0,
        l2: float = 0.0,
        types: list[str] | None = None,
        names: list[str] | None = None,
        exclude: list[str] | None = None,
        biases: bool = False,
        per_layer: dict[str, dict[str, float]] | None = None,
        log_every_n_steps: int | None = None,
    ) -> None:
        self.l1 = _strength("l1", l1)
        self.l2 = _strength("l2", l2)
        self.types = check_types("types", types) if types is not None else DEFAULT_TYPES
        self.names = check_globs("names", names)
        self.exclude = check_globs("exclude", exclude) or ()
        self._types_given = types is not None
        self.biases = flag("biases", biases)
        self.per_layer = self._check_per_layer(per_layer)
        if log_every_n_steps is not None and (
            not isinstance(log_every_n_steps, int)
            or isinstance(log_every_n_steps, bool)
            or log_every_n_steps < 1
        ):
            raise config_error(
                "log_every_n_steps",
                log_every_n_steps,
                "Pass a positive integer number of optimizer steps, or None for the Trainer's.",
            )
        self.log_every_n_steps = log_every_n_steps
        if not (self.l1 or self.l2 or any(any(s.values()) for s in self.per_layer.values())):
            raise config_error(
                "l2",
                l2,
                "Every strength is 0, so the penalty would do nothing: pass l1=, l2= or "
                "per_layer= with a positive strength.",
            )
        # Set up at fit start: (l1, l2) -> parameters, with their names.
        self._groups: list[tuple[float, float, list[nn.Parameter]]] = []
        self.layers: dict[str, tuple[float, float]] = {}
        self._every = 1
        self._logged_step = -1
        self._active_cache: dict[tuple[bool, ...], list[tuple[float, float, list[nn.Parameter]]]]
        self._active_cache = {}
        self.history: list[tuple[int, float]] = []
        self.backward_passes = 0

    @staticmethod
    def _check_per_layer(value: Any) -> dict[str, dict[str, float]]:
        if value is None:
            return {}
        fix = "Pass {module-name glob: {'l1': float, 'l2': float}}, e.g. {'head': {'l2': 1e-3}}."
        if not isinstance(value, Mapping):
            raise config_error("per_layer", value, fix)
        out: dict[str, dict[str, float]] = {}
        for glob, strengths in value.items():
            if not isinstance(glob, str) or not glob or not isinstance(strengths, Mapping):
                raise config_error("per_layer", value, fix)
            unknown = set(strengths) - {"l1", "l2"}
            if unknown or not strengths:
                raise config_error("per_layer", value, f"Keys must be 'l1' and/or 'l2'. {fix}")
            out[glob] = {
                key: _strength(f"per_layer[{glob!r}][{key!r}]", strengths[key])
                for key in ("l1", "l2")
                if key in strengths
            }
        return out

    def _check_per_layer_matches(self, pl_module: LightningModule, selected: list[str]) -> None:
        """Refuse a per_layer glob that matches no selected layer (a typo would be ignored)."""
        glob = first_unmatched(selected, list(self.per_layer))
        if glob is not None:
            raise config_error(
                "per_layer",
                self.per_layer,
                f"{glob!r} matches no layer of {type(pl_module).__name__} that this "
                f"penalty selects; their names are: {listing(selected)}.",
            )

    @property
    def _per_layer_key(self) -> list[tuple[str, list[tuple[str, float]]]]:
        return sorted((k, sorted(v.items())) for k, v in self.per_layer.items())

    def _strengths_of(self, name: str) -> tuple[float, float]:
        for glob, strengths in self.per_layer.items():
            if name_matches(name, [glob]):
                return strengths.get("l1", 0.0), strengths.get("l2", 0.0)
        return self.l1, self.l2

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)
        if not pl_module.automatic_optimization:
            raise RecipeConfigError(
                "WeightPenalty needs automatic optimization: under manual optimization it "
                "cannot tell which optimizer steps which layer. Add "
                "lightning_recipes.regularization.penalty_value(...) to your loss instead."
            )
        trainer_every = int(getattr(trainer, "log_every_n_steps", 50))
        self._every = self.log_every_n_steps or max(trainer_every, 1)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After configure_model: layers built there are here now.
        check_selection(
            pl_module, self.types, self.names, self.exclude, types_given=self._types_given
        )
        modules = select_modules(pl_module, self.types, self.names, self.exclude)
        self._check_per_layer_matches(pl_module, [name for name, _ in modules])
        by_strength: dict[tuple[float, float], list[nn.Parameter]] = {}
        self.layers = {}
        for module_name, module in modules:
            l1, l2 = self._strengths_of(module_name)
            if not (l1 or l2):
                continue
            for name, param in selected_parameters([(module_name, module)], self.biases):
                by_strength.setdefault((l1, l2), []).append(param)
                self.layers[name] = (l1, l2)
        if not self.layers:
            raise config_error(
                "types",
                list(self.types),
                f"No layer of {type(pl_module).__name__} matches types={list(self.types)}, "
                f"names={self.names}, exclude={list(self.exclude)} with a positive strength: "
                "name the layer classes (e.g. ['Linear']) or globs of module names.",
            )
        self._groups = [(l1, l2, params) for (l1, l2), params in by_strength.items()]
        self._active_cache = {}
        self._logged_step = -1

    def _active(self) -> list[tuple[float, float, list[nn.Parameter]]]:
        """The groups restricted to trainable parameters (cached by the frozen pattern)."""
        key = tuple(p.requires_grad for _, _, params in self._groups for p in params)
        cached = self._active_cache.get(key)
        if cached is None:
            cached = [
                (l1, l2, [p for p in params if p.requires_grad]) for l1, l2, params in self._groups
            ]
            cached = [g for g in cached if g[2]]
            self._active_cache[key] = cached
        return cached

    @override
    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        groups = self._active()
        factor = 1.0 / max(int(trainer.accumulate_grad_batches), 1)
        scale = helpers.loss_scale(trainer)
        for l1, l2, params in groups:
            for param in params:
                if param.grad is None:  # unused in this forward: the term alone gives it one
                    param.grad = torch.zeros_like(param)
            grads = [p.grad for p in params if p.grad is not None]
            add_penalty_grad_(params, grads, l1, l2, factor, scale)
        self.backward_passes += 1
        step = trainer.global_step
        if step % self._every == 0 and step != self._logged_step:
            self._logged_step = step
            self._log(trainer, groups)

    def value(self) -> Tensor:
        """The current penalty of every chosen trainable parameter (a 0-d tensor)."""
        with torch.no_grad():
            parts = [penalty_value(params, l1, l2) for l1, l2, params in self._active()]
        return torch.stack(parts).sum() if parts else torch.zeros(())

    def _log(self, trainer: Trainer, groups: list[tuple[float, float, list[nn.Parameter]]]) -> None:
        with torch.no_grad():
            parts = [penalty_value(params, l1, l2) for l1, l2, params in groups]
        if not parts:
            return
        total = float(torch.stack(parts).sum())  # the one host read, on logging steps only
        self.history.append((trainer.global_step, total))
        for logger in trainer.loggers:
            logger.log_metrics({"penalty": total}, step=trainer.global_step)

    @override
    def run_summary(self) -> RecipeSummary:
        """The layers penalised, their strengths, the last logged penalty."""
        strengths = sorted({v for v in self.layers.values()})
        facts: dict[str, Any] = {
            "penalised parameters": len(self.layers),
            "strengths (l1, l2)": [list(s) for s in strengths],
            "backward passes": self.backward_passes,
            "last penalty": self.history[-1][1] if self.history else None,
        }
        return RecipeSummary("Weight penalty", facts=facts)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "backward_passes": self.backward_passes}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [(int(s), float(v)) for s, v in state_dict.get("history", [])]
        self.backward_passes = int(state_dict.get("backward_passes", 0))
