"""The one place that touches Trainer and Strategy details.

The collectives (reduce, gather, broadcast, rank 0's buffers) live in `collectives` and
are reached from here as well (``helpers.broadcast``).

Recipes never read rank variables, call ``torch.distributed`` or poke at loggers
directly: they call these helpers, which go through public Lightning APIs
(``trainer.strategy``, ``trainer.loggers``, ``trainer.log_dir``). When a later recipe needs
something Lightning does not expose publicly, the access goes here, with a comment
saying why.
"""

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import (
    DDPStrategy,
    DeepSpeedStrategy,
    FSDPStrategy,
    ModelParallelStrategy,
    SingleDeviceStrategy,
)
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from lightning.pytorch.utilities import rank_zero_warn as _lightning_rank_zero_warn
from torch.nn.parallel import DistributedDataParallel

from lightning_recipes._core.collectives import (
    all_ranks_agree,
    broadcast,
    gather,
    match_rank_zero_buffers,
    rank_zero_buffers,
    reduce_mean,
    reduce_sum,
)
from lightning_recipes.errors import RecipeConfigError, RecipeWarning

__all__ = [
    "SHARDED",
    "StrategyFamily",
    "all_ranks_agree",
    "broadcast",
    "checkpoint_saves_every_epoch",
    "ddp_comm_hook_configured",
    "ddp_wrapper",
    "figure_dir",
    "gather",
    "is_redirected_step_call",
    "log_figure",
    "match_rank_zero_buffers",
    "missing_metric_message",
    "progress",
    "rank_zero_buffers",
    "rank_zero_info",
    "rank_zero_only",
    "rank_zero_warn",
    "reduce_mean",
    "reduce_sum",
    "refuse_sharded",
    "refuse_strategies",
    "rewrap_ddp",
    "run_dir",
    "strategy_family",
    "trainer_callbacks",
]

T = TypeVar("T")


def rank_zero_warn(message: str, *, stacklevel: int = 4) -> None:
    """Warn once on rank zero with the library's `RecipeWarning` category.

    One category for every warning a recipe raises lets users (and the composition tests)
    filter or escalate exactly ours: ``warnings.simplefilter("error", RecipeWarning)``.
    """
    _lightning_rank_zero_warn(message, category=RecipeWarning, stacklevel=stacklevel)


StrategyFamily = Literal["single", "ddp", "fsdp", "deepspeed", "model_parallel", "other"]


def strategy_family(trainer: Trainer) -> StrategyFamily:
    """Classify the Trainer's strategy into the families recipes care about.

    Args:
        trainer: The running Trainer.

    Returns:
        ``"single"`` for one device, ``"ddp"`` for DDP and its spawn/fork variants,
        ``"fsdp"``, ``"deepspeed"``, ``"model_parallel"`` or ``"other"``.
    """
    strategy = trainer.strategy
    # DeepSpeedStrategy subclasses DDPStrategy: test it first.
    if isinstance(strategy, DeepSpeedStrategy):
        return "deepspeed"
    if isinstance(strategy, FSDPStrategy):
        return "fsdp"
    if isinstance(strategy, ModelParallelStrategy):
        return "model_parallel"
    if isinstance(strategy, DDPStrategy):
        return "ddp"
    if isinstance(strategy, SingleDeviceStrategy):
        return "single"
    return "other"


def refuse_strategies(
    trainer: Trainer, refused: Collection[StrategyFamily], *, recipe: str, reason: str
) -> None:
    """Raise at ``setup`` when the Trainer runs a strategy the recipe cannot support.

    Args:
        trainer: The Trainer being set up.
        refused: The strategy families the recipe refuses.
        recipe: The recipe's name, for the message.
        reason: Why it is refused and what to do instead.

    Raises:
        RecipeConfigError: If the Trainer's strategy is one of ``refused``.
    """
    family = strategy_family(trainer)
    if family in refused:
        raise RecipeConfigError(
            f"{recipe} does not support strategy {type(trainer.strategy).__name__} "
            f"({family}): {reason}"
        )


