"""GradientMonitor overhead: step time against no monitoring and Lightning's grad_norm recipe.

A 48-layer MLP (width 256, Linear without bias -> LayerNorm -> ReLU, 146 parameter tensors),
batch 64, Adam, CPU, 2 threads, random data. Every configuration trains the same freshly
seeded model with a CSVLogger in a temporary folder, so logging really happens.

The configurations are interleaved and repeated over several rounds, their order rotated
each round. Step time is the interval between consecutive ``on_train_batch_start`` calls:
the whole step, including what Lightning does after ``on_train_batch_end`` (sending
``self.log`` metrics to the logger), which a start/end pair would miss. Each fit times one
whole 50-step logging period; for each step position the median over rounds is taken
(robust to bursts of machine noise), then the mean over positions (so a monitor that
logs every 50 steps pays for its logging step at its true weight).

Because the step time of this shared machine drifts by up to ~25% within seconds, the
time spent in the monitoring code is also measured directly, in the same fits: inside
the hook (two callbacks placed just before and just after GradientMonitor; a timer in the
recipe's hook), plus the extra time after ``on_train_batch_end`` where Lightning logs
``self.log`` values. The targets are judged on this steadier figure; the notes of the
results give both.

(Running the configurations in lockstep, one step each in turn from separate threads,
was tried and rejected: the interleaved fits evict each other's weights from the cache
and their OpenMP thread teams compete, which made every step ~50% slower.)
"""

import argparse
import itertools
import logging
import statistics
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import publish, quiet_trainer

from lightning_recipes import GradientMonitor

THREADS = 2
DEPTH, WIDTH, FEATURES, CLASSES, BATCH = 48, 256, 256, 10, 64
WARMUP = 10  # steps left out at the start of each fit
WINDOW = 50  # steps timed per fit: one whole period of the Trainer's log_every_n_steps=50
ROUNDS = 5

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


def deep_mlp() -> nn.Sequential:
    layers: list[nn.Module] = []
    width = FEATURES
    for _ in range(DEPTH):
        layers += [nn.Linear(width, WIDTH, bias=False), nn.LayerNorm(WIDTH), nn.ReLU()]
        width = WIDTH
    layers.append(nn.Linear(width, CLASSES))
    return nn.Sequential(*layers)


class Net(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = deep_mlp()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-4)


class LightningRecipeNet(Net):
    """Lightning's documented recipe: log every parameter's gradient norm at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.hook_durations: list[float] = []

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        started = time.perf_counter()
        self.log_dict(grad_norm(self, norm_type=2))
        self.hook_durations.append(time.perf_counter() - started)


class StepTimer(Callback):
    """Records time.perf_counter() at every on_train_batch_start and on_train_batch_end."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_train_batch_start(self, *args: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, *args: Any) -> None:
        self.ends.append(time.perf_counter())

    def step_times(self) -> list[float]:
        """Whole steps: from one on_train_batch_start to the next."""
        starts = self.starts[WARMUP : WARMUP + WINDOW + 1]
        return [b - a for a, b in itertools.pairwise(starts)]

    def after_batch_times(self) -> list[float]:
        """What follows on_train_batch_end (Lightning's logging, the next batch's fetch)."""
        ends = self.ends[WARMUP : WARMUP + WINDOW]
        return [b - a for a, b in zip(ends, self.starts[WARMUP + 1 :], strict=False)]


class HookTimer(Callback):
    """Placed just before and just after GradientMonitor: times its on_before_optimizer_step."""

    def __init__(self, opening: "HookTimer | None" = None) -> None:
        self.opening = opening
        self.started = 0.0
        self.durations: list[float] = []

    def on_before_optimizer_step(self, *args: Any) -> None:
        if self.opening is None:
            self.started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self.opening.started)

    def hook_times(self) -> list[float]:
        return self.durations[WARMUP : WARMUP + WINDOW]


def timed(monitor: Callable[[], Callback]) -> Callable[[], list[Callback]]:
    """GradientMonitor between two HookTimers (the Trainer calls callbacks in list order)."""

    def callbacks() -> list[Callback]:
        opening = HookTimer()
        return [opening, monitor(), HookTimer(opening)]

    return callbacks


Config = tuple[str, Callable[[], LightningModule], Callable[[], list[Callback]], int]

# The non-finite guard: "warn" does nothing between logging steps, "skip" checks every step.
# One row for the default, whatever it is, and one for the other of the two.
DEFAULT_GUARD = GradientMonitor().non_finite
OTHER_GUARD = "skip" if DEFAULT_GUARD == "warn" else "warn"

