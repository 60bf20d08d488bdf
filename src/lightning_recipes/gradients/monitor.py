"""GradientMonitor: gradient norms, clipping, vanishing/exploding detection, NaN guard.

The callback decides *when* each unit runs and *where* its results go; the work is done by
small units, each tested on its own: `step_norms`/`grad_stats` (norms.py, the statistics),
`GradientClipper` (clipping.py), `NonFiniteGuard` (guard.py), `AnomalyTracker` and
`anomaly_warning` (anomaly.py, the alarms), `norms_figure` (figure.py) and
`parameter_groups` (groups.py). One code path for every device: no step branches on
where the gradients live.
"""

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import Tensor, nn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optional import new_figure
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.gradients.anomaly import (
    REMEDIES,
    AnomalyTracker,
    ThresholdMode,
    anomaly_warning,
)
from lightning_recipes.gradients.clipping import ClipMode, GradientClipper
from lightning_recipes.gradients.figure import norms_figure
from lightning_recipes.gradients.groups import GroupBy, check_groups, parameter_groups
from lightning_recipes.gradients.guard import NonFinite, NonFiniteGuard
from lightning_recipes.gradients.norms import GradStats, dense_grads, grad_stats, step_norms

__all__ = ["REMEDIES", "GradientMonitor", "parameter_groups"]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
      loggers and saved under ``<log dir>/figures/gradients/norms.png``; its title names
      the groups that were frozen or without gradient at some logging steps.

    Only the parameters of the optimizer that is stepping, that require a gradient and
    have one, are measured, clipped and guarded: under manual optimization with several
    optimizers (a GAN) the other network's stale gradients are left out, and the totals
    are logged per optimizer (``grad/optimizer_<i>/norm_total``...). A frozen group or one
    without a gradient this step has no norm (not a zero norm): it is never reported as
    vanishing, and is listed in `frozen_groups` / `absent_groups`.

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
        check_groups(groups)
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)):
            raise config_error(
                "norm_type", norm_type, "Pass a number p > 0, e.g. 2.0, or float('inf')."
            )
        if not (norm_type > 0 or math.isinf(norm_type)):
            raise config_error("norm_type", norm_type, "Pass p > 0, e.g. 2.0, or float('inf').")
        if log_every_n_steps is not None and (
            not _is_int(log_every_n_steps) or log_every_n_steps < 1
        ):
            raise config_error(
                "log_every_n_steps",
                log_every_n_steps,
                "Pass a positive integer number of optimizer steps, or None for the Trainer's.",
            )
        if clip is not None and clip not in ("norm", "value", "agc"):
            raise choice_error("clip", clip, ("norm", "value", "agc"))
        if max_norm is not None and not _is_number(max_norm):
            raise config_error("max_norm", max_norm, "Pass a positive number.")
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
            if value is not None and (not _is_number(value) or not 0 < value < math.inf):
                raise config_error(
                    name, value, "Pass a positive, finite bound, or None to disable."
                )
        if (
            threshold_mode == "absolute"
            and vanish_threshold is not None
            and explode_threshold is not None
            and not vanish_threshold < explode_threshold
        ):
            raise config_error(
                "vanish_threshold",
                vanish_threshold,
                f"It must be below explode_threshold={explode_threshold!r}.",
            )
        if threshold_mode not in ("absolute", "relative"):
            raise choice_error("threshold_mode", threshold_mode, ("absolute", "relative"))
        if not _is_int(patience) or patience < 1:
            raise config_error("patience", patience, "Pass an integer of 1 or more logging steps.")
        if on_anomaly not in ("warn", "stop"):
            raise choice_error("on_anomaly", on_anomaly, ("warn", "stop"))
        if non_finite not in ("skip", "stop", "raise", "warn"):
            raise choice_error("non_finite", non_finite, ("skip", "stop", "raise", "warn"))
        if not isinstance(plot, bool):
            raise config_error("plot", plot, "Pass True or False.")
        self.groups = groups
        self.norm_type = float(norm_type)
        self.log_every_n_steps = log_every_n_steps
        self.clip = clip
        self.max_norm = max_norm
        self.on_anomaly = on_anomaly
        self.plot = plot
        self.tracker = AnomalyTracker(vanish_threshold, explode_threshold, threshold_mode, patience)
        self.guard = NonFiniteGuard(non_finite)
        self.clipper = (
            GradientClipper(clip, max_norm) if clip is not None and max_norm is not None else None
        )
        # Set up in `setup`.
        self._every = 1
        self._names: list[str] = []
        self._params: list[nn.Parameter] = []
        self._group_names: list[str] = []
        self._group_of: list[int] = []
        self._index_cache: dict[tuple[int, ...], tuple[Tensor, Tensor]] = {}
        self._process_group: Any = None
        # Steps the hook worked on (host int); the units count on the device what the
        # host does not know (clipped and skipped steps, the first non-finite gradient).
        self.steps = 0
        self._restored_clipped = 0  # without a clipper: the count a checkpoint held
        self.history: list[tuple[int, dict[str, float]]] = []
        # Groups without any gradient (frozen, or unused) at a logging step: {group: count}.
        self.absent_groups: dict[str, int] = {}
        self.frozen_groups: set[str] = set()
        self.figure_path: Path | None = None
        # Positions in `_params` of each optimizer's parameters (host side, no kernels).
        self._position: dict[int, int] = {}
        self._optimizer_cache: dict[int, tuple[tuple[int, ...], list[int]]] = {}
        # Logging: the last logging period each optimizer was logged in (see `_log_now`).
        self._logged_period: dict[int, int] = {}
        self._start_period = -1
        self._n_optimizers = 1

    @property
    def non_finite(self) -> NonFinite | None:
        """The non-finite guard's mode (None when off, e.g. under fp16 mixed precision)."""
        return self.guard.mode

    @non_finite.setter
    def non_finite(self, mode: NonFinite | None) -> None:
        self.guard.mode = mode

    @property
    def first_bad(self) -> tuple[int, str] | None:
        """``(global step, parameter name)`` of the first non-finite gradient seen, or None."""
        return self.guard.first_bad

    @first_bad.setter
    def first_bad(self, value: tuple[int, str] | None) -> None:
        self.guard.first_bad = value

    @property
    def nonfinite_reported(self) -> bool:
        """Whether the non-finite gradient warning was given (it is given once)."""
        return self.guard.reported

    @nonfinite_reported.setter
    def nonfinite_reported(self, value: bool) -> None:
        self.guard.reported = value

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints: one per configuration.

        Built from every argument that changes what is recorded, so two monitors in one
        Trainer (e.g. one per grouping, or two logging periods) keep separate states.
        """
        return self._generate_state_key(
            groups=str(self.groups),
            clip=self.clip,
            max_norm=self.max_norm,
            p=self.norm_type,
            every=self.log_every_n_steps,
            vanish=self.tracker.vanish,
            explode=self.tracker.explode,
            mode=self.tracker.mode,
            patience=self.tracker.patience,
        )

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
        self._position = {id(p): i for i, p in enumerate(self._params)}
        self._optimizer_cache = {}
        self._group_names, self._group_of = parameter_groups(named, self.groups)
        self._index_cache = {}
        self._n_optimizers = max(len(trainer.optimizers), 1)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # The global step is restored from a checkpoint by now: the period it is in was
        # logged before the interruption unless the step opens it.
        self._logged_period = {}
        self._start_period = (trainer.global_step - 1) // self._every

    def _log_now(self, trainer: Trainer, optimizer_index: int) -> bool:
        """Whether this optimizer step is a logging step, for this optimizer.

        One optimizer: every ``log_every_n_steps``-th global step. Several (manual
        optimization, e.g. a GAN's generator and discriminator steps, each counting as a
        global step): each optimizer logs at its first step in every period, so that every
        network is logged whatever the period and the number of optimizers.
        """
        period = trainer.global_step // self._every
        if period <= self._logged_period.get(optimizer_index, self._start_period):
            return False
        self._logged_period[optimizer_index] = period
        return True

    def _optimizer_positions(self, optimizer: Optimizer) -> list[int]:
        """Positions (in `_params`) of the parameters this optimizer steps, cached."""
        groups = optimizer.param_groups
        layout = tuple(len(group["params"]) for group in groups)
        cached = self._optimizer_cache.get(id(optimizer))
        if cached is None or cached[0] != layout:
            positions = sorted(
                {
                    self._position[id(p)]
                    for group in groups
                    for p in group["params"]
                    if id(p) in self._position
                }
            )
            cached = (layout, positions)
            self._optimizer_cache[id(optimizer)] = cached
        return cached[1]

    def _optimizer_index(self, trainer: Trainer, optimizer: Optimizer) -> int:
        inner = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer's torch one
        for index, candidate in enumerate(trainer.optimizers):
            if candidate is inner or candidate is optimizer:
                return index
        return 0

    def _indices(self, positions: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
        """Group index and parameter index of each present gradient, cached per layout."""
        key = tuple(positions)
        cached = self._index_cache.get(key)
        if cached is None or cached[0].device != device:
            group = torch.tensor([self._group_of[i] for i in positions], device=device)
            cached = (group, torch.tensor(positions, device=device))
            self._index_cache[key] = cached
        return cached

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        self.steps += 1  # every optimizer step, also those with nothing to log or check
        optimizer_index = self._optimizer_index(trainer, optimizer)
        log_now = self._log_now(trainer, optimizer_index)
        if not (log_now or self.clipper is not None or self.guard.active):
            return  # nothing to do on this step: not a single kernel
        # Only this optimizer's parameters: under manual optimization with several
        # optimizers (a GAN), the other network's gradients are stale here. Frozen
        # parameters (requires_grad=False) may hold a stale gradient too: left out.
        positions = [
            i
            for i in self._optimizer_positions(optimizer)
            if self._params[i].requires_grad and self._params[i].grad is not None
        ]
        params = [self._params[i] for i in positions]
        grads, _ = dense_grads(params)
        if not grads:
            return
        group_index, param_index = self._indices(positions, grads[0].device)
        norms = step_norms(grads, self.norm_type, self._process_group)
        self.guard.check_(grads, norms, param_index, trainer.global_step, self._names)
        # Statistics before clipping: the logged norms are what the model produced.
        stats = (
            grad_stats(
                grads,
                self.norm_type,
                group_index,
                len(self._group_names),
                self._process_group,
                norms=norms,
            )
            if log_now
            else None
        )
        if self.clipper is not None:
            self.clipper(params, grads, norms)
        if stats is not None:
            self._publish(trainer, stats, optimizer, optimizer_index, positions)

    @property
    def clipped_steps(self) -> int:
        """Steps whose gradients were clipped so far (reading it syncs with the device)."""
        return self.clipper.clipped_steps if self.clipper is not None else self._restored_clipped

    @property
    def skipped_steps(self) -> int:
        """Steps whose non-finite gradients were zeroed so far (syncs with the device)."""
        return self.guard.skipped_steps

    def _publish(
        self,
        trainer: Trainer,
        stats: GradStats,
        optimizer: Optimizer,
        optimizer_index: int,
        positions: list[int],
    ) -> None:
        """Read statistics and counters back in one host transfer; log, record, report.

        Only the groups with a gradient at this step are logged, recorded and checked for
        vanishing: a frozen group (every parameter ``requires_grad=False``) or one without
        any gradient this step (unused, or stepped by another optimizer) has no norm, not
        a zero norm.
        """
        n_groups = len(self._group_names)
        device = stats.total.device
        clipped = (
            self.clipper.count(device)
            if self.clipper is not None
            else torch.zeros((), dtype=torch.long, device=device)
        )
        parts = [
            stats.groups,
            stats.total[None],
            stats.max_abs[None],
            stats.zero_fraction[None],
            clipped[None],
            self.guard.state(device),
        ]
        values = torch.cat([part.double() for part in parts]).tolist()  # the one host sync
        present = {self._group_of[i] for i in positions}
        group_values = {
            name: value
            for g, (name, value) in enumerate(
                zip(self._group_names, values[:n_groups], strict=True)
            )
            if g in present
        }
        self._note_absent_groups(optimizer, present)
        total_value, max_value, zero_value, clipped_value = values[n_groups : n_groups + 4]
        guard_values = values[n_groups + 4 :]
        self.guard.read(guard_values, self._names)
        skipped = guard_values[0]
        several = self._n_optimizers > 1
        prefix = f"grad/optimizer_{optimizer_index}/" if several else "grad/"
        metrics = {
            f"{prefix}norm_total": total_value,
            f"{prefix}max_abs": max_value,
            f"{prefix}zero_fraction": zero_value,
        }
        if len(self._group_names) > 1:
            metrics.update({f"grad/norm/{g}": v for g, v in group_values.items()})
        if self.clipper is not None:
            metrics["grad/clip_fraction"] = clipped_value / max(self.steps, 1)
        if self.guard.zeroes:
            metrics["grad/skipped_steps"] = skipped
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        total_key = f"total/optimizer_{optimizer_index}" if several else "total"
        self.history.append((trainer.global_step, {total_key: total_value, **group_values}))
        self._report(trainer, group_values, int(skipped))

    def _note_absent_groups(self, optimizer: Optimizer, present: set[int]) -> None:
        """Record this optimizer's groups that had no gradient, and the frozen groups."""
        trainable = [False] * len(self._group_names)
        for param, group in zip(self._params, self._group_of, strict=True):
            trainable[group] = trainable[group] or param.requires_grad
        self.frozen_groups.update(
            name for g, name in enumerate(self._group_names) if not trainable[g]
        )
        owned = {self._group_of[i] for i in self._optimizer_positions(optimizer)}
        for g in sorted(owned - present):
            if not trainable[g]:
                continue  # frozen, recorded above
            name = self._group_names[g]
            self.absent_groups[name] = self.absent_groups.get(name, 0) + 1

    def _report(self, trainer: Trainer, group_values: dict[str, float], skipped: int) -> None:
        message = self.guard.message(skipped)
        if message is not None:
            helpers.rank_zero_warn(message)
            if self.guard.mode == "stop":
                trainer.should_stop = True
        anomalies = self.tracker.update(group_values)
        if anomalies:
            stopping = self.on_anomaly == "stop"
            helpers.rank_zero_warn(anomaly_warning(anomalies, trainer.global_step, stopping))
            if stopping:
                trainer.should_stop = True

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.plot or not self.history or trainer.global_rank != 0:
            return
        figure = norms_figure(
            self.history,
            self._group_names,
            self.frozen_groups,
            self.absent_groups,
            self.norm_type,
        )
        self.figure_path = helpers.log_figure(trainer, figure, "gradients/norms")

    def run_summary(self) -> RecipeSummary:
        """Steps monitored, clipped and skipped, the alarms raised, the figure."""
        facts: dict[str, Any] = {
            "optimizer steps seen": self.steps,
            "logged steps": len(self.history),
            "clip": self.clip,
            "clipped steps": self.clipped_steps,
            "skipped (non-finite) steps": self.skipped_steps,
            "alarms": sorted(self.tracker.reported) or "none",
            "frozen groups (not judged)": sorted(self.frozen_groups) or "none",
        }
        notes = []
        if self.first_bad is not None:
            notes.append(f"First non-finite gradient: {self.first_bad}.")
        figures = {"gradient norms per group": self.figure_path} if self.figure_path else {}
        return RecipeSummary("Gradient monitor", facts=facts, figures=figures, notes=notes)

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
            "absent_groups": dict(self.absent_groups),
            "frozen_groups": sorted(self.frozen_groups),
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = int(state_dict["steps"])
        self._restored_clipped = int(state_dict["clipped_steps"])
        if self.clipper is not None:
            self.clipper.load(self._restored_clipped)
        bad = state_dict["first_bad"]
        self.guard.load(
            int(state_dict["skipped_steps"]),
            (int(bad[0]), str(bad[1])) if bad else None,
            bool(state_dict["nonfinite_reported"]),
        )
        self.tracker.load_state_dict(state_dict["tracker"])
        self.history = [(int(s), dict(v)) for s, v in state_dict["history"]]
        self.absent_groups = dict(state_dict.get("absent_groups", {}))
        self.frozen_groups = set(state_dict.get("frozen_groups", ()))
