"""GradientMonitor: gradient norms, clipping, vanishing/exploding detection, NaN guard.

The callback decides *when* each unit runs and *where* its results go; the work is done by
small units, each tested on its own: `step_norms`/`grad_stats` (norms.py, the statistics),
`GradientClipper` (clipping.py), `NonFiniteGuard` (guard.py), `AnomalyTracker` and
`anomaly_warning` (anomaly.py, the alarms), `norms_figure` (figure.py),
`parameter_groups` (groups.py), `ParameterLayout` (layout.py, which parameter is in which
group and optimizer), `LogSchedule`/`read_back`/`step_metrics` (step_log.py, the logging
steps) and `check_monitor_args` (monitor_args.py). One code path for every device: no step
branches on where the gradients live.
"""

from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from lightning.pytorch import LightningModule, Trainer
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes.errors import config_error
from lightning_recipes.gradients.anomaly import AnomalyTracker, ThresholdMode, anomaly_warning
from lightning_recipes.gradients.clipping import ClipMode, GradientClipper
from lightning_recipes.gradients.figure import norms_figure
from lightning_recipes.gradients.groups import GroupBy
from lightning_recipes.gradients.guard import NonFinite, NonFiniteGuard
from lightning_recipes.gradients.layout import ParameterLayout
from lightning_recipes.gradients.layout import optimizer_index as optimizer_index_of
from lightning_recipes.gradients.monitor_args import check_monitor_args
from lightning_recipes.gradients.norms import GradStats, dense_grads, grad_stats, step_norms
from lightning_recipes.gradients.step_log import LogSchedule, read_back, step_metrics

__all__ = ["GradientMonitor"]


class GradientMonitor(Recipe):
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

    # Every argument that changes what is recorded: two monitors in one Trainer (e.g. one
    # per grouping, or two logging periods) keep separate states.
    identity = (
        "groups=_groups_key",
        "clip",
        "max_norm",
        "p=norm_type",
        "every=log_every_n_steps",
        "vanish=tracker.vanish",
        "explode=tracker.explode",
        "mode=tracker.mode",
        "patience=tracker.patience",
    )
    refused_strategies = frozenset({"deepspeed"})
    refusal_reason = (
        "DeepSpeed keeps gradients in its own partitioned buffers and clips them "
        "itself: use its gradient_clipping config and its own gradient norm logging."
    )

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
        check_monitor_args(
            groups=groups,
            norm_type=norm_type,
            log_every_n_steps=log_every_n_steps,
            clip=clip,
            max_norm=max_norm,
            vanish_threshold=vanish_threshold,
            explode_threshold=explode_threshold,
            threshold_mode=threshold_mode,
            patience=patience,
            on_anomaly=on_anomaly,
            non_finite=non_finite,
            plot=plot,
        )
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
        self._schedule = LogSchedule()  # its period is set in `setup`
        self._layout = ParameterLayout()  # the module's parameters, from `on_fit_start`
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
    def _groups_key(self) -> str:
        return str(self.groups)

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.check_strategy(trainer)
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
        self._schedule.every = self.log_every_n_steps or max(trainer_every, 1)

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
        self._layout = ParameterLayout(named, self.groups)
        self._n_optimizers = max(len(trainer.optimizers), 1)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._schedule.start(trainer.global_step)  # restored from a checkpoint by now

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        self.steps += 1  # every optimizer step, also those with nothing to log or check
        optimizer_index = optimizer_index_of(trainer.optimizers, optimizer)
        log_now = self._schedule.due(trainer.global_step, optimizer_index)
        if not (log_now or self.clipper is not None or self.guard.active):
            return  # nothing to do on this step: not a single kernel
        layout = self._layout
        # Only this optimizer's parameters that have a gradient (see `with_gradient`).
        positions = layout.with_gradient(optimizer)
        params = [layout.params[i] for i in positions]
        grads, _ = dense_grads(params)
        if not grads:
            return
        group_index, param_index = layout.indices(positions, grads[0].device)
        norms = step_norms(grads, self.norm_type, self._process_group)
        self.guard.check_(grads, norms, param_index, trainer.global_step, layout.names)
        # Statistics before clipping: the logged norms are what the model produced.
        stats = (
            grad_stats(
                grads,
                self.norm_type,
                group_index,
                len(layout.group_names),
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
        layout = self._layout
        device = stats.total.device
        clipped = (
            self.clipper.count(device)
            if self.clipper is not None
            else torch.zeros((), dtype=torch.long, device=device)
        )
        readout = read_back(stats, clipped, self.guard.state(device))
        present = {layout.group_of[i] for i in positions}
        group_values = {
            name: value
            for g, (name, value) in enumerate(zip(layout.group_names, readout.groups, strict=True))
            if g in present
        }
        self._note_absent_groups(optimizer, present)
        self.guard.read(readout.guard, layout.names)
        skipped = readout.guard[0]
        several = self._n_optimizers > 1
        clipping = self.clipper is not None
        metrics = step_metrics(
            readout,
            group_values,
            optimizer_index if several else None,
            per_group=len(layout.group_names) > 1,
            clip_fraction=readout.clipped / max(self.steps, 1) if clipping else None,
            skipped=self.guard.zeroes,
        )
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        total_key = f"total/optimizer_{optimizer_index}" if several else "total"
        self.history.append((trainer.global_step, {total_key: readout.total, **group_values}))
        self._report(trainer, group_values, int(skipped))

    def _note_absent_groups(self, optimizer: Optimizer, present: set[int]) -> None:
        """Record this optimizer's groups that had no gradient, and the frozen groups."""
        frozen, absent = self._layout.missing_groups(optimizer, present)
        self.frozen_groups.update(frozen)
        for name in absent:
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
            self._layout.group_names,
            self.frozen_groups,
            self.absent_groups,
            self.norm_type,
        )
        self.figure_path = helpers.log_figure(trainer, figure, "gradients/norms")

    @override
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
