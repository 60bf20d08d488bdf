"""GradientNoiseScale: the simple noise scale B_simple of McCandlish et al. 2018, measured."""

import math
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.data import extract_batch_size
from torch import Tensor
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, positive_int
from lightning_recipes.batch_size.advice import batch_size_advice, noise_scale_figure
from lightning_recipes.batch_size.measure import (
    MeasuringAllreduce,
    half_batch_gradients,
    squared_norm,
)
from lightning_recipes.batch_size.noise import NoiseScaleEMA, lr_scaling_rule, noise_estimates
from lightning_recipes.errors import choice_error, config_error

__all__ = ["GradientNoiseScale", "Method"]

Method = Literal["auto", "ddp", "accumulation", "split"]
_METHODS = ("auto", "ddp", "accumulation", "split")


class GradientNoiseScale(Recipe):
    """Measure the gradient noise scale B_simple = tr(Σ)/|G|² over training; say what it implies.

    The noise scale (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training")
    is the batch size at which the gradient's noise and signal balance: far below it a
    larger batch takes proportionally fewer steps, far above it extra examples are wasted.
    Every ``every_n_steps`` optimizer steps the squared norm of the mean gradient is taken
    at two batch sizes on the same weights; the paper's unbiased estimators (Appendix A)
    turn the pair into ``|G|²`` and ``tr(Σ)``, each smoothed (debiased EMA, ``beta`` per
    measurement) before their ratio is taken. One measurement's ``|G|²`` is noisy (the
    noisier the further the batch is below the noise scale) and can be negative: keep
    ``beta`` high (0.95 averages about 40 measurements) or measure more often. Where the
    two sizes come from (``method``):

    * ``"ddp"`` (``"auto"`` under DDP): a DDP communication hook reads every gradient bucket
      before the all-reduce (this rank's batch) and after it (all ranks' batch). No extra
      forward or backward; on other steps the hook is torch's plain all-reduce.
    * ``"accumulation"`` (``"auto"`` when ``accumulate_grad_batches > 1``): the gradient after
      the window's first micro-batch against the accumulated one. Free as well.
    * ``"split"`` (``"auto"`` otherwise): an extra forward and backward of ``training_step``
      on the first half of the measured batch (the second half's gradient follows from the
      full one). It costs about half a step per measurement (~5 % at the default period:
      measured in ``benchmarks/peers_batch_size.py``) and leaves no trace: random states,
      BatchNorm statistics, ``.grad``, weights and logged metrics are as without it.

    Steps in between cost nothing: no kernel, no host sync. The estimate is read back only
    at logging steps (every ``log_every_n_steps``, the Trainer's by default), sent to the
    loggers as ``noise_scale/b_simple`` (with ``noise_scale/grad_sq`` and
    ``noise_scale/trace``) and kept in `history`. At fit end `advice` says what the last
    estimate implies for the batch size, with the learning-rate rule of the optimizer
    (linear for SGD, square root for Adam-like), and a figure of the estimate over steps is
    sent to the loggers and saved under the run's log dir, or at ``figure_path`` when given
    (never in the current folder unasked).

    The estimate uses the loss ``training_step`` returns (in the split pass without the edits
    of loss recipes such as MixUp). B_simple is a proxy for the critical batch: the paper
    finds it within a small factor of the batch at the knee of the steps/examples curve.

    Args:
        every_n_steps: Measure every this many optimizer steps.
        beta: EMA factor per measurement for ``|G|²`` and ``tr(Σ)`` (in [0, 1)).
        method: ``"auto"``, ``"ddp"``, ``"accumulation"`` or ``"split"`` (see above).
        log_every_n_steps: Read the estimate back and log it at most this often (optimizer
            steps); default: the Trainer's ``log_every_n_steps``.
        plot: Draw the figure at fit end (needs the ``plots`` extra).
        figure_path: Where to save the figure's PNG; None: the run's ``figures`` folder
            (nothing without a logger or ``default_root_dir``).
        verbose: Print the advice at fit end (rank zero).

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> noise = GradientNoiseScale(every_n_steps=10)
        >>> trainer = Trainer(callbacks=[noise], logger=False, enable_progress_bar=False)
    """

    identity = ("every=every_n_steps", "beta", "method")
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "the noise scale needs whole gradients before and after the all-reduce; sharded "
        "strategies reduce-scatter them. Measure it on a DDP or single-device run."
    )

    def __init__(
        self,
        every_n_steps: int = 10,
        beta: float = 0.95,
        method: Method = "auto",
        log_every_n_steps: int | None = None,
        plot: bool = True,
        figure_path: str | Path | None = None,
        verbose: bool = True,
    ) -> None:
        self.every_n_steps = positive_int("every_n_steps", every_n_steps)
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta < 1:
            raise config_error("beta", beta, "Pass an EMA factor in [0, 1), e.g. 0.95.")
        self.beta = float(beta)
        if method not in _METHODS:
            raise choice_error("method", method, _METHODS)
        self.method: Method = method
        if log_every_n_steps is not None:
            positive_int("log_every_n_steps", log_every_n_steps)
        self.log_every_n_steps = log_every_n_steps
        self.plot = flag("plot", plot)
        if figure_path is not None and not isinstance(figure_path, str | Path):
            raise config_error("figure_path", figure_path, "Pass a file path (str) or None.")
        self.figure_path = None if figure_path is None else Path(figure_path)
        self.verbose = flag("verbose", verbose)
        self.ema = NoiseScaleEMA(self.beta)
        self.history: list[tuple[int, float, float, float]] = []
        self.measurements = 0
        self.batch_size: int | None = None
        self.advice: str | None = None
        self.saved_figure: Path | None = None
        self._resolved: Method = method
        self._hook = MeasuringAllreduce()
        self._hooked: Any = None  # the DDP wrapper our hook is registered on
        self._measuring = False
        self._batch: Any = None
        self._batch_idx = 0
        self._local_size = 0
        self._window: list[int] = []  # micro-batch sizes of the current accumulation window
        self._small: Tensor | None = None  # accumulation: the first micro-batch's |g|^2
        self._last_log = -1
        self._log_every = 50
        self._rule: Literal["linear", "sqrt"] = "linear"
        self._lr: float | None = None

    # ---------------------------------------------------------------- setup

    def _resolve(self, trainer: Trainer) -> Method:
        family = helpers.strategy_family(trainer)
        accumulate = trainer.accumulate_grad_batches
        if self.method == "auto":
            if family == "ddp" and trainer.world_size > 1:
                return "ddp"
            return "accumulation" if accumulate > 1 else "split"
        if self.method == "ddp" and not (family == "ddp" and trainer.world_size > 1):
            raise config_error(
                "method", "ddp", "It needs a DDP run on 2 or more processes: use 'auto'."
            )
        if self.method == "accumulation" and accumulate < 2:
            raise config_error(
                "method",
                "accumulation",
                f"The Trainer accumulates {accumulate} batch: pass accumulate_grad_batches>=2 "
                "to the Trainer, or use 'auto' (the split pass).",
            )
        if self.method != "ddp" and family == "ddp" and trainer.world_size > 1:
            raise config_error(
                "method",
                self.method,
                "Under DDP the per-rank and averaged gradients are the two batch sizes: use "
                "'auto' or 'ddp'.",
            )
        return self.method

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.check_strategy(trainer)
        if not pl_module.automatic_optimization:
            raise config_error(
                "GradientNoiseScale",
                type(pl_module).__name__,
                "It needs automatic optimization (the Trainer runs backward and the step); "
                "with manual optimization measure it in a module that lets the Trainer step.",
            )
        self._resolved = self._resolve(trainer)
        if self._resolved == "ddp":
            configured = helpers.ddp_comm_hook_configured(trainer)
            if configured is not None:
                raise config_error(
                    "DDPStrategy(ddp_comm_hook)",
                    configured,
                    "DDP takes one communication hook and GradientNoiseScale needs its own "
                    "(a plain all-reduce that also reads the norms): drop the strategy's hook, "
                    "or leave GradientNoiseScale out of this run.",
                )
        if self.plot:
            new_figure("GradientNoiseScale(plot=True)")  # fail now, not after training
        every = self.log_every_n_steps or int(getattr(trainer, "log_every_n_steps", 50))
        self._log_every = max(every, 1)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.optimizers:
            self._rule = lr_scaling_rule(trainer.optimizers[0])
            self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.ema.g2, self.ema.trace, self.ema.weight = (
            None if t is None else t.to(pl_module.device)
            for t in (self.ema.g2, self.ema.trace, self.ema.weight)
        )
        self._register(trainer)

    def _register(self, trainer: Trainer) -> None:
        """Put the hook on the DDP wrapper (again, if a recipe rebuilt the wrapper)."""
        if self._resolved != "ddp":
            return
        wrapper = helpers.ddp_wrapper(trainer)
        if wrapper is None or wrapper is self._hooked:
            return
        self._hook.process_group = getattr(trainer.strategy, "process_group", None)
        wrapper.register_comm_hook(self._hook, MeasuringAllreduce.hook)
        self._hooked = wrapper

    # ---------------------------------------------------------------- per step

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        accumulate = trainer.accumulate_grad_batches
        if batch_idx % accumulate == 0:
            self._window = []
            self._small = None
        self._measuring = trainer.global_step % self.every_n_steps == 0
        if not self._measuring:
            return
        size = int(extract_batch_size(batch))
        self._window.append(size)
        self._local_size = size
        if self._resolved == "split":
            self._batch, self._batch_idx = batch, batch_idx
        elif self._resolved == "ddp":
            self._register(trainer)
            self._hook.measuring = True

    @override
    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._measuring or self._resolved != "accumulation" or len(self._window) != 1:
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        accumulate = trainer.accumulate_grad_batches
        # Lightning divides each micro-batch's loss by the accumulation: undo it.
        self._small = squared_norm(grads) * accumulate**2 / self._scale_sq(trainer)

    @staticmethod
    def _scale_sq(trainer: Trainer) -> Tensor | float:
        scale = helpers.loss_scale(trainer)
        return 1.0 if scale is None else scale.double() ** 2

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        if not self._measuring:
            return
        self._measuring = False
        pair = self._pair(trainer, pl_module)
        self._batch = None
        if pair is None:
            return
        small, big, b_small, b_big = pair
        g2, trace = noise_estimates(small, big, b_small, b_big)
        self.ema.update(g2, trace)
        self.measurements += 1
        # The full batch (the last batch of an epoch may be a partial one).
        self.batch_size = max(self.batch_size or 0, int(b_big))
        if self._last_log < 0 or trainer.global_step - self._last_log >= self._log_every:
            self._publish(trainer)

    def _pair(
        self, trainer: Trainer, pl_module: LightningModule
    ) -> tuple[Tensor, Tensor, float, float] | None:
        """``(|G_small|², |G_big|², b_small, b_big)`` for this step, or None (not measurable)."""
        if self._resolved == "ddp":
            self._hook.measuring = False
            taken = self._hook.take()
            if taken is None:
                return None
            before, after = taken
            scale = self._scale_sq(trainer)
            local = self._local_size * trainer.accumulate_grad_batches
            small = helpers.reduce_mean(trainer, before) / scale
            return small, after / scale, float(local), float(local * trainer.world_size)
        params = [p for p in pl_module.parameters() if p.requires_grad and p.grad is not None]
        if not params:
            return None
        big = squared_norm([p.grad for p in params if p.grad is not None])
        if self._resolved == "accumulation":
            window = self._window
            if self._small is None or len(window) != trainer.accumulate_grad_batches:
                return None  # a short window at the epoch's end: the sizes are not known
            return self._small, big, float(window[0]), float(sum(window))
        size = self._local_size
        if size < 2 or self._batch is None:
            return None
        grads = half_batch_gradients(trainer, pl_module, self._batch, self._batch_idx, size, params)
        if grads is None:
            return None
        first = [
            g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params, strict=True)
        ]
        small = squared_norm(first)
        if size % 2 == 0:  # the other half's gradient is 2 G - g1: a second sample, free
            full = [p.grad for p in params if p.grad is not None]
            second = torch._foreach_sub(torch._foreach_mul(full, 2.0), first)
            small = (small + squared_norm(second)) / 2
        return small, big, float(size // 2), float(size)

    def _publish(self, trainer: Trainer) -> None:
        """Read the estimate back (the only host sync), log it and record it."""
        g2, trace = self.ema.estimates()
        values = torch.stack([self.ema.value().double(), g2, trace]).tolist()
        b_simple, grad_sq, tr = (float(v) for v in values)
        self._last_log = trainer.global_step
        self.history.append((trainer.global_step, b_simple, grad_sq, tr))
        metrics = {
            "noise_scale/b_simple": b_simple,
            "noise_scale/grad_sq": grad_sq,
            "noise_scale/trace": tr,
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    # ---------------------------------------------------------------- fit end

    @property
    def noise_scale(self) -> float:
        """The latest smoothed B_simple (NaN before a measurement; reading it syncs)."""
        return float(self.ema.value())

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._release()
        if self.measurements == 0:
            return
        if not self.history or self.history[-1][0] != trainer.global_step:
            self._publish(trainer)
        self.advice = batch_size_advice(
            self.batch_size or 1, self.history[-1][1], self._rule, self._lr
        )
        if self.verbose:
            helpers.rank_zero_info(f"GradientNoiseScale: {self.advice}")
        if not self.plot or trainer.global_rank != 0:
            return
        figure = noise_scale_figure(self.history, self.batch_size)
        if self.figure_path is not None:
            self.figure_path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(self.figure_path, dpi=120, bbox_inches="tight")
            self.saved_figure = self.figure_path
        else:
            self.saved_figure = helpers.log_figure(trainer, figure, "noise_scale/b_simple")

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._release()

    def _release(self) -> None:
        """Drop references to the run (the wrapper, the batch) so the callback pickles."""
        self._hooked = None
        self._batch = None
        self._hook = MeasuringAllreduce()

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "ema": self.ema.state_dict(),
            "history": list(self.history),
            "measurements": self.measurements,
            "batch_size": self.batch_size,
            "last_log": self._last_log,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.ema.load_state_dict(state_dict["ema"], torch.device("cpu"))
        self.history = [tuple(row) for row in state_dict["history"]]
        self.measurements = int(state_dict["measurements"])
        self.batch_size = state_dict["batch_size"]
        self._last_log = int(state_dict["last_log"])

    @override
    def run_summary(self) -> RecipeSummary:
        """The last estimate, the batch it was measured at, the advice and the figure."""
        last = self.history[-1][1] if self.history else math.nan
        return RecipeSummary(
            "Gradient noise scale",
            facts={
                "method": self._resolved,
                "measurements": self.measurements,
                "batch size": self.batch_size,
                "noise scale (B_simple)": None if math.isnan(last) else round(last, 1),
                "lr scaling rule": self._rule,
            },
            figures={} if self.saved_figure is None else {"noise scale": self.saved_figure},
            notes=[] if self.advice is None else [self.advice],
        )
