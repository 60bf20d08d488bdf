"""Freezer: freeze a backbone, unfreeze it gradually with discriminative LRs, right under DDP."""

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes import _lightning as helpers
from lightning_recipes._optional import new_figure
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.finetuning.groups import GroupSpec, LayerGroup, layer_groups
from lightning_recipes.lr.apply import LR_GROUP_KEYS, SCHEDULER_LR_LISTS

__all__ = ["Freezer", "unfrozen_at"]

Schedule = Mapping[int, int] | str | None
_COPIED_LISTS = ("lr_lambdas", "min_lrs")
"""Per-group scheduler lists copied as they are (the rate lists, `SCHEDULER_LR_LISTS`, scale)."""


def unfrozen_at(schedule: Mapping[int, int], epoch: int) -> int:
    """How many groups (from the top) a ``{epoch: groups}`` schedule has unfrozen at ``epoch``.

    Args:
        schedule: ``{epoch: number of groups unfrozen from the top}``.
        epoch: The epoch.

    Returns:
        The value of the latest scheduled epoch ``<= epoch`` (0 before the first).

    Examples:
        >>> unfrozen_at({2: 1, 4: 3}, 3), unfrozen_at({2: 1, 4: 3}, 9), unfrozen_at({2: 1}, 0)
        (1, 3, 0)
    """
    reached = [count for start, count in schedule.items() if start <= epoch]
    return max(reached, default=0)


