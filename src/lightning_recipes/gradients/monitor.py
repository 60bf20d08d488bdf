"""GradientMonitor: gradient norms, clipping, vanishing/exploding detection, NaN guard."""

import fnmatch
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes._optional import new_figure
from lightning_recipes.errors import NonFiniteGradientError, choice_error, config_error
from lightning_recipes.gradients.anomaly import Anomaly, AnomalyTracker, ThresholdMode
from lightning_recipes.gradients.clipping import (
    adaptive_clip_,
    clip_by_norm_,
    clip_by_value_,
    zero_if_,
)
from lightning_recipes.gradients.norms import (
    combine_norms,
    dense_grads,
    tensor_norms,
    zero_fraction,
)

__all__ = ["GradientMonitor", "host_reads_are_free", "parameter_groups"]

GroupBy = Literal["module", "layer", "parameter", "none"]
ClipMode = Literal["norm", "value", "agc"]
NonFinite = Literal["skip", "stop", "raise", "warn"]

REMEDIES = {
    "vanishing": (
        "Usual remedies: ReLU/GELU instead of sigmoid/tanh in deep stacks, He init for ReLU "
        "(Xavier for tanh), normalisation layers (BatchNorm/LayerNorm), residual connections, "
        "a higher learning rate for the affected layers."
    ),
    "exploding": (
        "Usual remedies: gradient clipping (GradientMonitor(clip='norm', max_norm=1.0)), a "
        "lower learning rate or a warm-up, normalisation layers, careful init (smaller gain)."
    ),
}


def parameter_groups(
    named_parameters: Sequence[tuple[str, nn.Parameter]],
    groups: GroupBy | Mapping[str, Sequence[str]],
) -> tuple[list[str], list[int]]:
    """Assign each parameter to a named group.

    Args:
        named_parameters: ``module.named_parameters()`` as a list.
        groups: ``"module"`` (top-level child: ``backbone``, ``head``), ``"layer"`` (the
            module owning the parameter: ``backbone.0``), ``"parameter"`` (each one),
            ``"none"`` (no groups: one group ``all``), or ``{group: [glob, ...]}`` matched
            against parameter names, first match wins, unmatched ones in ``other``.

    Returns:
        ``(group_names, group_of_each_parameter)``, groups in order of first appearance.

    Examples:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> parameter_groups(list(net.named_parameters()), "layer")
        (['0', '2'], [0, 0, 1, 1])
        >>> parameter_groups(list(net.named_parameters()), {"last": ["2.*"]})
        (['other', 'last'], [0, 0, 1, 1])
    """
    names: list[str] = []
    index: dict[str, int] = {}
    assignment: list[int] = []
    for param_name, _ in named_parameters:
        if isinstance(groups, Mapping):
            group = next(
                (
                    g
                    for g, globs in groups.items()
                    if any(fnmatch.fnmatchcase(param_name, p) for p in globs)
                ),
                "other",
            )
        elif groups == "module":
            group = param_name.split(".")[0]
        elif groups == "layer":
            group = param_name.rpartition(".")[0] or param_name
        elif groups == "parameter":
            group = param_name
        else:
            group = "all"
        if group not in index:
            index[group] = len(names)
            names.append(group)
        assignment.append(index[group])
    return names, assignment


def host_reads_are_free(device: torch.device) -> bool:
    """Whether reading a value back from ``device`` costs no synchronisation.

    On the CPU every op has finished when it returns, so branching on a flag is free and
    cheaper than a device-side write pass over every gradient; on an accelerator, reading
    a flag would stall the host until the device catches up.

    Args:
        device: Where the gradients live.

    Returns:
        True for the CPU.
    """
    return device.type == "cpu"


