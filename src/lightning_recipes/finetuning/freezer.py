"""Freezer: freeze a backbone, unfreeze it gradually with discriminative LRs, right under DDP."""

from typing import Any

from lightning.pytorch import LightningModule, Trainer
from torch import nn
from torch.optim import Optimizer
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.optim import split_param_groups
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, is_real, non_negative_int
from lightning_recipes.errors import RecipeConfigError, config_error
from lightning_recipes.finetuning.backbone_spec import (
    BackboneSpec,
    check_backbone,
    check_disjoint,
    check_group_split,
    check_head,
    resolve_backbone,
    spec_key,
)
from lightning_recipes.finetuning.frozen_groups import GroupNorms, find_norms, freeze_below, hold
from lightning_recipes.finetuning.groups import GroupSpec, LayerGroup
from lightning_recipes.finetuning.plan_figure import plan_figure
from lightning_recipes.finetuning.unfreeze_schedule import (
    Schedule,
    check_pace,
    check_schedule,
    group_rates,
    group_unfreeze_epochs,
    unfrozen_at,
    unfrozen_count,
)
from lightning_recipes.finetuning.warmup import scale_warming_up, unscale

__all__ = ["Freezer", "unfrozen_at"]


class Freezer(Recipe):
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

    identity = ("backbone=_backbone_key", "backbone_regex", "all_but_last", "groups=_groups_key")
    refused_strategies = helpers.SHARDED
    refusal_reason = (
        "sharded parameters cannot be frozen group by group here. Freeze in "
        "configure_model, or use DDP."
    )

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
        check_pace(every_n_epochs, unfreeze)
        non_negative_int("warmup_steps", warmup_steps, "Pass 0 or a positive integer.")
        flag("train_bn", train_bn)
        self._schedule = check_schedule(unfreeze)
        backbone = check_backbone(backbone, backbone_regex, all_but_last)
        check_group_split(groups, backbone)
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
        self._norms: GroupNorms = []
        self._held: list[nn.Module] = []

    @property
    def _backbone_key(self) -> Any:
        return spec_key(self.backbone)  # unique per backbone: two Freezers keep apart

    @property
    def _groups_key(self) -> Any:
        return spec_key(self.group_spec)

    def target(self, epoch: int) -> int:
        """How many groups from the top are trainable at ``epoch`` (capped at the total).

        Args:
            epoch: The epoch.

        Returns:
            The number of unfrozen groups the schedule asks for.
        """
        return unfrozen_count(self._schedule, self.every_n_epochs, epoch, len(self.groups))

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
        return group_unfreeze_epochs(self._schedule, self.every_n_epochs, n)

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
        unfrozen = [self.target(epoch) for epoch in range(epochs)]
        return group_rates(unfrozen, len(self.groups), base_lr, self.lr_decay)

    def plot_plan(self, epochs: int, base_lr: float) -> Any:
        """Draw `plan`: which groups train at each epoch, and at what rate.

        Args:
            epochs: Number of epochs to show.
            base_lr: The head's learning rate.

        Returns:
            A ``matplotlib.figure.Figure`` (needs the ``plots`` extra).
        """
        return plan_figure(self.plan(epochs, base_lr), [g.name for g in self.groups])

    # ------------------------------------------------------------ setup

    def _check_head(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse a backbone that leaves nothing trainable, or overlaps another Freezer's."""
        named = self.backbone if self.backbone_regex is None else self.backbone_regex
        check_head(pl_module, self.groups, len(self.groups) - self.target(0), named)
        callbacks = trainer.callbacks  # type: ignore[attr-defined]
        others = [f for f in callbacks if isinstance(f, Freezer) and f is not self and f.groups]
        check_disjoint(self.groups, self.state_key, [(f.state_key, f.groups) for f in others])

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.check_strategy(trainer)
        self.groups = resolve_backbone(
            pl_module, self.backbone, self.group_spec, self.backbone_regex, self.all_but_last
        )
        self._check_head(trainer, pl_module)
        self._norms = find_norms(pl_module, self.groups)
        # Freeze before the strategy builds DDP, so that DDP registers the trainable set.
        # BatchNorm modes are set when training starts (`hold`), after Lightning's
        # check for modules left in eval mode.
        self._apply(pl_module, self.target(0))

    def _apply(self, pl_module: LightningModule, unfrozen: int) -> None:
        """Make the top ``unfrozen`` groups trainable and the others frozen."""
        first_trainable = len(self.groups) - unfrozen
        self._held = freeze_below(
            self.groups, self._norms, first_trainable, self.train_bn, self._held
        )
        self.unfrozen = unfrozen

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
        hold(self._held)

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Anything may have called model.train() since (a callback, or Lightning's
        # validation->train switch when on_validation_model_train is overridden).
        hold(self._held)

    # ------------------------------------------------------------ warm-up

    @override
    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        scale_warming_up(optimizer.param_groups, self._warmup, self._scaled, self.warmup_steps)

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # Put back the unscaled rate before the schedulers step (they run after this hook).
        if self._scaled:
            unscale(trainer.optimizers[0].param_groups, self._scaled)

    # ------------------------------------------------------------ state

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "unfrozen": self.unfrozen,
            "warmup": dict(self._warmup),
            "unfrozen_at": dict(self.unfrozen_at),
        }

    @override
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