class Freezer(Callback):
    """Train the head on a frozen backbone, then unfreeze it from the top, group by group.

    The backbone is split into layer groups (`layer_groups`: children of an
    ``nn.Sequential``, ResNet stages, timm blocks, names or a callable). Frozen groups
    have ``requires_grad=False`` (no gradient is computed, so frozen epochs are cheaper)
    and their BatchNorm layers in eval mode (running statistics neither used from the
    batch nor updated) unless ``train_bn=True``, in every epoch. The head, and every
    parameter outside the backbone, always trains.

    Each backbone group gets its own optimizer param group, found by parameter identity,
    with the learning rate of the param group it came from times ``lr_decay**k`` for the
    k-th group from the top (k = 1 next to the head). The param groups exist from the
    start (frozen ones simply get no gradient), and the schedulers' per-group lists
    (``base_lrs``, ``lr_lambdas``...) are extended to match, so LR schedules apply to
    every group. Newly unfrozen groups can warm up linearly over ``warmup_steps``.

    Under DDP, DistributedDataParallel only all-reduces the parameters that required
    grad when it was built: Lightning's BackboneFinetuning unfreezes parameters DDP
    never syncs, and ranks drift apart (#20340). Freezer freezes in ``setup`` (before
    DDP is built) and rebuilds the DDP wrapper whenever the trainable set changes, so
    every rank's parameters stay identical. FSDP, DeepSpeed and model-parallel
    strategies are refused at setup.

    Args:
        backbone: The module attribute name, a list of module names (one group each,
            bottom first), or a callable ``pl_module -> nn.Module``.
        groups: How to split the backbone (see `layer_groups`); ignored when
            ``backbone`` is a list.
        unfreeze: ``None`` (never), ``{epoch: groups unfrozen from the top}``, or
            ``"gradual"`` (one more group every ``every_n_epochs``).
        every_n_epochs: The pace of ``"gradual"``.
        lr_decay: Discriminative factor in (0, 1] (1: every group at the head's rate).
        warmup_steps: Optimizer steps over which a newly unfrozen group's rate ramps up.
        train_bn: Let frozen BatchNorm layers update their statistics.

    Attributes:
        groups: The layer groups, bottom first (after setup).
        unfrozen: How many groups, from the top, are trainable.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import Classifier, mlp
        >>> freezer = Freezer(unfreeze={1: 1}, lr_decay=0.5)
        >>> model = Classifier(mlp(64, [32, 16]), num_classes=10)
        >>> trainer = Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0,
        ...                   callbacks=[freezer], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, DigitsDataModule())
        >>> freezer.unfrozen, [g["lr"] for g in trainer.optimizers[0].param_groups]
        (1, [0.001, 0.00025, 0.0005])
    """

    def __init__(
        self,
        backbone: str | Sequence[str] | Callable[[LightningModule], nn.Module] = "backbone",
        groups: GroupSpec = "auto",
        unfreeze: Schedule = None,
        every_n_epochs: int = 1,
        lr_decay: float = 1.0,
        warmup_steps: int = 0,
        train_bn: bool = False,
    ) -> None:
        super().__init__()
        if not (isinstance(lr_decay, float | int) and 0 < lr_decay <= 1):
            raise config_error("lr_decay", lr_decay, "Pass a factor in (0, 1], e.g. 0.5.")
        if (
            isinstance(every_n_epochs, bool)
            or not isinstance(every_n_epochs, int)
            or (every_n_epochs < 1)
        ):
            raise config_error("every_n_epochs", every_n_epochs, "Pass a positive integer.")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise config_error("warmup_steps", warmup_steps, "Pass 0 or a positive integer.")
        self._schedule = self._check_schedule(unfreeze)
        self.backbone = backbone
        self.group_spec = groups
        self.unfreeze = unfreeze
        self.every_n_epochs = every_n_epochs
        self.lr_decay = float(lr_decay)
        self.warmup_steps = warmup_steps
        self.train_bn = train_bn
        self.groups: list[LayerGroup] = []
        self.unfrozen = 0
        self._restored: int | None = None
        self._warmup: dict[int, int] = {}  # optimizer group index -> steps done
        self._group_index: list[int] = []  # optimizer param-group index of each layer group
        self._scaled: dict[int, float] = {}  # group index -> rate before warm-up scaling

    @staticmethod
    def _check_schedule(unfreeze: Schedule) -> dict[int, int] | str | None:
        if unfreeze is None or unfreeze == "gradual":
            return unfreeze
        if isinstance(unfreeze, str) or not isinstance(unfreeze, Mapping):
            raise config_error(
                "unfreeze", unfreeze, "Pass None, 'gradual' or {epoch: groups unfrozen}."
            )
        schedule = {int(k): int(v) for k, v in unfreeze.items()}
        ordered = sorted(schedule.items())
        if any(e < 0 or n < 0 for e, n in ordered) or any(
            b[1] < a[1] for a, b in itertools.pairwise(ordered)
        ):
            raise config_error(
                "unfreeze",
                dict(unfreeze),
                "The schedule must not go backwards: epochs >= 0 and, by epoch, a "
                "non-decreasing number of unfrozen groups.",
            )
        return schedule

    def target(self, epoch: int) -> int:
        """How many groups from the top are trainable at ``epoch`` (capped at the total).

        Args:
            epoch: The epoch.

        Returns:
            The number of unfrozen groups the schedule asks for.
        """
        if self._schedule is None:
            wanted = 0
        elif self._schedule == "gradual":
            wanted = epoch // self.every_n_epochs
        else:
            assert isinstance(self._schedule, dict)
            wanted = unfrozen_at(self._schedule, epoch)
        return min(wanted, len(self.groups))

    def plan(self, epochs: int, base_lr: float) -> list[list[float | None]]:
        """The learning rate of every backbone group at every epoch (None while frozen).

        Args:
            epochs: Number of epochs to show.
            base_lr: The head's learning rate.

        Returns:
            ``plan[epoch][group]``, groups bottom first (``self.groups`` must be set:
            after setup, or assign them with `layer_groups`). Warm-up and LR schedules
            are not included.
        """
        n = len(self.groups)
        rows: list[list[float | None]] = []
        for epoch in range(epochs):
            first = n - self.target(epoch)
            rows.append(
                [base_lr * self.lr_decay ** (n - i) if i >= first else None for i in range(n)]
            )
        return rows

    def plot_plan(self, epochs: int, base_lr: float) -> Any:
        """Draw `plan`: which groups train at each epoch, and at what rate.

        Args:
            epochs: Number of epochs to show.
            base_lr: The head's learning rate.

        Returns:
            A ``matplotlib.figure.Figure`` (needs the ``plots`` extra).
        """
        rows = self.plan(epochs, base_lr)
        figure = new_figure(
            "Freezer.plot_plan", figsize=(1.2 + 0.35 * epochs, 0.9 + 0.45 * len(self.groups))
        )
        ax = figure.add_subplot()
        values = [[float("nan") if v is None else v for v in row] for row in rows]
        image = ax.imshow(
            torch.tensor(values).T.log10().numpy(), origin="lower", aspect="auto", cmap="viridis"
        )
        ax.set_xticks(range(epochs))
        ax.set_yticks(range(len(self.groups)), [g.name for g in self.groups])
        ax.set_xlabel("epoch (blank: frozen)")
        ax.set_ylabel("backbone group (bottom first)")
        figure.colorbar(image, ax=ax, label="log10(learning rate)")
        return figure

    # ------------------------------------------------------------ setup

    def _resolve(self, pl_module: LightningModule) -> list[LayerGroup]:
        available = ", ".join(name for name, _ in pl_module.named_children()) or "none"
        spec = self.backbone
        if isinstance(spec, str):
            found = getattr(pl_module, spec, None)
            if not isinstance(found, nn.Module):
                raise config_error(
                    "backbone", spec, f"No such module. Top-level modules: {available}."
                )
            return layer_groups(found, self.group_spec)
        if callable(spec):
            made = spec(pl_module)
            if not isinstance(made, nn.Module):
                raise config_error("backbone", made, "The callable must return an nn.Module.")
            return layer_groups(made, self.group_spec)
        return layer_groups(pl_module, list(spec))

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        helpers.refuse_sharded(
            trainer,
            recipe="Freezer",
            reason="sharded parameters cannot be frozen group by group here. Freeze in "
            "configure_model, or use DDP.",
        )
        self.groups = self._resolve(pl_module)
        # Freeze before the strategy builds DDP, so that DDP registers the trainable set.
        self._apply(pl_module, self.target(0))

    def _apply(self, pl_module: LightningModule, unfrozen: int) -> None:
        """Make the top ``unfrozen`` groups trainable and the others frozen."""
        first_trainable = len(self.groups) - unfrozen
        for index, group in enumerate(self.groups):
            for param in group.params:
                param.requires_grad_(index >= first_trainable)
        self.unfrozen = unfrozen
        self._set_bn_modes()

    def _set_bn_modes(self) -> None:
        first_trainable = len(self.groups) - self.unfrozen
        for index, group in enumerate(self.groups):
            frozen = index < first_trainable and not self.train_bn
            for module in group.modules:
                for layer in module.modules():
                    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and frozen:
                        layer.eval()

    # ------------------------------------------------------------ optimizer

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise RecipeConfigError(
                f"Freezer needs exactly one optimizer, found {len(trainer.optimizers)}."
            )
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        self._group_index = _split_param_groups(optimizer, schedulers, self.groups, self.lr_decay)
        if self._restored is not None and self._restored != self.unfrozen:
            self._apply(pl_module, self._restored)  # resumed mid-schedule
            helpers.rewrap_ddp(trainer)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        wanted = self.target(trainer.current_epoch)
        if wanted > self.unfrozen:
            newly = range(len(self.groups) - wanted, len(self.groups) - self.unfrozen)
            self._apply(pl_module, wanted)
            helpers.rewrap_ddp(trainer)
            if self.warmup_steps:
                for index in newly:
                    self._warmup[self._group_index[index]] = 0
            helpers.rank_zero_info(
                f"Freezer: epoch {trainer.current_epoch}, {wanted} of {len(self.groups)} "
                f"backbone groups trainable ({', '.join(self.groups[i].name for i in newly)} "
                "unfrozen)."
            )
        self._set_bn_modes()

    # ------------------------------------------------------------ warm-up

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        for index, done in list(self._warmup.items()):
            group = optimizer.param_groups[index]
            self._scaled[index] = group["lr"]
            group["lr"] = group["lr"] * (done + 1) / (self.warmup_steps + 1)
            self._warmup[index] = done + 1
            if done + 1 >= self.warmup_steps:
                del self._warmup[index]

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Put back the unscaled rate before the schedulers step (they run after this hook).
        if self._scaled:
            optimizer = trainer.optimizers[0]
            for index, value in self._scaled.items():
                optimizer.param_groups[index]["lr"] = value
            self._scaled.clear()

    # ------------------------------------------------------------ state

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"unfrozen": self.unfrozen, "warmup": dict(self._warmup)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = int(state_dict["unfrozen"])
        self._warmup = {int(k): int(v) for k, v in state_dict["warmup"].items()}