class GradientMonitor(Callback):
    """Watch, clip and guard gradients at every optimizer step, without per-step host syncs.

    Hooked at ``on_before_optimizer_step``: gradients are complete (accumulated, synced
    across DDP ranks, unscaled under AMP) and not yet clipped by the Trainer. What it does:

    * **Norms.** Every ``log_every_n_steps`` optimizer steps it sends to the loggers
      ``grad/norm_total``, ``grad/norm/<group>`` (per module, layer or parameter),
      ``grad/max_abs``, ``grad/zero_fraction`` and, when relevant, ``grad/clip_fraction``
      and ``grad/skipped_steps``. Statistics are fused (``torch._foreach_norm``) and read
      back to the host once per logging step; non-logging steps never sync.
    * **Clipping** (``clip``): ``"norm"`` scales all gradients to a total norm of at most
      ``max_norm``, ``"value"`` clamps entries to ``[-max_norm, max_norm]``, ``"agc"`` is
      unit-wise adaptive clipping with ``max_norm`` as the clip factor (NFNets). Logged
      norms are pre-clip. Set either this or the Trainer's ``gradient_clip_val``.
    * **Vanishing/exploding** (``vanish_threshold``, ``explode_threshold``,
      ``threshold_mode``): a group out of bounds for ``patience`` logging steps triggers
      one warning naming the groups, their norms and the usual remedies, and stops
      training with ``on_anomaly="stop"``.
    * **Non-finite guard** (``non_finite``): ``"warn"`` (default, free between logging
      steps) warns at the next logging step that sees a NaN/Inf gradient, naming the
      parameter; ``"skip"`` checks every step (one fused norm pass) and zeroes the step's
      gradients when any is NaN/Inf (the NaN never reaches the weights or the optimizer
      state; stateful optimizers still apply momentum and weight decay, as for a zero
      gradient), counts it, and warns once naming the first parameter and step;
      ``"stop"`` does the same and ends the fit at the next logging step; ``"raise"``
      raises `NonFiniteGradientError` naming the parameter and step before the optimizer
      step (it reads a flag back every step: one host sync per step on a GPU).
    * **Figure** at fit end: per-group gradient norm over steps (log scale), sent to the
      loggers and saved under ``<log dir>/figures/gradients/norms.png``.

    Under DDP gradients are already averaged, so every rank computes and decides the same.
    Under FSDP the norms are reduced over the strategy's process group (shards to whole
    gradients). DeepSpeed (which owns its own gradient buffers) is refused at setup.
    Under fp16 mixed precision the non-finite guard is off: the GradScaler already skips
    overflowing steps and lowers its scale.

    Args:
        groups: How to group parameters: ``"module"``, ``"layer"``, ``"parameter"``,
            ``"none"``, or ``{group: [glob, ...]}`` on parameter names.
        norm_type: p of the norms (> 0, or ``inf``).
        log_every_n_steps: Logging period in optimizer steps; default: the Trainer's.
        clip: None, ``"norm"``, ``"value"`` or ``"agc"``.
        max_norm: Clip bound: total norm, absolute value, or AGC factor (e.g. 0.01).
        vanish_threshold: Absolute lower bound, or factor of the running median in
            relative mode; None disables.
        explode_threshold: Absolute upper bound, or factor of the running median; None
            disables.
        threshold_mode: ``"absolute"`` or ``"relative"`` (to the group's running median).
        patience: Consecutive out-of-bounds logging steps before a group is reported.
        on_anomaly: ``"warn"`` or ``"stop"``.
        non_finite: ``"skip"``, ``"stop"``, ``"raise"`` or ``"warn"``.
        plot: Draw the norms figure at fit end (needs the ``plots`` extra).

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> monitor = GradientMonitor(groups="layer", clip="norm", max_norm=1.0)
        >>> trainer = Trainer(callbacks=[monitor], logger=False, enable_progress_bar=False)
    """

    def __init__(
        self,
        groups: GroupBy | dict[str, list[str]] = "layer",
        norm_type: float = 2.0,
        log_every_n_steps: int | None = None,
        clip: ClipMode | None = None,
        max_norm: float | None = None,
        vanish_threshold: float | None = 1e-8,
        explode_threshold: float | None = None,
        threshold_mode: ThresholdMode = "absolute",
        patience: int = 3,
        on_anomaly: Literal["warn", "stop"] = "warn",
        non_finite: NonFinite = "warn",
        plot: bool = True,
    ) -> None:
        if not isinstance(groups, Mapping) and groups not in (
            "module",
            "layer",
            "parameter",
            "none",
        ):
            raise choice_error("groups", groups, ("module", "layer", "parameter", "none"))
        if not (norm_type > 0 or math.isinf(norm_type)):
            raise config_error("norm_type", norm_type, "Pass p > 0, e.g. 2.0, or float('inf').")
        if log_every_n_steps is not None and log_every_n_steps < 1:
            raise config_error("log_every_n_steps", log_every_n_steps, "Pass a positive integer.")
        if clip is not None and clip not in ("norm", "value", "agc"):
            raise choice_error("clip", clip, ("norm", "value", "agc"))
        if clip is not None and (max_norm is None or not max_norm > 0 or math.isinf(max_norm)):
            raise config_error(
                "max_norm", max_norm, f"clip={clip!r} needs a positive, finite max_norm."
            )
        if clip is None and max_norm is not None:
            raise config_error("max_norm", max_norm, "Also pass clip='norm', 'value' or 'agc'.")
        for name, value in (
            ("vanish_threshold", vanish_threshold),
            ("explode_threshold", explode_threshold),
        ):
            if value is not None and not value > 0:
                raise config_error(name, value, "Pass a positive bound, or None to disable.")
        if threshold_mode not in ("absolute", "relative"):
            raise choice_error("threshold_mode", threshold_mode, ("absolute", "relative"))
        if patience < 1:
            raise config_error("patience", patience, "Pass 1 or more logging steps.")
        if on_anomaly not in ("warn", "stop"):
            raise choice_error("on_anomaly", on_anomaly, ("warn", "stop"))
        if non_finite not in ("skip", "stop", "raise", "warn"):
            raise choice_error("non_finite", non_finite, ("skip", "stop", "raise", "warn"))
        self.groups = groups
        self.norm_type = float(norm_type)
        self.log_every_n_steps = log_every_n_steps
        self.clip = clip
        self.max_norm = max_norm
        self.on_anomaly = on_anomaly
        self.non_finite: NonFinite | None = non_finite
        self.plot = plot
        self.tracker = AnomalyTracker(vanish_threshold, explode_threshold, threshold_mode, patience)
        # Set up in `setup`.
        self._every = 1
        self._names: list[str] = []
        self._params: list[nn.Parameter] = []
        self._group_names: list[str] = []
        self._group_of: list[int] = []
        self._index_cache: dict[tuple[int, ...], tuple[Tensor, Tensor]] = {}
        self._process_group: Any = None
        # Counters: host ints for what the host knows, device tensors for what it does not.
        self.steps = 0
        # On the device: [clipped steps, skipped steps, first bad step, its parameter index].
        self._counters: Tensor | None = None
        self._restored_counts = (0, 0)  # (clipped, skipped) from a checkpoint
        self.first_bad: tuple[int, str] | None = None
        self.nonfinite_reported = False
        self.history: list[tuple[int, dict[str, float]]] = []

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints (one per configuration)."""
        return self._generate_state_key(groups=str(self.groups), clip=self.clip, p=self.norm_type)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        helpers.refuse_strategies(
            trainer,
            {"deepspeed"},
            recipe="GradientMonitor",
            reason="DeepSpeed keeps gradients in its own partitioned buffers and clips them "
            "itself: use its gradient_clipping config and its own gradient norm logging.",
        )
        if self.clip is not None and trainer.gradient_clip_val:
            raise config_error(
                "clip",
                self.clip,
                f"The Trainer also clips (gradient_clip_val={trainer.gradient_clip_val}): clip "
                "in one place, either GradientMonitor(clip=...) or the Trainer.",
            )
        if self.plot:
            new_figure("GradientMonitor(plot=True)")  # fail now, not after training
        if str(trainer.precision) in ("16-mixed", "16") and self.non_finite is not None:
            helpers.rank_zero_info(
                "GradientMonitor: fp16 mixed precision: the GradScaler skips overflowing steps "
                "and lowers its scale, so the non-finite guard is off."
            )
            self.non_finite = None
        if helpers.strategy_family(trainer) == "fsdp":
            # Shards: powers of local norms are summed over the ranks sharing the model.
            self._process_group = (
                getattr(trainer.strategy, "process_group", None) or dist.group.WORLD
            )
        # Trainer(log_every_n_steps=...) is stored as a plain attribute that the Trainer's
        # class does not declare, hence getattr.
        trainer_every = int(getattr(trainer, "log_every_n_steps", 50))
        self._every = self.log_every_n_steps or max(trainer_every, 1)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Parameters are collected here, not in `setup`: Lightning calls `configure_model`
        # (where FSDP-style modules build their layers) and wraps the model after `setup`.
        named = list(pl_module.named_parameters())
        if not named and self.clip is not None:
            raise config_error(
                "clip",
                self.clip,
                f"{type(pl_module).__name__} has no parameters at fit start, so nothing "
                "would be clipped. Build the layers in __init__ or configure_model.",
            )
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._group_names, self._group_of = parameter_groups(named, self.groups)
        self._index_cache = {}

    def _indices(self, positions: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
        """Group index and parameter index of each present gradient, cached per layout."""
        key = tuple(positions)
        cached = self._index_cache.get(key)
        if cached is None or cached[0].device != device:
            group = torch.tensor([self._group_of[i] for i in positions], device=device)
            cached = (group, torch.tensor(positions, device=device))
            self._index_cache[key] = cached
        return cached

    def _device_counters(self, device: torch.device) -> Tensor:
        if self._counters is None or self._counters.device != device:
            host = [*self._restored_counts, -1, -1]
            self._counters = torch.tensor(host, dtype=torch.long, device=device)
        return self._counters

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        log_now = trainer.global_step % self._every == 0
        if not (log_now or self.clip or self.non_finite in ("skip", "stop", "raise")):
            return  # nothing to do on this step: not a single kernel
        grads, positions = dense_grads(self._params)
        if not grads:
            return
        device = grads[0].device
        group_index, param_index = self._indices(positions, device)
        counters = self._device_counters(device)
        first_bad = counters[2:]
        per_tensor = tensor_norms(grads, self.norm_type).to(device)
        total = combine_norms(per_tensor, self.norm_type, None, 1, self._process_group)[0]
        finite = torch.isfinite(total)
        self.steps += 1
        if self.non_finite is not None:
            # index_select and torch.full, not `param_index[t]` or torch.tensor(step): those
            # read back to the host or copy from it, which would sync a GPU every step.
            first_nonfinite = torch.argmax((~torch.isfinite(per_tensor)).int()).reshape(1)
            bad_param = param_index.index_select(0, first_nonfinite)
            step = torch.full((1,), trainer.global_step, dtype=torch.long, device=device)
            now = torch.cat([step, bad_param])
            first_bad.copy_(torch.where((first_bad[0] < 0) & ~finite, now, first_bad))
            if self.non_finite == "raise" and not bool(finite):  # the one per-step sync
                self._raise_non_finite(trainer, first_bad)
            if self.non_finite in ("skip", "stop"):
                if host_reads_are_free(device):  # CPU: a branch beats a write pass
                    if not bool(finite):
                        torch._foreach_zero_(grads)
                        counters[1] += 1
                else:  # accelerator: zero on the device, never wait for it
                    zero_if_(grads, ~finite)
                    counters[1] += (~finite).long()
        stats = self._statistics(grads, per_tensor, group_index, total) if log_now else None
        if self.clip is not None:
            safe_total = torch.where(finite, total, torch.zeros_like(total))
            if self.clip == "norm":
                if host_reads_are_free(device) and not bool(safe_total > (self.max_norm or 0)):
                    was_clipped = torch.zeros((), dtype=torch.bool)  # CPU: skip the multiply
                else:
                    was_clipped = clip_by_norm_(grads, safe_total, float(self.max_norm or 0))
            elif self.clip == "value":
                max_abs = tensor_norms(grads, math.inf).to(device).max()
                was_clipped = max_abs > float(self.max_norm or 0)
                clip_by_value_(grads, float(self.max_norm or 0))
            else:
                params = [self._params[i] for i in positions]
                was_clipped = adaptive_clip_(params, grads, float(self.max_norm or 0))
            counters[0] += was_clipped.long()
        if stats is not None:
            self._publish(trainer, stats)

    @property
    def clipped_steps(self) -> int:
        """Steps whose gradients were clipped so far (reading it syncs with the device)."""
        return int(self._counters[0]) if self._counters is not None else self._restored_counts[0]

    @property
    def skipped_steps(self) -> int:
        """Steps whose non-finite gradients were zeroed so far (syncs with the device)."""
        return int(self._counters[1]) if self._counters is not None else self._restored_counts[1]

    def _raise_non_finite(self, trainer: Trainer, first_bad: Tensor) -> None:
        step, index = first_bad.tolist()
        raise NonFiniteGradientError(
            f"Non-finite gradient (NaN or Inf) in parameter {self._names[int(index)]!r} at "
            f"global step {int(step)}. Look for a log/sqrt/division of zero, an overflow in "
            "that layer, or a learning rate that diverged; GradientMonitor(non_finite='skip') "
            "skips such steps instead."
        )

    def _statistics(
        self, grads: list[Tensor], per_tensor: Tensor, group_index: Tensor, total: Tensor
    ) -> Tensor:
        """The pre-clip statistics of a logging step, as one device tensor."""
        n_groups = len(self._group_names)
        groups = combine_norms(
            per_tensor, self.norm_type, group_index, n_groups, self._process_group
        )
        max_abs = combine_norms(
            tensor_norms(grads, math.inf).to(total.device), math.inf, None, 1, self._process_group
        )
        zeros = zero_fraction(grads, self._process_group).to(total.device)
        parts = [groups, total[None], max_abs, zeros[None]]
        return torch.cat([part.double() for part in parts])

    def _publish(self, trainer: Trainer, stats: Tensor) -> None:
        """Read statistics and counters back in one host transfer; log, record, report."""
        n_groups = len(self._group_names)
        counters = self._device_counters(stats.device).double()
        values = torch.cat([stats, counters]).tolist()  # the one host sync of a logging step
        group_values = dict(zip(self._group_names, values[:n_groups], strict=True))
        total_value, max_value, zero_value, clipped, skipped, bad_step, bad_index = values[
            n_groups:
        ]
        if bad_step >= 0 and self.first_bad is None:
            self.first_bad = (int(bad_step), self._names[int(bad_index)])
        metrics = {
            "grad/norm_total": total_value,
            "grad/max_abs": max_value,
            "grad/zero_fraction": zero_value,
        }
        if len(self._group_names) > 1:
            metrics.update({f"grad/norm/{g}": v for g, v in group_values.items()})
        if self.clip is not None:
            metrics["grad/clip_fraction"] = clipped / max(self.steps, 1)
        if self.non_finite in ("skip", "stop"):
            metrics["grad/skipped_steps"] = skipped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        self.history.append((trainer.global_step, {"total": total_value, **group_values}))
        self._report(trainer, self.tracker.update(group_values), int(skipped))

    def _report(self, trainer: Trainer, anomalies: list[Anomaly], skipped: int) -> None:
        if self.first_bad is not None and not self.nonfinite_reported and self.non_finite:
            self.nonfinite_reported = True
            step, name = self.first_bad
            action = {
                "skip": "that step's gradients were zeroed (skipped)",
                "stop": "its gradients were zeroed and training stops",
                "warn": "they reached the weights",
                "raise": "",
            }[self.non_finite]
            helpers.rank_zero_warn(
                f"GradientMonitor: non-finite gradient (NaN/Inf) in parameter {name!r} at global "
                f"step {step}; {action}. {skipped} step(s) skipped so far."
            )
            if self.non_finite == "stop":
                trainer.should_stop = True
        if anomalies:
            kinds = sorted({a.kind for a in anomalies})
            lines = "\n  ".join(a.describe() for a in anomalies)
            remedies = " ".join(REMEDIES[k] for k in kinds)
            stop = " Stopping training (on_anomaly='stop')." if self.on_anomaly == "stop" else ""
            helpers.rank_zero_warn(
                f"GradientMonitor: {' and '.join(kinds)} gradients at global step "
                f"{trainer.global_step}:\n  {lines}\n{remedies}{stop}"
            )
            if self.on_anomaly == "stop":
                trainer.should_stop = True

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.plot or not self.history or trainer.global_rank != 0:
            return
        figure = new_figure("GradientMonitor(plot=True)", figsize=(8, 4.5))
        ax = figure.subplots()
        steps = [step for step, _ in self.history]
        names = self._group_names if len(self._group_names) > 1 else []
        colours = _depth_colours(len(names))
        for name, colour in zip(names, colours, strict=True):
            ax.plot(
                steps,
                [values.get(name, math.nan) for _, values in self.history],
                color=colour,
                lw=1,
                label=name,
            )
        ax.plot(
            steps,
            [values["total"] for _, values in self.history],
            color="black",
            lw=2,
            label="total",
        )
        ax.set_yscale("log")
        ax.set_xlabel("global step")
        ax.set_ylabel(f"gradient {self.norm_type:g}-norm")
        ax.set_title("Gradient norm per group (dark: first groups, light: last)")
        if len(names) <= 12:
            ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3, which="both")
        helpers.log_figure(trainer, figure, "gradients/norms")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "clipped_steps": self.clipped_steps,
            "skipped_steps": self.skipped_steps,
            "first_bad": self.first_bad,
            "nonfinite_reported": self.nonfinite_reported,
            "tracker": self.tracker.state_dict(),
            "history": [(s, dict(v)) for s, v in self.history],
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = int(state_dict["steps"])
        self._restored_counts = (int(state_dict["clipped_steps"]), int(state_dict["skipped_steps"]))
        bad = state_dict["first_bad"]
        self.first_bad = (int(bad[0]), str(bad[1])) if bad else None
        self.nonfinite_reported = bool(state_dict["nonfinite_reported"])
        self.tracker.load_state_dict(state_dict["tracker"])
        self.history = [(int(s), dict(v)) for s, v in state_dict["history"]]
        self._counters = None  # rebuilt on the device from the restored counts


def _depth_colours(n: int) -> list[Any]:
    """Colours from dark to light, so a vanishing gradient shows as a depth gradient."""
    if n == 0:
        return []
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1) * 0.9) for i in range(n)]