SHARDED: frozenset[StrategyFamily] = frozenset({"fsdp", "deepspeed", "model_parallel"})
"""Strategy families that do not hold every parameter whole on every rank."""


def refuse_sharded(trainer: Trainer, *, recipe: str, reason: str) -> None:
    """`refuse_strategies` for the sharded families (FSDP, DeepSpeed, model parallel).

    Args:
        trainer: The Trainer being set up.
        recipe: The recipe's name, for the message.
        reason: Why it is refused and what to do instead.
    """
    refuse_strategies(trainer, SHARDED, recipe=recipe, reason=reason)


def missing_metric_message(monitor: str, trainer: Trainer, *, recipe: str) -> str:
    """Describe a monitored metric that was not logged, listing those that were.

    Args:
        monitor: The metric name the recipe was told to watch.
        trainer: The running Trainer.
        recipe: The recipe's name, for the message.

    Returns:
        A message naming the missing metric and every available one.
    """
    available = ", ".join(repr(name) for name in sorted(trainer.callback_metrics)) or "none"
    return (
        f"{recipe} monitors {monitor!r}, but no metric of that name was logged. "
        f"Logged metrics: {available}. Log it with self.log({monitor!r}, ...) in your "
        f"LightningModule or pass monitor= one of the logged names."
    )


def run_dir(trainer: Trainer) -> Path | None:
    """The folder where this run's files belong, or None when the user named none.

    The rule that every recipe's files follow (figures, reports, attributions):

    - with a logger, the first logger's log dir (e.g. ``lightning_logs/version_3``) when
      it has one, its ``save_dir`` otherwise: the same folder as ``trainer.log_dir``;
    - without a logger, the Trainer's ``default_root_dir`` when the user set it;
    - without a logger and without ``default_root_dir`` (Lightning then falls back to
      the current folder), None: nothing is written, so the current folder is never
      littered unasked. Pass ``default_root_dir`` (or a logger) to keep the files.

    A ``default_root_dir`` equal to the current folder counts as unset, since Lightning
    gives no way to tell the two apart. Unlike ``trainer.log_dir``, this makes no
    collective call (``trainer.log_dir`` broadcasts from rank 0, so calling it from
    rank-zero-only code deadlocks a DDP run); it is safe anywhere, and only rank zero
    should write there.

    Args:
        trainer: The Trainer.

    Returns:
        The folder (not necessarily created yet), or None when nothing should be written.
    """
    if trainer.loggers:
        logger = trainer.loggers[0]
        folder = getattr(logger, "log_dir", None) or logger.save_dir
        if folder is not None:
            return Path(folder)
    root = trainer.default_root_dir
    if "://" not in root and Path(root).resolve() == Path.cwd().resolve():
        return None  # Lightning's default: the current folder, which nobody asked for
    return Path(root)


def checkpoint_saves_every_epoch(checkpoint: Any) -> bool:
    """Whether a ModelCheckpoint considers saving at every validation / epoch end.

    ModelCheckpoint exposes its schedule only through private attributes (there is no
    public getter for ``every_n_epochs``, ``every_n_train_steps`` or
    ``train_time_interval``), so they are read here, with defaults that fail safe.

    Args:
        checkpoint: A ``ModelCheckpoint``.

    Returns:
        True if it is scheduled by epoch, every epoch, and not by steps or time.
    """
    every_n_epochs = getattr(checkpoint, "_every_n_epochs", None)
    every_n_steps = getattr(checkpoint, "_every_n_train_steps", None)
    interval = getattr(checkpoint, "_train_time_interval", "unknown")
    return every_n_epochs == 1 and every_n_steps == 0 and interval is None


def rewrap_ddp(trainer: Trainer) -> bool:
    """Rebuild the DistributedDataParallel wrapper, so it registers the current trainable set.

    DDP registers the parameters that require grad when it is built; a parameter unfrozen
    later is never all-reduced and ranks silently diverge (Lightning #20340). Lightning
    has no public "rebuild" call, but ``DDPStrategy.configure_ddp()`` is public: it wraps
    ``strategy.model`` when that is the bare LightningModule, so the wrapper is dropped
    first. Building DDP broadcasts rank 0's parameters and buffers (identical already).
    Every rank must call this at the same point.

    Args:
        trainer: The running Trainer.

    Returns:
        True if a DDP wrapper was rebuilt, False for other strategies (nothing to do).
    """
    strategy = trainer.strategy
    if strategy_family(trainer) != "ddp" or not isinstance(strategy, DDPStrategy):
        return False
    strategy.model = strategy.lightning_module
    strategy.configure_ddp()
    return True


