"""ActivationMonitor: per-layer activation statistics every N steps, with hooks only then."""

import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.deprecation import renamed
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.selection import (
    check_globs,
    check_selection,
    check_types,
    select_modules,
)
from lightning_recipes._core.validate import flag, is_real, positive_int
from lightning_recipes.activations.figure import activations_figure
from lightning_recipes.activations.stats import (
    ACTIVATION_TYPES,
    Kind,
    activation_stats,
    hist_range,
    kind_of,
    summarize,
)
from lightning_recipes.errors import config_error

__all__ = ["ActivationMonitor"]


def _fraction(argument: str, value: Any) -> float:
    if not is_real(value) or not 0 < value <= 1:
        raise config_error(argument, value, "Pass a fraction in (0, 1].")
    return float(value)


class ActivationMonitor(Recipe):
    """Per-layer activation mean, std, dead and saturated fractions, and histograms over time.

    fastai's ``ActivationStats`` as a callback. Every ``log_every_n_steps`` optimizer steps it
    hooks the chosen layers (by default every activation function module: ReLU, GELU,
    Tanh, Sigmoid...) for one training batch, and only that batch: forward hooks are
    registered in ``on_train_batch_start`` of a monitored step and removed at its end, so
    the steps in between run without a single hook. Per layer it records

    * ``mean`` and ``std`` of the outputs;
    * ``dead``: the fraction of ReLU units (channels) never positive on the batch;
    * ``saturated``: the fraction of sigmoid / tanh units whose every value is within
      ``saturation_eps`` (as a share of the range) of a bound;
    * a histogram of the values (``bins`` bins over the function's range, or
      ``±hist_max``),

    sends ``act/<layer>/<stat>`` to the loggers, warns once per layer when ``dead`` or
    ``saturated`` reaches its threshold, and at fit end draws fastai's "colourful
    dimension" figure (histogram over time per layer; PNG under
    ``<log dir>/figures/activations/histograms.png`` and TensorBoard).

    An observer: training is bitwise unchanged (no random numbers, no mode change, the
    hooks read detached outputs). Under DDP the sums are added over ranks at each
    monitored step (one collective), so every rank records the same numbers. One host
    read per monitored step.

    Args:
        log_every_n_steps: Monitoring period in optimizer steps; default the Trainer's
            ``log_every_n_steps`` (the name GradientMonitor, WeightPenalty and the Trainer
            use).
        types: Class names of the layers to hook.
        names: Globs on module names (None: all of ``types``).
        exclude: Globs of module names to leave out.
        bins: Histogram bins.
        hist_max: Histogram range of unbounded activations (``[0, hist_max]`` for ReLU,
            ``±hist_max`` for others).
        dead_threshold: Dead fraction that triggers the warning.
        saturated_threshold: Saturated fraction that triggers the warning.
        saturation_eps: Share of the range near a bound that counts as saturated.
        plot: Draw the figure at fit end (needs the ``plots`` extra).
        every_n_steps: Deprecated name of ``log_every_n_steps`` (goes in the next release).

    Examples:
        >>> ActivationMonitor(log_every_n_steps=10, plot=False).log_every_n_steps
        10
    """

    identity = ("every=log_every_n_steps", "types", "names", "exclude")

    def __init__(
        self,
        log_every_n_steps: int | None = None,
        types: list[str] | None = None,
        names: list[str] | None = None,
        exclude: list[str] | None = None,
        bins: int = 40,
        hist_max: float = 10.0,
        dead_threshold: float = 0.5,
        saturated_threshold: float = 0.5,
        saturation_eps: float = 0.02,
        plot: bool = True,
        every_n_steps: int | None = None,
    ) -> None:
        log_every_n_steps = renamed(
            "ActivationMonitor",
            "every_n_steps",
            "log_every_n_steps",
            every_n_steps,
            log_every_n_steps,
            None,
        )
        if log_every_n_steps is not None:
            positive_int(
                "log_every_n_steps",
                log_every_n_steps,
                "Pass a positive number of optimizer steps, or None for the Trainer's.",
            )
        self.log_every_n_steps = log_every_n_steps
        self.types = check_types("types", types) if types is not None else ACTIVATION_TYPES
        self.names = check_globs("names", names)
        self.exclude = check_globs("exclude", exclude) or ()
        self._types_given = types is not None
        self.bins = positive_int("bins", bins, "Pass a positive number of histogram bins.")
        if not is_real(hist_max) or not 0 < hist_max < math.inf:
            raise config_error("hist_max", hist_max, "Pass a positive, finite range.")
        self.hist_max = float(hist_max)
        self.dead_threshold = _fraction("dead_threshold", dead_threshold)
        self.saturated_threshold = _fraction("saturated_threshold", saturated_threshold)
        if not is_real(saturation_eps) or not 0 < saturation_eps < 0.5:
            raise config_error("saturation_eps", saturation_eps, "Pass a share in (0, 0.5).")
        self.saturation_eps = float(saturation_eps)
        self.plot = flag("plot", plot)
        self._every = 1
        self._layers: list[tuple[str, nn.Module, Kind]] = []
        self._handles: list[RemovableHandle] = []
        self._sums: dict[str, Tensor] = {}
        self._monitored_step = -1
        self.steps: list[int] = []
        self.history: list[tuple[int, dict[str, dict[str, float]]]] = []
        self.histograms: dict[str, list[list[float]]] = {}
        self.warned: dict[str, str] = {}
        self.figure_path: Path | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.plot:
            new_figure("ActivationMonitor(plot=True)")  # fail now, not after training
        trainer_every = int(getattr(trainer, "log_every_n_steps", 50))
        self._every = self.log_every_n_steps or max(trainer_every, 1)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        check_selection(
            pl_module, self.types, self.names, self.exclude, types_given=self._types_given
        )
        chosen = select_modules(pl_module, self.types, self.names, self.exclude)
        if not chosen:
            raise config_error(
                "types",
                list(self.types),
                f"No layer of {type(pl_module).__name__} matches types={list(self.types)}, "
                f"names={self.names}: name the layer classes to watch (e.g. ['ReLU']) or "
                "globs of module names.",
            )
        self._layers = [(name, module, kind_of(module)) for name, module in chosen]
        self._monitored_step = -1

    def _hook(self, name: str, kind: Kind) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            tensor = output[0] if isinstance(output, list | tuple) else output
            if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
                return
            stats = activation_stats(tensor, kind, self.bins, self.hist_max, self.saturation_eps)
            previous = self._sums.get(name)
            self._sums[name] = stats if previous is None else previous + stats

        return hook

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step % self._every != 0 or step == self._monitored_step:
            return  # not a monitored step: no hook at all
        self._monitored_step = step
        self._sums = {}
        self._handles = [
            module.register_forward_hook(self._hook(name, kind))
            for name, module, kind in self._layers
        ]

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._handles:
            return
        self._remove_hooks()
        width = 6 + self.bins
        device = pl_module.device
        empty = torch.zeros(width, dtype=torch.float64, device=device)
        stacked = torch.stack([self._sums.get(n, empty).to(device) for n, _, _ in self._layers])
        self._sums = {}
        stacked = helpers.reduce_sum(trainer, stacked)  # same numbers on every rank
        rows = stacked.tolist()  # the one host read of a monitored step
        step = self._monitored_step
        record: dict[str, dict[str, float]] = {}
        metrics: dict[str, float] = {}
        for (name, _, kind), row in zip(self._layers, rows, strict=True):
            if not row[0]:
                continue  # the layer did not run on this batch
            stats = summarize(row, kind)
            record[name] = stats
            self.histograms.setdefault(name, []).append(row[6:])
            metrics.update({f"act/{name}/{k}": v for k, v in stats.items() if v == v})
        self.steps.append(step)
        self.history.append((step, record))
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        self._warn(record, step)

    def _warn(self, record: dict[str, dict[str, float]], step: int) -> None:
        for name, stats in record.items():
            if name in self.warned:
                continue
            if stats["dead"] >= self.dead_threshold:
                self.warned[name] = "dead"
                helpers.rank_zero_warn(
                    f"ActivationMonitor: {stats['dead']:.0%} of the units of {name!r} are "
                    f"dead (never positive on the batch) at step {step}. Usual remedies: a "
                    "lower learning rate, He initialisation (WeightInit), LeakyReLU/GELU, "
                    "batch normalisation before the ReLU."
                )
            elif stats["saturated"] >= self.saturated_threshold:
                self.warned[name] = "saturated"
                helpers.rank_zero_warn(
                    f"ActivationMonitor: {stats['saturated']:.0%} of the units of {name!r} "
                    f"are saturated (stuck near a bound) at step {step}. Usual remedies: "
                    "Xavier or LSUV initialisation (WeightInit), normalised inputs, batch "
                    "normalisation, a lower learning rate."
                )

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._remove_hooks()

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._remove_hooks()
        if not self.plot or not self.steps or trainer.global_rank != 0:
            return
        ranges = {n: hist_range(k, self.hist_max) for n, _, k in self._layers}
        names = [n for n, _, _ in self._layers if self.histograms.get(n)]
        dead = {
            name: [record.get(name, {}).get("dead", math.nan) for _, record in self.history]
            for name in names
        }
        # Histograms of layers that missed a monitored step are padded with zeros.
        hists = {
            n: self.histograms[n]
            + [[0.0] * self.bins] * (len(self.steps) - len(self.histograms[n]))
            for n in names
        }
        figure = activations_figure(self.steps, hists, ranges, dead)
        self.figure_path = helpers.log_figure(trainer, figure, "activations/histograms")

    @override
    def run_summary(self) -> RecipeSummary:
        """Layers watched, monitored steps, last statistics, the alarms and the figure."""
        last = self.history[-1][1] if self.history else {}
        facts: dict[str, Any] = {
            "layers watched": [n for n, _, _ in self._layers],
            "monitored steps": len(self.steps),
            "dead layers": sorted(n for n, why in self.warned.items() if why == "dead") or "none",
            "saturated layers": sorted(n for n, why in self.warned.items() if why == "saturated")
            or "none",
            "last statistics": {
                n: {k: round(v, 4) for k, v in s.items() if v == v} for n, s in last.items()
            },
        }
        figures = {"activation histograms": self.figure_path} if self.figure_path else {}
        return RecipeSummary("Activation monitor", facts=facts, figures=figures)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": list(self.steps),
            "history": [(s, {n: dict(v) for n, v in r.items()}) for s, r in self.history],
            "histograms": {n: [list(h) for h in hs] for n, hs in self.histograms.items()},
            "warned": dict(self.warned),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = [int(s) for s in state_dict.get("steps", [])]
        self.history = [(int(s), dict(r)) for s, r in state_dict.get("history", [])]
        self.histograms = {n: list(h) for n, h in state_dict.get("histograms", {}).items()}
        self.warned = dict(state_dict.get("warned", {}))
