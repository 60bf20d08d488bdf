"""LogitAdjustment: the log class prior in the training loss, or subtracted after training."""

from typing import Any, Literal

import numpy.typing as npt
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.loss import loss_module, optional_loss_module
from lightning_recipes._core.loss_path import LossRecipe, check_loss_module, shift_logits
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import flag, int_at_least
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error
from lightning_recipes.imbalance.class_weighting import ClassWeighting
from lightning_recipes.imbalance.counting import local_labels, multiclass_counts
from lightning_recipes.imbalance.labels import LabelKey, check_label_key, labels_array
from lightning_recipes.imbalance.losses import FocalLoss
from lightning_recipes.imbalance.prior import check_tau, log_prior_offset

__all__ = ["LOGIT_ADJUSTMENT_MODES", "LogitAdjustment"]

Mode = Literal["loss", "posthoc", "both"]
LOGIT_ADJUSTMENT_MODES: tuple[str, ...] = ("loss", "posthoc", "both")
"""The ``mode`` values of `LogitAdjustment`."""


class LogitAdjustment(Recipe, LossRecipe):
    """Logit adjustment for long-tailed data (Menon et al. 2021), on an unchanged module.

    A classifier trained with cross-entropy on long-tailed labels learns the class prior
    ``pi`` into its scores: rare classes lose every close call. Logit adjustment removes it,
    for a classifier of balanced error, in one of two places (``mode``):

    * ``"loss"`` (the default): the training loss becomes ``CE(f(x) + tau * log(pi), y)``
      (`logit_adjusted_cross_entropy`; ``tau = 1`` is the balanced softmax of Ren et al.
      2020). The module's own ``F.cross_entropy(logits, y)`` call (or ``nn.CrossEntropyLoss``,
      ``F.nll_loss`` on ``log_softmax`` outputs, the library's multi-class ``FocalLoss``)
      gets the offset added to its input through the library's loss path, before MixUp's
      mixed targets, label smoothing and class weights act on it. The model's outputs are
      then the adjusted scores themselves: validation, test and predict are unchanged.
    * ``"posthoc"``: training is untouched; during validation, test and predict the
      module's ``forward`` output (what ``self(x)`` returns) is replaced by
      ``f(x) - tau * log(pi)`` (`posthoc_adjust`), by a forward hook active only from
      ``on_{validation,test,predict}_start`` to the matching end. So every metric the
      module logs from ``self(x)`` (accuracy, its validation loss), early stopping and
      checkpoint monitors on them, and ``trainer.predict``'s outputs are those of the
      adjusted classifier. The weights are never changed and the hook is not in the
      checkpoint; a call of ``model(x)`` outside the Trainer is not adjusted (apply
      `posthoc_adjust` with ``counts``). It is not active in the sanity check of a fresh
      fit (the prior is counted when training starts).
    * ``"both"``: both, with the same ``tau``: the decision is corrected twice (``2 tau``
      in all), e.g. for ``tau = 0.5`` split between training and prediction.

    The prior is the class frequency of the training labels, counted as `ClassWeighting`
    counts them (``labels=``, the dataset's ``targets`` / ``labels`` / ``y``, or one pass
    over the training dataloader; summed over DDP ranks when they hold shards), once when
    training starts; the counts are this callback's state, so a resumed run, or
    ``trainer.test(ckpt_path=...)`` with the callback, uses the same prior. A class without
    a training sample is refused (its ``log 0`` has no finite value).

    **With ClassWeighting**: both correct for the same prior. They compose (the class
    weights weight the adjusted loss; post-hoc adjusts a weighted model's outputs), which
    with weights from the first step corrects twice and pushes the classifier past balanced
    towards the rare classes: a `RecipeWarning` says so at setup. Deferred re-weighting
    (``ClassWeighting(start_epoch=k)``, DRW) with logit adjustment is left without a
    warning: a margin on the logits through training and re-weighting at the end is the
    LDAM-DRW pattern of Cao et al. 2019.

    Refused: ``tau`` < 0 or not finite, an unknown ``mode``, losses that are not multi-class
    (BCE, MSE, ...; at setup), a model whose output is not a tensor of ``num_classes``
    scores (post-hoc, at the first evaluation batch), and evaluation without a prior.

    Args:
        tau: The scaling of the adjustment; 1.0 is the paper's (balanced error); 0 does
            nothing.
        mode: ``"loss"``, ``"posthoc"`` or ``"both"``.
        labels: The training labels, when the dataset does not expose them (class ids or
            one-hot/probability rows); also the prior for evaluation without a fit.
        label_key: Where the label is in a batch (an index or a key); None reads
            ``(inputs, labels)`` pairs and dicts with one label-like key.
        loss_attr: The module attribute holding the loss (for its ``ignore_index`` and to
            check it); None searches ``loss_fn`` / ``criterion`` / ``loss``.
        num_classes: Number of classes; by default the module's ``num_classes`` attribute
            or hparam, else the largest label + 1.
        log: Log ``log_prior/<class>`` (the offset) to the loggers when it is counted.

    Attributes:
        counts: Training samples per class, None before training starts.
        offset: ``tau * log(pi)``, one value per class, None before.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_recipes.data import DigitsDataModule
        >>> from lightning_recipes.modules import MLP, Classifier
        >>> adjust = LogitAdjustment(tau=1.0)
        >>> trainer = Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0,
        ...                   callbacks=[adjust], logger=False, enable_checkpointing=False,
        ...                   enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(Classifier(MLP(64, [16]), 10), DigitsDataModule(imbalance={0: 0.1}))
        >>> bool(adjust.offset[0] < adjust.offset[1])  # class 0 is rare
        True
    """

    identity = ("tau", "mode", "label_key")

    def __init__(
        self,
        tau: float = 1.0,
        mode: Mode = "loss",
        *,
        labels: npt.ArrayLike | torch.Tensor | None = None,
        label_key: int | str | None = None,
        loss_attr: str | None = None,
        num_classes: int | None = None,
        log: bool = True,
    ) -> None:
        super().__init__()
        self.tau = check_tau(tau)
        if mode not in LOGIT_ADJUSTMENT_MODES:
            raise choice_error("mode", mode, LOGIT_ADJUSTMENT_MODES)
        if num_classes is not None:
            int_at_least("num_classes", num_classes, 2, "Pass an integer, 2 or more classes.")
        if loss_attr is not None and (
            not isinstance(loss_attr, str) or not loss_attr.isidentifier()
        ):
            raise config_error(
                "loss_attr", loss_attr, "Pass the name of the module attribute holding the loss."
            )
        self.mode: Mode = mode
        self.labels = None if labels is None else labels_array(labels)
        self.label_key: LabelKey = check_label_key(label_key)
        self.loss_attr = loss_attr
        self.num_classes = num_classes
        self.log = flag("log", log)
        self.counts: list[int] | None = None
        self.offset: Tensor | None = None
        self._prepared = False
        self._evaluating = False
        self._hooks: list[RemovableHandle] = []
        self._calls: list[bool] = []

    @property
    def in_loss(self) -> bool:
        """Whether the training loss is adjusted (``mode`` "loss" or "both")."""
        return self.mode != "posthoc"

    @property
    def posthoc(self) -> bool:
        """Whether evaluation outputs are adjusted (``mode`` "posthoc" or "both")."""
        return self.mode != "loss"

    # ------------------------------------------------------------ setup

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._prepared = self._evaluating = False
        if stage == "fit":
            self._warn_if_weighted_too(trainer)
            if self.in_loss:
                self._check_loss(pl_module)
                path = self.attach_loss_path(pl_module, self.label_key)
                found = loss_module(pl_module, self.loss_attr)
                if found is not None and not isinstance(found[0], nn.modules.loss._Loss):
                    path.hook(found[0])  # FocalLoss or a custom loss: the module door
        if self.posthoc and not self._hooks:
            self._hooks = [
                pl_module.register_forward_pre_hook(self._before_forward),
                pl_module.register_forward_hook(self._adjust_output),
            ]

    def _check_loss(self, pl_module: LightningModule) -> None:
        """Refuse a loss that has no class prior to add to (binary, regression)."""
        found = optional_loss_module(pl_module, self.loss_attr)
        if found is None:
            return
        loss, attr = found
        binary = isinstance(loss, FocalLoss) and loss.task != "multiclass"
        kind = check_loss_module(loss, attr, "LogitAdjustment", weighting=False)
        if binary or kind in ("binary_logits", "binary_probs"):
            raise RecipeConfigError(
                f"LogitAdjustment cannot adjust {attr} = {type(loss).__name__}: it adds log "
                "class priors to multi-class scores (CrossEntropyLoss / F.cross_entropy, "
                "NLLLoss on log_softmax, FocalLoss(task='multiclass')). Binary and "
                "multi-label losses have no class prior to add; use ClassWeighting "
                "(pos_weight) there, or remove LogitAdjustment."
            )

    def _warn_if_weighted_too(self, trainer: Trainer) -> None:
        """The contract with ClassWeighting: weights from the first step correct twice."""
        if self.tau == 0.0:
            return
        for callback in helpers.trainer_callbacks(trainer):
            if (
                isinstance(callback, ClassWeighting)
                and callback.start_epoch == 0
                and callback.label_key == self.label_key
            ):
                helpers.rank_zero_warn(
                    f"LogitAdjustment(tau={self.tau:g}, mode={self.mode!r}) and "
                    "ClassWeighting both correct for the class prior from the first step: "
                    "the class weights weight the adjusted loss (or the post-hoc shift "
                    "applies to a weighted model), which pushes the classifier past "
                    "balanced towards the rare classes. Keep one of the two, or defer the "
                    "weights: ClassWeighting(start_epoch=...) (DRW)."
                )

    # ------------------------------------------------------------ the prior

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.prepare_training(trainer, pl_module)

    def prepare_training(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Count the labels (once) and put the offset in the loss path (once per fit).

        Runs when training starts, or earlier for a recipe that must see the adjusted loss
        first (the LR finder's range test: ``PreparesTraining``).
        """
        if self._prepared:
            return
        self._prepared = True
        if self.counts is None:  # not restored from a checkpoint
            labels, whole = local_labels(trainer, self.labels, self.label_key, "LogitAdjustment")
            counts = multiclass_counts(
                trainer,
                pl_module,
                labels,
                whole,
                num_classes=self.num_classes,
                ignore_index=self._ignore_index(pl_module),
            )
            self.counts = [int(c) for c in counts.tolist()]
        self._set_offset(pl_module)
        if self.in_loss:
            if self.loss_path is None:  # called before setup (another recipe's range test)
                self.attach_loss_path(pl_module, self.label_key)
            assert self.loss_path is not None
            assert self.offset is not None
            self.loss_path.set_logit_offset(self.label_key, self.offset)
        self._log(trainer)

    def _ignore_index(self, pl_module: LightningModule) -> int | None:
        found = loss_module(pl_module, self.loss_attr)
        ignore = getattr(found[0], "ignore_index", -100) if found is not None else -100
        return ignore if isinstance(ignore, int) else None

    def _set_offset(self, pl_module: LightningModule) -> None:
        assert self.counts is not None
        try:
            offset = log_prior_offset(self.counts, self.tau)
        except RecipeConfigError as err:
            raise RecipeConfigError(f"LogitAdjustment: {err}") from None
        self.offset = offset.to(pl_module.device)

    def _prior_for_evaluation(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The offset for a validate / test / predict run (restored, or from ``labels=``)."""
        if self.offset is not None and self.offset.device == pl_module.device:
            return
        if self.counts is None and self.labels is not None:
            counts = multiclass_counts(
                trainer,
                pl_module,
                self.labels,
                True,
                num_classes=self.num_classes,
                ignore_index=self._ignore_index(pl_module),
            )
            self.counts = [int(c) for c in counts.tolist()]
        if self.counts is None:
            if trainer.sanity_checking:
                return  # a fresh fit: the prior is counted when training starts
            raise RecipeConfigError(
                f"LogitAdjustment(mode={self.mode!r}) has no class prior to subtract: it is "
                "counted when training starts. Fit with the callback first, pass the fit's "
                "checkpoint (ckpt_path=, which holds the counts), or pass labels= (the "
                "training labels)."
            )
        self._set_offset(pl_module)

    # ------------------------------------------------------------ post-hoc

    def _start_evaluation(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.posthoc:
            self._prior_for_evaluation(trainer, pl_module)
            self._evaluating = True
            self._calls.clear()

    def _end_evaluation(self) -> None:
        self._evaluating = False
        self._calls.clear()

    def _before_forward(self, module: nn.Module, args: Any) -> None:
        # Under DDP, Lightning routes a step through the wrapper: that outer call returns
        # the step's output, not scores, and is left alone; the step's own ``self(x)``
        # inside it is adjusted.
        self._calls.append(helpers.is_redirected_step_call(module))

    def _adjust_output(self, module: nn.Module, args: Any, output: Any) -> Any:
        redirected = self._calls.pop() if self._calls else False
        if redirected or not self._evaluating or self.offset is None:
            return None
        classes = self.offset.shape[0]
        if not isinstance(output, Tensor) or output.dim() < 2 or output.shape[1] != classes:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise RecipeConfigError(
                f"LogitAdjustment(mode={self.mode!r}) subtracts the log prior from the "
                f"module's forward output, a tensor of {classes} class scores along "
                f"dimension 1; {type(module).__name__}.forward returned {shape}. Return the "
                "logits from forward (compute losses and probabilities from them in the "
                "steps), or use mode='loss'."
            )
        return shift_logits(output, -self.offset)

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start_evaluation(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_evaluation()

    @override
    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start_evaluation(trainer, pl_module)

    @override
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_evaluation()

    @override
    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start_evaluation(trainer, pl_module)

    @override
    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_evaluation()

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        self._evaluating = False
        for handle in self._hooks:
            handle.remove()
        self._hooks, self._calls = [], []

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        super().on_exception(trainer, pl_module, exception)
        self._evaluating = False

    # ------------------------------------------------------------ reporting and state

    def _log(self, trainer: Trainer) -> None:
        if not self.log or trainer.global_rank != 0 or self.offset is None:
            return
        values = self.offset.tolist()
        metrics = {f"log_prior/{i}": float(v) for i, v in enumerate(values)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        shown = ", ".join(f"{v:.3g}" for v in values)
        helpers.rank_zero_info(
            f"LogitAdjustment: tau * log(prior) = [{shown}] from counts {self.counts}"
        )

    @override
    def run_summary(self) -> RecipeSummary:
        """The counts and the offset (for the run report)."""
        facts: dict[str, Any] = {"tau": self.tau, "mode": self.mode}
        if self.counts is not None:
            facts["training counts"] = self.counts
        if self.offset is not None:
            facts["tau * log(prior)"] = [round(float(v), 4) for v in self.offset.tolist()]
        notes = [] if self.counts is not None else ["No prior counted (training never started)."]
        return RecipeSummary("Logit adjustment", facts=facts, notes=notes)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"counts": self.counts}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        counts = state_dict.get("counts")
        self.counts = None if counts is None else [int(c) for c in counts]
        self.offset = None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_hooks"], state["_calls"] = [], []  # hook handles of one process
        return state