def figure_dir(trainer: Trainer) -> Path | None:
    """The folder where recipes save their PNG figures: ``<run dir>/figures``.

    Args:
        trainer: The Trainer.

    Returns:
        The folder (not necessarily created yet), or None when `run_dir` is None (no
        logger and no ``default_root_dir``: figures are not saved).
    """
    folder = run_dir(trainer)
    return None if folder is None else folder / "figures"


def log_figure(trainer: Trainer, figure: Any, name: str, step: int | None = None) -> Path | None:
    """Send a matplotlib figure to the Trainer's loggers and save it as PNG.

    Runs on global rank zero only; other ranks return ``None`` immediately, and no
    collective call is made, so it may be called from rank-zero-only code. The PNG goes
    to ``<run dir>/figures/<name>.png`` (with ``_step<step>`` appended when a step is
    given, so a figure drawn at several epochs keeps every version). Every
    ``TensorBoardLogger`` also receives it via ``add_figure``. Without a logger and
    without ``default_root_dir`` there is no run dir (see `run_dir`): the PNG is not
    saved and ``None`` is returned, rather than writing into the current folder.

    Args:
        trainer: The Trainer whose loggers receive the figure.
        figure: A ``matplotlib.figure.Figure``.
        name: A name made of letters, digits, ``_``, ``-`` and ``/`` (subfolders).
        step: The global step to attach to the figure, if any.

    Returns:
        The PNG's path on rank zero, ``None`` on other ranks or when it was not saved.
    """
    if trainer.global_rank != 0:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(name, figure, global_step=step, close=False)
    folder = figure_dir(trainer)
    if folder is None:
        return None
    filename = f"{name}_step{step}.png" if step is not None else f"{name}.png"
    path = folder / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    return path


def trainer_callbacks(trainer: Trainer) -> list[Callback]:
    """The Trainer's callbacks, in the order they run.

    ``Trainer.callbacks`` is a public list, set in ``__init__`` without a class annotation,
    so type checkers do not see it: this is the one typed way in.
    """
    callbacks: list[Callback] = trainer.callbacks  # type: ignore[attr-defined]
    return callbacks


def end_fit_now() -> NoReturn:
    """End the running ``trainer.fit`` cleanly from a callback hook, as Lightning's tuner does.

    Raises Lightning's private ``_TunerExitException``: the Trainer catches it, runs the
    teardown hooks and marks the fit finished, without training, without the remaining
    hooks and without ``on_train_end``. Private, but it is the only way Lightning offers
    (its own LearningRateFinder and BatchSizeFinder use it): ``trainer.should_stop`` is
    ignored until ``min_epochs`` / ``min_steps`` are met.
    """
    from lightning.pytorch.utilities.exceptions import _TunerExitException

    raise _TunerExitException()


def spawns_processes(trainer: Trainer) -> bool:
    """Whether ``trainer.fit`` runs in spawned processes (``ddp_spawn``, XLA), not here."""
    # The launcher classes are private; the strategy's public `launcher` holds one.
    from lightning.pytorch.strategies.launchers.multiprocessing import (
        _MultiProcessingLauncher,
    )

    return isinstance(trainer.strategy.launcher, _MultiProcessingLauncher)