CONFIGS: list[Config] = [
    ("no monitoring", Net, list, 50),
    # log_every_n_steps=1: the recipe's norms reach the logger at every step, like row 3.
    ("Lightning grad_norm recipe, every step", LightningRecipeNet, list, 1),
    (
        "GradientMonitor(groups='layer', log_every_n_steps=1)",
        Net,
        timed(lambda: GradientMonitor(groups="layer", log_every_n_steps=1)),
        1,
    ),
    (f"GradientMonitor() (default: non_finite={DEFAULT_GUARD!r})", Net, timed(GradientMonitor), 50),
    (
        f"GradientMonitor(non_finite={OTHER_GUARD!r})",
        Net,
        timed(lambda: GradientMonitor(non_finite=OTHER_GUARD)),
        50,
    ),
    (
        "GradientMonitor(clip='norm', max_norm=1.0)",
        Net,
        timed(lambda: GradientMonitor(clip="norm", max_norm=1.0)),
        50,
    ),
]


def make_data() -> DataLoader[tuple[Tensor, ...]]:
    generator = torch.Generator().manual_seed(0)
    n = BATCH * (WARMUP + WINDOW + 1)
    x = torch.randn(n, FEATURES, generator=generator)
    y = torch.randint(0, CLASSES, (n,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)


def fit_once(
    config: Config, loader: DataLoader[tuple[Tensor, ...]], root: str
) -> dict[str, list[float]]:
    """One fit; its timed step durations, hook durations and after-batch durations."""
    name, module_fn, callbacks_fn, trainer_every = config
    seed_everything(0, verbose=False)
    model = module_fn()
    timer = StepTimer()
    callbacks = callbacks_fn()
    trainer: Trainer = quiet_trainer(
        max_epochs=1,
        limit_val_batches=0,
        logger=CSVLogger(root, name="run"),
        log_every_n_steps=trainer_every,
        callbacks=[timer, *callbacks],
    )
    trainer.fit(model, train_dataloaders=loader)
    closing = [c for c in callbacks if isinstance(c, HookTimer) and c.opening is not None]
    if closing:
        hook = closing[0].hook_times()
    elif isinstance(model, LightningRecipeNet):
        hook = model.hook_durations[WARMUP : WARMUP + WINDOW]
    else:
        hook = [0.0] * WINDOW
    result = {"step": timer.step_times(), "hook": hook, "after": timer.after_batch_times()}
    assert all(len(v) == WINDOW for v in result.values()), (name, result)
    return result


def step_time(times: list[list[float]]) -> float:
    """Mean over step positions of the median over rounds of that step's time.

    Step k of every fit does the same work (the same logging steps), so the median over
    rounds discards a round that a burst of machine noise hit at that step, and the mean
    over positions keeps the logging steps at their true weight.
    """
    return statistics.fmean(statistics.median(column) for column in zip(*times, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    loader = make_data()
    model = deep_mlp()
    n_tensors = len(list(model.parameters()))
    n_params = sum(p.numel() for p in model.parameters())

    times: dict[str, list[list[float]]] = {c[0]: [] for c in CONFIGS}
    hooks: dict[str, list[float]] = {c[0]: [] for c in CONFIGS}
    afters: dict[str, list[float]] = {c[0]: [] for c in CONFIGS}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        fit_once(CONFIGS[0], loader, root)  # warm-up: imports, allocator, thread pool
        for round_index in range(args.rounds):
            # Rotate the order each round so no configuration always runs first or last.
            shift = round_index % len(CONFIGS)
            for config in CONFIGS[shift:] + CONFIGS[:shift]:
                result = fit_once(config, loader, root)
                times[config[0]].append(result["step"])
                hooks[config[0]].append(statistics.fmean(result["hook"]))
                afters[config[0]].append(statistics.fmean(result["after"]))
    seconds = time.perf_counter() - start

    none_name, recipe_name, per_step_name, default_name, other_name = (c[0] for c in CONFIGS[:5])
    warn_name = default_name if DEFAULT_GUARD == "warn" else other_name
    step = {name: step_time(t) for name, t in times.items()}
    base = step[none_name]
    # Direct cost: time inside the monitoring hook, plus any extra time after
    # on_train_batch_end (where Lightning sends `self.log` values to the logger).
    after_base = statistics.median(afters[none_name])
    cost = {
        name: statistics.median(hooks[name]) + statistics.median(afters[name]) - after_base
        for name in step
    }
    rows = [
        [
            name,
            f"{1000 * step[name]:.2f}",
            f"{step[name] / base:.3f}x",
            f"{1000 * cost[name]:.2f}",
            f"{(base + cost[name]) / base:.3f}x",
        ]
        for name in step
    ]

    def ratios(ms: dict[str, float]) -> tuple[float, float]:
        return ms[default_name] / ms[none_name], ms[recipe_name] / ms[per_step_name]

    direct_default, direct_speedup = ratios({name: base + cost[name] for name in step})
    e2e_default, e2e_speedup = ratios(step)
    noise = step[warn_name] / base - 1.0
    verdict = {True: "**met**", False: "**not met**"}
    notes = f"""
Model: {DEPTH} blocks of Linear({WIDTH}, {WIDTH}, bias=False) -> LayerNorm -> ReLU and a
Linear({WIDTH}, {CLASSES}) head: {n_tensors} parameter tensors, {n_params:,} parameters
(`groups='layer'` gives {2 * DEPTH + 1} groups). Batch {BATCH} of random {FEATURES}-dim
inputs, {CLASSES} classes, Adam, CPU with `torch.set_num_threads({args.threads})`. Every
fit uses a CSVLogger in a temporary folder, `enable_progress_bar=False`,
`enable_checkpointing=False`, `limit_val_batches=0`; nothing is logged besides the
gradient statistics.

Rows: Lightning's documented recipe is `self.log_dict(grad_norm(self, norm_type=2))` in
the LightningModule's `on_before_optimizer_step`, run with `Trainer(log_every_n_steps=1)`
so that its {n_tensors + 1} norms reach the logger at every step, as GradientMonitor's do
with `log_every_n_steps=1`. The other rows use the Trainer's default
`log_every_n_steps=50`. `GradientMonitor()` defaults to `non_finite={DEFAULT_GUARD!r}`.
`non_finite='warn'` does no work at all between logging steps (statistics are computed and
read back on logging steps only); `non_finite='skip'` checks every step (one fused norm
pass) and zeroes the gradients of a non-finite step. `clip='norm'` clips at every step (the
norm pass plus one fused multiply).

End to end ("ms/step", "vs none"): a step is the interval between consecutive
`on_train_batch_start` calls, which includes what Lightning does after
`on_train_batch_end` (where `self.log` values reach the logger). Each fit runs
{WARMUP + WINDOW + 1} steps and times steps {WARMUP} to {WARMUP + WINDOW - 1}: one whole
50-step logging period, logging step included. The configurations are interleaved, their
order rotated each round, over {args.rounds} rounds; for each step position the median
over rounds is taken, then the mean over positions (so a logging step keeps its true
weight). This machine's speed drifts by up to ~25% within seconds, so differences of a
few percent between these figures are noise: the `non_finite='warn'` row, which does
nothing between logging steps, reads {100 * noise:+.1f}% against the unmonitored one.

Direct ("monitoring ms/step", "vs none, direct"): the time spent in the monitoring code
itself, measured in the same fits: inside GradientMonitor's `on_before_optimizer_step`
(timed by two callbacks placed just before and after it; all of its work, logging
included), or inside the recipe's `on_before_optimizer_step`; plus the extra time, over
the unmonitored fit, between `on_train_batch_end` and the next step (where Lightning
logs the recipe's values). Mean over the timed steps, median over rounds. "vs none,
direct" is (unmonitored step + that time) / unmonitored step. A small duration measured
directly drifts with the machine by the same ~25% of itself, not of the whole step, so
this is the figure the targets are judged on. Whole run: {seconds:.0f} s.

Targets: default GradientMonitor <= 1.05x the unmonitored step: {direct_default:.3f}x
direct ({e2e_default:.3f}x end to end), {verdict[direct_default <= 1.05]}. Per-step
GradientMonitor at least 2x faster than Lightning's recipe: {direct_speedup:.2f}x direct
({e2e_speedup:.2f}x end to end), {verdict[direct_speedup >= 2.0]}.
"""
    publish(
        "gradient_monitor",
        "GradientMonitor overhead on a 48-layer MLP (CPU)",
        ["configuration", "ms/step", "vs none", "monitoring ms/step", "vs none, direct"],
        rows,
        # Rewrap: the figures substituted above leave ragged lines.
        "\n\n".join(textwrap.fill(" ".join(p.split()), 92) for p in notes.strip().split("\n\n")),
    )


if __name__ == "__main__":
    main()
