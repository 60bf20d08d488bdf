"""WeightInit: He/Xavier/orthogonal/LSUV initialisation when a fit starts (never on resume)."""

import math
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.module_modes import restored_modes
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import dataloader_generators, preserved_rng
from lightning_recipes._core.selection import (
    DEFAULT_TYPES,
    check_globs,
    check_selection,
    check_types,
    select_modules,
)
from lightning_recipes._core.validate import is_real, non_negative_int, positive_int
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error
from lightning_recipes.initialization.schemes import (
    NONLINEARITIES,
    SCHEME_NAMES,
    Nonlinearity,
    Scheme,
    init_modules_,
    lsuv_,
    resolve_scheme,
)

__all__ = ["WeightInit"]


class WeightInit(Recipe):
    """Initialise chosen layers with He, Xavier, orthogonal or LSUV when training starts.

    Keras' ``kernel_initializer`` for a model you did not write: the chosen layers (by
    default every Linear and convolution; choose with ``types``, ``names``, ``exclude`` as
    for `WeightPenalty`) get new weights and zero biases when ``trainer.fit`` starts
    training (``on_train_start``, or earlier when another recipe asks, e.g. the LR finder
    before its range test), once.

    - Never on resume: a fit given ``ckpt_path`` keeps the checkpoint's weights (the
      callback's state also records that it ran).
    - Identical on every DDP rank: draws come from a generator seeded with ``seed`` (the
      global RNG is not touched), and LSUV's variances are summed over ranks.
    - ``"lsuv"`` (Mishkin & Matas 2016): orthogonal init, then each layer in turn is
      scaled until its output variance on one training batch is 1 (within ``lsuv_tol``).
      The batch's first element is fed to ``pl_module(inputs)`` in eval mode without
      gradients (modes restored; the data loader's random state is restored, so the
      training data order is not changed).

    Args:
        scheme: ``"kaiming_normal"``/``"kaiming_uniform"`` (He; Keras' ``he_normal``),
            ``"xavier_normal"``/``"xavier_uniform"`` (Glorot), ``"orthogonal"`` or
            ``"lsuv"``; or an alias of `SCHEME_ALIASES` (``"he"``, ``"xavier"``,
            ``"glorot_uniform"``, ...), the same vocabulary as `MLP`'s ``init``. Stored
            as the canonical name.
        nonlinearity: The activation that follows the layers (sets the gain).
        types: Class names of the layers to initialise.
        names: Globs on module names (None: every chosen type).
        exclude: Globs of module names to leave alone.
        bias: ``"zeros"`` or ``"keep"``.
        seed: Seed of the initialisation's own generator.
        lsuv_tol: LSUV's accepted distance of each layer's output variance from 1.
        lsuv_max_iter: LSUV's passes per layer at most.

    Examples:
        >>> WeightInit("lsuv").scheme, WeightInit("he").scheme
        ('lsuv', 'kaiming_normal')
    """

    identity = ("scheme", "types", "names", "exclude")
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "sharded parameters cannot be initialised whole here. Initialise the "
        "layers in configure_model with lightning_recipes.initialization.init_modules_."
    )

    def __init__(
        self,
        scheme: Scheme = "kaiming_normal",
        nonlinearity: Nonlinearity = "relu",
        types: list[str] | None = None,
        names: list[str] | None = None,
        exclude: list[str] | None = None,
        bias: Literal["zeros", "keep"] = "zeros",
        seed: int = 0,
        lsuv_tol: float = 0.1,
        lsuv_max_iter: int = 10,
    ) -> None:
        if scheme not in SCHEME_NAMES:
            raise choice_error("scheme", scheme, SCHEME_NAMES)
        if nonlinearity not in NONLINEARITIES:
            raise choice_error("nonlinearity", nonlinearity, NONLINEARITIES)
        if bias not in ("zeros", "keep"):
            raise choice_error("bias", bias, ("zeros", "keep"))
        non_negative_int("seed", seed, "Pass a non-negative integer seed.")
        if not is_real(lsuv_tol) or not 0 < lsuv_tol < 1:
            raise config_error("lsuv_tol", lsuv_tol, "Pass a tolerance in (0, 1), e.g. 0.1.")
        self.scheme: Scheme = resolve_scheme(scheme)
        self.nonlinearity: Nonlinearity = nonlinearity
        self.types = check_types("types", types) if types is not None else DEFAULT_TYPES
        self.names = check_globs("names", names)
        self.exclude = check_globs("exclude", exclude) or ()
        self._types_given = types is not None
        self.bias: Literal["zeros", "keep"] = bias
        self.seed = int(seed)
        self.lsuv_tol = float(lsuv_tol)
        self.lsuv_max_iter = positive_int("lsuv_max_iter", lsuv_max_iter)
        self.applied = False
        self.skipped_on_resume = False
        self.layers: list[str] = []
        self.variances: dict[str, float] = {}
        self._prepared = False

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)
        self._prepared = False

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.prepare_training(trainer, pl_module)

    def prepare_training(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Initialise the layers, once per fit, unless resuming (``PreparesTraining``)."""
        if self._prepared:
            return
        self._prepared = True
        if self.applied or trainer.ckpt_path is not None:
            self.skipped_on_resume = True
            helpers.rank_zero_info(
                "WeightInit: resuming from a checkpoint, weights kept as they were saved."
            )
            return
        check_selection(
            pl_module, self.types, self.names, self.exclude, types_given=self._types_given
        )
        modules = select_modules(pl_module, self.types, self.names, self.exclude)
        if not modules:
            raise config_error(
                "types",
                list(self.types),
                f"No layer of {type(pl_module).__name__} matches types={list(self.types)}, "
                f"names={self.names}, exclude={list(self.exclude)}: name the layer classes "
                "(e.g. ['Linear']) or globs of module names.",
            )
        generator = torch.Generator().manual_seed(self.seed)
        device = pl_module.device
        # Draw on the CPU (the same generator on every device and rank), then copy.
        cpu_copies = [_cpu_shadow(m) for _, m in modules]
        init_modules_(
            [c for c in cpu_copies if c is not None],
            self.scheme,
            self.nonlinearity,
            bias=self.bias,
            generator=generator,
        )
        with torch.no_grad():
            for (_, module), shadow in zip(modules, cpu_copies, strict=True):
                if shadow is None:
                    continue
                for attr in ("weight", "bias"):
                    target = getattr(module, attr, None)
                    source = getattr(shadow, attr, None)
                    if isinstance(target, Tensor) and isinstance(source, Tensor):
                        target.copy_(source.to(device))
        self.layers = [name for (name, _), s in zip(modules, cpu_copies, strict=True) if s]
        if self.scheme == "lsuv":
            self.variances = self._lsuv(trainer, pl_module, modules)
        self.applied = True

    def _lsuv(
        self, trainer: Trainer, pl_module: LightningModule, modules: list[tuple[str, nn.Module]]
    ) -> dict[str, float]:
        loaders = getattr(trainer.train_dataloader, "flattened", None)
        loader = loaders[0] if loaders else trainer.train_dataloader
        if loader is None:
            raise RecipeConfigError(
                "WeightInit(scheme='lsuv') needs a training batch, but the Trainer has no "
                "train dataloader at train start."
            )
        with preserved_rng(dataloader_generators(loader)):
            batch = next(iter(loader))
        batch = trainer.strategy.batch_to_device(batch)
        inputs = batch[0] if isinstance(batch, list | tuple) else batch
        reduce = None if trainer.world_size == 1 else (lambda t: helpers.reduce_sum(trainer, t))
        try:
            with restored_modes(pl_module), torch.no_grad(), preserved_rng():
                pl_module.eval()
                return lsuv_(
                    lambda: pl_module(inputs),
                    modules,
                    tol=self.lsuv_tol,
                    max_iter=self.lsuv_max_iter,
                    reduce=reduce,
                )
        except (TypeError, RuntimeError) as error:
            raise RecipeConfigError(
                f"WeightInit(scheme='lsuv') ran pl_module(batch[0]) on a training batch and "
                f"it failed ({error}). LSUV needs forward() to accept the batch's first "
                "element; use another scheme otherwise."
            ) from error

    @override
    def run_summary(self) -> RecipeSummary:
        """The scheme, the layers initialised, LSUV's variances, or that it kept a resume."""
        facts: dict[str, Any] = {
            "scheme": self.scheme,
            "nonlinearity": self.nonlinearity,
            "layers initialised": len(self.layers) if self.applied else 0,
        }
        if self.variances:
            facts["LSUV output variances"] = {
                k: round(v, 4) for k, v in self.variances.items() if math.isfinite(v)
            }
        notes = ["Resumed from a checkpoint: weights kept."] if self.skipped_on_resume else []
        return RecipeSummary("Weight initialisation", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "layers": list(self.layers),
            "variances": dict(self.variances),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.applied = bool(state_dict.get("applied", False))
        self.layers = list(state_dict.get("layers", []))
        self.variances = dict(state_dict.get("variances", {}))


def _cpu_shadow(module: nn.Module) -> nn.Module | None:
    """A CPU stand-in holding copies of ``module``'s weight and bias (None if no 2-d weight)."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, Tensor) or weight.ndim < 2:
        return None
    shadow = nn.Module()
    shadow.weight = nn.Parameter(weight.detach().to("cpu", torch.float32).clone())
    bias = getattr(module, "bias", None)
    if isinstance(bias, Tensor):
        shadow.bias = nn.Parameter(bias.detach().to("cpu", torch.float32).clone())
    return shadow