def checkpoint_saves_on_train_epoch_end(checkpoint: Any, trainer: Trainer) -> bool:
    """Whether a ModelCheckpoint saves at train epoch end (True) or after validation (False).

    ModelCheckpoint keeps this choice in the private ``_save_on_train_epoch_end`` (None
    until it resolves it while training, from the Trainer's validation schedule; there is
    no public getter), and the private ``Trainer._val_check_time_interval`` marks a
    time-based validation schedule. This resolves it at ``setup`` the way ModelCheckpoint
    will, so a callback can tell before training whether the checkpoint saves at the
    moments it checks.

    Args:
        checkpoint: A ``ModelCheckpoint``.
        trainer: The Trainer being set up.

    Returns:
        True if it saves at the end of the training epoch.
    """
    explicit = getattr(checkpoint, "_save_on_train_epoch_end", None)
    if explicit is not None:
        return bool(explicit)
    if getattr(trainer, "_val_check_time_interval", None) is not None:
        return False
    return trainer.check_val_every_n_epoch == 1 and trainer.val_check_interval == 1.0


def progress(
    trainer: Trainer, items: Iterable[T], desc: str, total: int | None = None
) -> Iterable[T]:
    """Wrap a loop a user waits for in a progress bar that follows the Trainer's settings.

    A tqdm bar on global rank zero while the Trainer shows its own progress bar
    (``enable_progress_bar=True``); the bare iterable otherwise, and on other ranks.

    Args:
        trainer: The running Trainer.
        items: The loop's iterable.
        desc: What the loop does, e.g. ``"LRFinder: range test"``.
        total: Its length, when ``items`` has none.

    Returns:
        An iterable over the same items.
    """
    if trainer.global_rank != 0 or trainer.progress_bar_callback is None:
        return items
    from tqdm import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

    return tqdm(items, desc=desc, total=total, leave=False)  # type: ignore[no-any-return]


def loss_scale(trainer: Trainer) -> torch.Tensor | None:
    """The AMP GradScaler's current scale as a device tensor (fp16 mixed precision), or None.

    Gradients seen in ``on_after_backward`` under fp16 AMP are multiplied by this scale
    (they are unscaled later, before ``on_before_optimizer_step``). The GradScaler's
    public ``get_scale()`` returns a Python float, which costs a host sync every step, so
    its private ``_scale`` tensor is read instead (None until the first ``scale()``).
    """
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is None or not getattr(scaler, "is_enabled", lambda: False)():
        return None
    scale = getattr(scaler, "_scale", None)
    return scale if isinstance(scale, torch.Tensor) else None


def is_redirected_step_call(module: object) -> bool:
    """Whether this call of ``module`` is Lightning running a step through its wrapper.

    Under DDP (and the other wrapping strategies) Lightning calls the LightningModule with
    its ``forward`` replaced, for that call, by the step being run (``validation_step``
    ...), so that the wrapper's hooks fire (``_ForwardRedirection`` in
    ``lightning.pytorch.strategies.strategy``). That call's output is the step's, not the
    model's scores. There is no public flag for it: the replaced forward's qualified name
    is the only mark, read here and nowhere else.

    Args:
        module: The module being called (from a forward hook).

    Returns:
        True for Lightning's redirected step call.
    """
    forward = getattr(module, "forward", None)
    return "_ForwardRedirection" in getattr(forward, "__qualname__", "")


def ddp_comm_hook_configured(trainer: Trainer) -> str | None:
    """The name of the communication hook given to ``DDPStrategy``, or None.

    ``DDPStrategy(ddp_comm_hook=..., ddp_comm_wrapper=..., model_averaging_period=...)``
    keeps these arguments in private attributes (there is no public getter) and registers
    the hook on the DistributedDataParallel wrapper itself (on CUDA only). DDP accepts one
    communication hook per wrapper, so a recipe that registers its own must know first.

    Args:
        trainer: The Trainer being set up.

    Returns:
        The configured hook's (or wrapper's) name, or None when there is none.
    """
    strategy = trainer.strategy
    for attribute in ("_ddp_comm_hook", "_ddp_comm_wrapper"):
        hook = getattr(strategy, attribute, None)
        if hook is not None:
            return str(getattr(hook, "__name__", type(hook).__name__))
    if getattr(strategy, "_model_averaging_period", None) is not None:
        return "post-local SGD model averaging"
    return None


def ddp_wrapper(trainer: Trainer) -> DistributedDataParallel | None:
    """The strategy's DistributedDataParallel wrapper (after ``setup``), or None."""
    model = trainer.strategy.model
    return model if isinstance(model, DistributedDataParallel) else None
