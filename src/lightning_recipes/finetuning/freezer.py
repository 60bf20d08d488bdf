"""Freezer: freeze a backbone, unfreeze it gradually with discriminative LRs, right under DDP."""

import itertools
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optim import split_param_groups
from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.validate import (
    flag,
    is_int,
    is_real,
    names_sequence,
    non_negative_int,
    positive_int,
)
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.finetuning.groups import (
    GroupSpec,
    LayerGroup,
    check_group_spec,
    layer_groups,
    select_backbone,
)

__all__ = ["Freezer", "unfrozen_at"]

Schedule = Mapping[int, int] | Literal["gradual"] | int | None
_EVERY_GROUP = sys.maxsize  # the group count of `unfreeze=epoch`: capped at the total
BackboneSpec = str | Sequence[str] | Callable[[LightningModule], nn.Module]
_BatchNorm = nn.modules.batchnorm._BatchNorm


def unfrozen_at(schedule: Mapping[int, int], epoch: int) -> int:
    """How many groups (from the top) a ``{epoch: groups}`` schedule has unfrozen at ``epoch``.

    Args:
        schedule: ``{epoch: number of groups unfrozen from the top}``.
        epoch: The epoch.

    Returns:
        The value of the latest scheduled epoch ``<= epoch`` (0 before the first).

    Raises:
        RecipeConfigError: If ``schedule`` is not a mapping or ``epoch`` is not an integer.

    Examples:
        >>> unfrozen_at({2: 1, 4: 3}, 3), unfrozen_at({2: 1, 4: 3}, 9), unfrozen_at({2: 1}, 0)
        (1, 3, 0)
    """
    if not isinstance(schedule, Mapping):
        raise config_error("schedule", schedule, "Pass a mapping {epoch: groups unfrozen}.")
    if not is_int(epoch):
        raise config_error("epoch", epoch, "Pass an integer epoch.")
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

    By default (``unfreeze=1``) the new head trains alone on the frozen backbone for one
    epoch, then the whole backbone trains at the head's rate. That default was chosen by
    measurement (``benchmarks/peers_transfer.py``: MNIST-1D, 5, 20 and 100 examples per
    class): the best of 16 schedules, discriminative rates and warm-ups on validation, on
    average. It does not beat full fine-tuning: on test it is level at 5 and 100 per class
    and 0.01 below at 20, and no configuration beat full fine-tuning at every size. With 5
    examples per class a frozen backbone (``unfreeze=None``, the previous default) did
    better than full fine-tuning (+0.07), with 100 per class far worse (-0.19).

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

    The backbone is named in one of four ways, three of which YAML can hold:
    ``backbone="encoder"`` (a module, dotted paths allowed, split by ``groups``),
    ``backbone=["stem", "block1", "block2"]`` (module names or globs, one group each,
    bottom first), ``backbone_regex=r"stem|block[0-9]+"`` (every module whose qualified name
    matches entirely, one group each) or ``all_but_last=1`` (every top-level module with
    parameters except the last one, one group each). A callable ``pl_module -> nn.Module``
    also works from Python. Whatever is not in the backbone is the head: it always
    trains, and a backbone that leaves nothing to train in epoch 0 is refused at setup.

    An unfrozen group trains exactly as if it had never been frozen: its BatchNorm layers
    go back to the mode of their parent module (so they follow the Trainer: train mode
    in training, eval mode in validation) and their statistics move again. Frozen
    BatchNorm layers are put back in eval mode at every training batch, so a callback
    or a hook that calls ``model.train()`` (e.g. an overridden
    ``on_validation_model_train``) does not unfreeze their statistics.

    Args:
        backbone: The module name (default ``"backbone"``), a list of module names or
            globs (one group each, bottom first), or a callable ``pl_module ->
            nn.Module``.
        groups: How to split a backbone named by one module (see `layer_groups`). The
            other forms make one group per module and refuse any other value.
        unfreeze: An epoch (default 1: the whole backbone from that epoch on), ``None``
            (never: a frozen feature extractor), ``{epoch: groups unfrozen from the
            top}``, or ``"gradual"`` (one more group every ``every_n_epochs``).
        every_n_epochs: The pace of ``"gradual"`` (refused with another ``unfreeze``).
        lr_decay: Discriminative factor in (0, 1] (1: every group at the head's rate).
        warmup_steps: Optimizer steps over which a newly unfrozen group's rate ramps up.
        train_bn: Let frozen BatchNorm layers update their statistics.
        backbone_regex: Instead of ``backbone``: a regular expression matched entirely
            (``re.fullmatch``) against the qualified module names of the LightningModule;
            the outermost matches form the backbone, one group each, in definition order.
        all_but_last: Instead of ``backbone``: the backbone is every top-level module
            holding parameters except the last ``all_but_last`` (the head), one group
            each, in definition order.

    Attributes:
        groups: The layer groups, bottom first (after setup).
        unfrozen: How many groups, from the top, are trainable.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> freezer = Freezer(unfreeze={1: 1}, lr_decay=0.5)
        >>> model = Classifier(MLP(64, [32, 16]), num_classes=10)
        >>> trainer = Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=0,
        ...                   callbacks=[freezer], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(model, DigitsDataModule())
        >>> freezer.unfrozen, [g["lr"] for g in trainer.optimizers[0].param_groups]
        (1, [0.001, 0.00025, 0.0005])
    """

    def __init__(
        self,
        backbone: BackboneSpec | None = None,
        groups: GroupSpec = "auto",
        unfreeze: Schedule = 1,
        every_n_epochs: int = 1,
        lr_decay: float = 1.0,
        warmup_steps: int = 0,
        train_bn: bool = False,
        backbone_regex: str | None = None,
        all_but_last: int | None = None,
    ) -> None:
        super().__init__()
        if not is_real(lr_decay) or not 0 < lr_decay <= 1:
            raise config_error("lr_decay", lr_decay, "Pass a factor in (0, 1], e.g. 0.5.")
        positive_int("every_n_epochs", every_n_epochs)
        if every_n_epochs != 1 and unfreeze != "gradual":
            raise config_error(
                "every_n_epochs",
                every_n_epochs,
                f"It sets the pace of unfreeze='gradual' only (unfreeze={unfreeze!r}): "
                "leave it out, or pass unfreeze='gradual'.",
            )
        non_negative_int("warmup_steps", warmup_steps, "Pass 0 or a positive integer.")
        flag("train_bn", train_bn)
        self._schedule = self._check_schedule(unfreeze)
        backbone = self._check_backbone(backbone, backbone_regex, all_but_last)
        check_group_spec(groups)
        one_group_per_module = backbone is None or (
            isinstance(backbone, Sequence) and not isinstance(backbone, str)
        )
        if groups != "auto" and one_group_per_module:
            raise config_error(
                "groups",
                groups,
                "It splits a backbone named by one module (backbone='name'); a list, "
                "backbone_regex or all_but_last already make one group per module.",
            )
        self.backbone = backbone
        self.backbone_regex = backbone_regex
        self.all_but_last = all_but_last
        self.group_spec = groups
        self.unfreeze = unfreeze
        self.every_n_epochs = every_n_epochs
        self.lr_decay = float(lr_decay)
        self.warmup_steps = warmup_steps
        self.train_bn = train_bn
        self.groups: list[LayerGroup] = []
        self.unfrozen = 0
        self.unfrozen_at: dict[str, int] = {}  # group name -> epoch it was unfrozen at
        self._restored: int | None = None
        self._warmup: dict[int, int] = {}  # optimizer group index -> steps done
        self._group_index: list[int] = []  # optimizer param-group index of each layer group
        self._scaled: dict[int, float] = {}  # group index -> rate before warm-up scaling
        # The BatchNorm layers of each group, with their parent module (whose mode an
        # unfrozen layer takes back), and the layers held in eval mode while frozen.
        self._norms: list[list[tuple[nn.Module, nn.Module]]] = []
        self._held: list[nn.Module] = []

    @property
    @override
    def state_key(self) -> str:
        """Unique per backbone, so two Freezers in one Trainer keep separate state."""
        backbone = self.backbone
        if callable(backbone) and not isinstance(backbone, str):
            backbone = getattr(backbone, "__qualname__", type(backbone).__qualname__)
        groups = self.group_spec
        if callable(groups) and not isinstance(groups, str):
            groups = getattr(groups, "__qualname__", type(groups).__qualname__)
        return self._generate_state_key(
            backbone=backbone,
            backbone_regex=self.backbone_regex,
            all_but_last=self.all_but_last,
            groups=groups,
        )

    @staticmethod
    def _check_backbone(backbone: Any, regex: Any, all_but_last: Any) -> BackboneSpec | None:
        """Validate the backbone forms; returns ``backbone`` (``"backbone"`` if none is given)."""
        given = [
            name
            for name, value in (
                ("backbone", backbone),
                ("backbone_regex", regex),
                ("all_but_last", all_but_last),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise config_error(
                given[1],
                regex if given[1] == "backbone_regex" else all_but_last,
                f"Name the backbone one way only: {' and '.join(given)} were both given.",
            )
        if regex is not None:
            if not isinstance(regex, str) or not regex:
                raise config_error(
                    "backbone_regex", regex, "Pass a regular expression over module names."
                )
            try:
                re.compile(regex)
            except re.error as error:
                raise config_error(
                    "backbone_regex", regex, f"It is not a valid regular expression ({error})."
                ) from None
            return None
        if all_but_last is not None:
            if not is_int(all_but_last):
                raise config_error(
                    "all_but_last", all_but_last, "Pass the number of head modules, e.g. 1."
                )
            if all_but_last < 1:
                raise config_error(
                    "all_but_last",
                    all_but_last,
                    "Pass at least 1: the head (the last top-level modules) must train.",
                )
            return None
        if backbone is None:
            return "backbone"
        if isinstance(backbone, str):
            if not backbone:
                raise config_error("backbone", backbone, "Pass a module name, e.g. 'backbone'.")
            return backbone
        if callable(backbone) and not isinstance(backbone, nn.Module):
            return backbone  # type: ignore[no-any-return]
        if isinstance(backbone, nn.Module):
            raise config_error(
                "backbone",
                type(backbone).__name__,
                "Pass the module's attribute name (e.g. 'backbone'), not the module.",
            )
        if not isinstance(backbone, Sequence) or isinstance(backbone, bytes):
            raise config_error(
                "backbone",
                backbone,
                "Pass a module name, a list of module names, a callable, or use "
                "backbone_regex / all_but_last.",
            )
        return list(
            names_sequence("backbone", backbone, what="module names or globs", example=["encoder"])
        )

    @staticmethod
    def _check_schedule(unfreeze: Schedule) -> dict[int, int] | str | None:
        if unfreeze is None or unfreeze == "gradual":
            return unfreeze
        if is_int(unfreeze):
            if unfreeze < 0:
                raise config_error(
                    "unfreeze", unfreeze, "Pass the epoch (>= 0) that unfreezes the backbone."
                )
            return {int(unfreeze): _EVERY_GROUP}
        if isinstance(unfreeze, str) or not isinstance(unfreeze, Mapping):
            raise config_error(
                "unfreeze",
                unfreeze,
                "Pass an epoch, None, 'gradual' or {epoch: groups unfrozen}.",
            )
        if not unfreeze:
            raise config_error(
                "unfreeze", dict(unfreeze), "Pass None to never unfreeze, or {epoch: groups}."
            )
        schedule: dict[int, int] = {}
        for key, value in unfreeze.items():
            epoch, count = _as_int(key), _as_int(value)
            if epoch is None or count is None:
                raise config_error(
                    "unfreeze",
                    dict(unfreeze),
                    "Epochs and group counts must be integers, e.g. {2: 1, 4: 2}.",
                )
            schedule[epoch] = count
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

    def unfreeze_epochs(self, n_groups: int | None = None) -> list[int | None]:
        """The epoch at which each backbone group becomes trainable (None: never).

        A pure function of the arguments: it needs no Trainer and changes nothing. The
        last planned unfreeze is ``max(e for e in freezer.unfreeze_epochs() if e is not
        None)``; the parameters trainable at epoch ``e`` are those of the groups with an
        entry ``<= e``, plus the head.

        Args:
            n_groups: Number of backbone groups; defaults to ``len(self.groups)`` (known
                after setup).

        Returns:
            One entry per group, bottom first (aligned with ``self.groups``).

        Examples:
            >>> Freezer(unfreeze={1: 1, 3: 3}).unfreeze_epochs(4)
            [None, 3, 3, 1]
            >>> Freezer().unfreeze_epochs(3), Freezer(unfreeze=None).unfreeze_epochs(3)
            ([1, 1, 1], [None, None, None])
            >>> Freezer(unfreeze="gradual", every_n_epochs=2).unfreeze_epochs(3)
            [6, 4, 2]
        """
        n = len(self.groups) if n_groups is None else n_groups
        non_negative_int("n_groups", n, "Pass a number of groups >= 0.")
        from_top: list[int | None] = []
        for k in range(1, n + 1):  # k-th group from the top
            if self._schedule is None:
                from_top.append(None)
            elif self._schedule == "gradual":
                from_top.append(k * self.every_n_epochs)
            else:
                assert isinstance(self._schedule, dict)
                reached = [e for e, count in self._schedule.items() if count >= k]
                from_top.append(min(reached, default=None))
        return from_top[::-1]

    def planned_change_epochs(self, max_epochs: int) -> list[int]:
        """The epochs below ``max_epochs`` at whose start some group is unfrozen.

        Part of the contract between recipes (``PlansTrainableChanges``): the LR finder
        re-runs its range test at these epochs and early stopping counts patience from the
        last of them. Known once the groups are resolved (after ``setup``).

        Args:
            max_epochs: The run's epoch budget.

        Returns:
            Sorted distinct epochs in ``(0, max_epochs)``.

        Examples:
            >>> Freezer(unfreeze={1: 1, 3: 3}).planned_change_epochs(10)
            []
            >>> from torch import nn
            >>> from lightning_recipes.finetuning import layer_groups
            >>> freezer = Freezer(unfreeze={1: 1, 3: 3})
            >>> freezer.groups = layer_groups(nn.Sequential(*(nn.Linear(2, 2) for _ in range(4))))
            >>> freezer.planned_change_epochs(10)
            [1, 3]
        """
        epochs = {e for e in self.unfreeze_epochs() if e is not None and 0 < e < max_epochs}
        return sorted(epochs)

    def parameters_unfrozen_later(self, epoch: int, max_epochs: int) -> list[nn.Parameter]:
        """The parameters of the groups this plan unfreezes in ``(epoch, max_epochs)``.

        Part of the contract between recipes: the LR finder trains them in its throwaway
        copy, so that the rate it finds at the start fits every parameter that will train.

        Args:
            epoch: The current epoch.
            max_epochs: The run's epoch budget.

        Returns:
            The parameters, bottom group first.
        """
        return [
            param
            for group, at in zip(self.groups, self.unfreeze_epochs(), strict=True)
            if at is not None and epoch < at < max_epochs
            for param in group.params
        ]

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
        if self.backbone_regex is not None:
            return select_backbone(pl_module, regex=self.backbone_regex)
        if self.all_but_last is not None:
            return select_backbone(pl_module, all_but_last=self.all_but_last)
        available = ", ".join(name for name, _ in pl_module.named_children()) or "none"
        spec = self.backbone
        if isinstance(spec, str):
            try:
                found = pl_module.get_submodule(spec)
            except AttributeError:
                found = None
            if found is None or found is pl_module:
                raise config_error(
                    "backbone", spec, f"No such module. Top-level modules: {available}."
                )
            return layer_groups(found, self.group_spec)
        if callable(spec):
            made = spec(pl_module)
            if not isinstance(made, nn.Module):
                raise config_error("backbone", made, "The callable must return an nn.Module.")
            return layer_groups(made, self.group_spec)
        assert spec is not None
        # A list names the backbone's modules: everything else is the head, not a group.
        return select_backbone(pl_module, names=list(spec))

    def _check_head(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse a backbone that leaves nothing trainable, or overlaps another Freezer's."""
        first = len(self.groups) - self.target(0)
        frozen = {id(p) for group in self.groups[:first] for p in group.params}
        if all(id(p) in frozen for p in pl_module.parameters()):
            names = ", ".join(g.name for g in self.groups)
            raise config_error(
                "backbone",
                self.backbone if self.backbone_regex is None else self.backbone_regex,
                f"It covers every parameter of {type(pl_module).__name__} (groups: {names}), "
                "so nothing would train in epoch 0. Leave the head out of the backbone.",
            )
        mine = {id(p) for group in self.groups for p in group.params}
        for other in trainer.callbacks:  # type: ignore[attr-defined]
            if other is self or not isinstance(other, Freezer) or not other.groups:
                continue
            if any(id(p) in mine for group in other.groups for p in group.params):
                raise RecipeConfigError(
                    f"Two Freezers ({other.state_key} and {self.state_key}) freeze the same "
                    "parameters: give each its own backbone, or use one Freezer."
                )

    def _find_norms(self, pl_module: LightningModule) -> None:
        parent: dict[int, nn.Module] = {}
        for module in pl_module.modules():
            for child in module.children():
                parent[id(child)] = module
        self._norms = []
        for group in self.groups:
            norms: list[tuple[nn.Module, nn.Module]] = []
            for module in group.modules:
                for layer in module.modules():
                    if isinstance(layer, _BatchNorm):
                        norms.append((layer, parent.get(id(layer), pl_module)))
            self._norms.append(norms)

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
        self._check_head(trainer, pl_module)
        self._find_norms(pl_module)
        # Freeze before the strategy builds DDP, so that DDP registers the trainable set.
        # BatchNorm modes are set when training starts (`_hold_norms`), after Lightning's
        # check for modules left in eval mode.
        self._apply(pl_module, self.target(0))

    def _apply(self, pl_module: LightningModule, unfrozen: int) -> None:
        """Make the top ``unfrozen`` groups trainable and the others frozen."""
        first_trainable = len(self.groups) - unfrozen
        for index, group in enumerate(self.groups):
            for param in group.params:
                param.requires_grad_(index >= first_trainable)
        self.unfrozen = unfrozen
        held = []
        was_held = {id(layer) for layer in self._held}
        for index, norms in enumerate(self._norms):
            for layer, parent in norms:
                if index < first_trainable and not self.train_bn:
                    held.append(layer)
                elif id(layer) in was_held:
                    # Unfrozen: back to the mode it would have had if never frozen.
                    layer.train(parent.training)
        self._held = held

    def _hold_norms(self) -> None:
        """Put frozen BatchNorm layers back in eval mode (cheap: no tensor is touched)."""
        for layer in self._held:
            layer.training = False

    # ------------------------------------------------------------ optimizer

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise RecipeConfigError(
                f"Freezer needs exactly one optimizer, found {len(trainer.optimizers)}."
            )
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        self._group_index = split_param_groups(
            optimizer, schedulers, [g.params for g in self.groups], self.lr_decay
        )
        if self._restored is not None and self._restored != self.unfrozen:
            self._apply(pl_module, self._restored)  # resumed mid-schedule
            helpers.rewrap_ddp(trainer)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.prepare_training(trainer, pl_module)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.prepare_training(trainer, pl_module)

    def prepare_training(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Bring the trainable set up to date for the current epoch (idempotent).

        Called at the start of training and of every epoch, and by any recipe that must
        see what will train before it acts (the LR finder calls it before each range
        test: ``PreparesTraining`` in the contract), so callback order does not matter.
        """
        wanted = self.target(trainer.current_epoch)
        if wanted > self.unfrozen:
            newly = range(len(self.groups) - wanted, len(self.groups) - self.unfrozen)
            self._apply(pl_module, wanted)
            helpers.rewrap_ddp(trainer)
            if self.warmup_steps:
                for index in newly:
                    self._warmup[self._group_index[index]] = 0
            for index in newly:
                self.unfrozen_at[self.groups[index].name] = trainer.current_epoch
            helpers.rank_zero_info(
                f"Freezer: epoch {trainer.current_epoch}, {wanted} of {len(self.groups)} "
                f"backbone groups trainable ({', '.join(self.groups[i].name for i in newly)} "
                "unfrozen)."
            )
        self._hold_norms()

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Anything may have called model.train() since (a callback, or Lightning's
        # validation->train switch when on_validation_model_train is overridden).
        self._hold_norms()

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
        return {
            "unfrozen": self.unfrozen,
            "warmup": dict(self._warmup),
            "unfrozen_at": dict(self.unfrozen_at),
        }

    def run_summary(self) -> RecipeSummary:
        """The freeze plan and when each group was actually unfrozen (for the run report)."""
        planned = self.unfreeze_epochs() if self.groups else []
        plan = {
            group.name: {"planned": epoch, "unfrozen at": self.unfrozen_at.get(group.name)}
            for group, epoch in zip(self.groups, planned, strict=True)
        }
        notes = []
        never = [name for name, row in plan.items() if row["unfrozen at"] is None]
        if never:
            notes.append(f"Still frozen at the end: {', '.join(never)}.")
        return RecipeSummary(
            "Freezer",
            facts={
                "groups (bottom first)": plan,
                "trainable groups at the end": f"{self.unfrozen} of {len(self.groups)}",
                "lr_decay": self.lr_decay,
                "train_bn": self.train_bn,
            },
            notes=notes,
        )

    @override
    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks", {})
        if self.state_key not in states and "Freezer" in states:
            # Written when the state_key was the class name only (one Freezer per Trainer).
            self.load_state_dict(states["Freezer"])

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = int(state_dict["unfrozen"])
        self._warmup = {int(k): int(v) for k, v in state_dict["warmup"].items()}
        self.unfrozen_at = {str(k): int(v) for k, v in state_dict.get("unfrozen_at", {}).items()}


def _as_int(value: Any) -> int | None:
    """``value`` as an int if it is one (or an integral string, as JSON keys are), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