def _split_param_groups(
    optimizer: Optimizer, schedulers: Sequence[Any], groups: Sequence[LayerGroup], decay: float
) -> list[int]:
    """Move each layer group's parameters into its own param group (identity-based).

    A layer group's new param group copies the hyperparameters of the param group its
    first parameter was in (the first group if none), with every learning-rate key times
    ``decay**k`` (k-th group from the top, k >= 1). The schedulers' per-group lists are
    extended to match.

    Returns:
        The optimizer param-group index of each layer group (bottom first).
    """
    source_of: dict[int, int] = {}
    for index, group in enumerate(optimizer.param_groups):
        for param in group["params"]:
            source_of[id(param)] = index
    moved = {id(p) for group in groups for p in group.params}
    for group in optimizer.param_groups:
        group["params"] = [p for p in group["params"] if id(p) not in moved]
    indices = []
    for level, layer in zip(range(len(groups), 0, -1), groups, strict=True):
        source = next((source_of[id(p)] for p in layer.params if id(p) in source_of), 0)
        template = optimizer.param_groups[source]
        factor = decay**level
        new = {key: value for key, value in template.items() if key != "params"}
        for key in LR_GROUP_KEYS:
            if isinstance(new.get(key), float | int):
                new[key] = new[key] * factor
        new["params"] = list(layer.params)
        optimizer.add_param_group(new)
        indices.append(len(optimizer.param_groups) - 1)
        for scheduler in schedulers:
            _extend_scheduler(scheduler, optimizer, source, factor)
    # Optimizer state moves with the parameters (it is keyed by parameter), nothing to do.
    return indices


def _extend_scheduler(scheduler: Any, optimizer: Optimizer, source: int, factor: float) -> None:
    """Append one group's entry to every per-group list of a scheduler (and its children)."""
    for child in getattr(scheduler, "_schedulers", []):  # SequentialLR, ChainedScheduler
        _extend_scheduler(child, optimizer, source, factor)
    if getattr(scheduler, "optimizer", None) is not optimizer:
        return
    groups = len(optimizer.param_groups)
    for name in (*SCHEDULER_LR_LISTS, *_COPIED_LISTS):
        value = getattr(scheduler, name, None)
        if isinstance(value, list) and len(value) == groups - 1:  # one entry per old group
            entry = value[source]
            if name in SCHEDULER_LR_LISTS and isinstance(entry, float | int | torch.Tensor):
                entry = entry * factor
            value.append(entry)
