"""AdversarialTraining: train on FGSM or PGD versions of the training batches.

The attacks are the pure functions of `lightning_recipes.robustness.attacks`; this
callback decides which inputs they replace and when (a forward stage of the batch
pipeline, at the first forward call of each training step).
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs
from lightning_recipes._core.batch_pipeline import (
    BatchStage,
    StageKind,
    close_batch_stages,
    end_batch_stages,
    run_batch_stages,
)
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.deprecation import renamed
from lightning_recipes._core.labels import batch_labels
from lightning_recipes._core.loss import attack_loss
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import is_int, is_real, positive_int, positive_real
from lightning_recipes.errors import config_error
from lightning_recipes.robustness.attacks import Norm, fgsm, pgd
from lightning_recipes.robustness.checks import check_clip, check_keys

__all__ = ["AdversarialTraining"]


class AdversarialTraining(Recipe, BatchStage):
    """Train on adversarial versions of the training batches (FGSM-fast or PGD-k).

    At the module's first forward call of each training step, ``ratio`` of the inputs it
    receives (after any augmentation, whatever the callback order) are replaced by their
    adversarial version under the module's own loss (``loss_fn`` / ``criterion`` /
    ``loss``, else cross-entropy; class weights installed by ClassWeighting apply). The
    attack runs in eval mode, so BatchNorm statistics see only the training forward
    pass, and takes gradients with respect to the perturbation only, so nothing leaks
    into the parameters' ``.grad``. ``"fgsm"`` is the fast FGSM with a random start of
    Wong et al. (2020); ``"pgd"`` is PGD with ``steps`` steps (Madry et al. 2018). Random
    starts come from a generator seeded by (``seed``, rank, global step): a resumed run
    replays the same perturbations and the global RNG is never touched.

    Args:
        eps: Radius of the perturbation, in input units (e.g. 8/255 for [0, 1] images).
        attack: ``"fgsm"`` (fast, random start) or ``"pgd"`` (the name
            `RobustnessEvaluation` uses).
        steps: PGD steps.
        norm: ``"linf"`` or ``"l2"`` (PGD).
        ratio: Share of each batch replaced, in (0, 1].
        clip: Valid input range, e.g. ``[0.0, 1.0]``, or None.
        input_key: Index or key of the inputs in the batch.
        label_key: Index or key of the labels in the batch; None (as every recipe):
            the second of an ``(inputs, labels)`` batch, or a dict's one label key.
        seed: Seed of the random starts.
        method: Deprecated name of ``attack`` (goes in the next release).

    Examples:
        >>> AdversarialTraining(eps=0.1, attack="pgd", steps=3).attack
        'pgd'
    """

    # "method": the key of checkpoints saved before the rename, so that they still load.
    identity = ("eps", "method=attack", "norm")
    stage_kind: ClassVar[StageKind] = "forward"

    def __init__(
        self,
        eps: float,
        attack: Literal["fgsm", "pgd"] = "fgsm",
        steps: int = 7,
        norm: Norm = "linf",
        ratio: float = 1.0,
        clip: Sequence[float] | None = None,
        input_key: int | str = 0,
        label_key: int | str | None = None,
        seed: int = 0,
        method: Literal["fgsm", "pgd"] | None = None,
    ) -> None:
        super().__init__()
        attack = renamed("AdversarialTraining", "method", "attack", method, attack, "fgsm")
        self.eps = positive_real("eps", eps, "Pass a positive, finite number, in input units.")
        if attack not in ("fgsm", "pgd"):
            raise config_error("attack", attack, "Choose 'fgsm' (fast, random start) or 'pgd'.")
        positive_int("steps", steps, "Pass a number of PGD steps >= 1.")
        if norm not in ("linf", "l2"):
            raise config_error("norm", norm, "Choose 'linf' or 'l2'.")
        if attack == "fgsm" and norm != "linf":
            raise config_error("norm", norm, "FGSM is an L-inf attack: use attack='pgd' for l2.")
        if not is_real(ratio) or not 0 < ratio <= 1:
            raise config_error("ratio", ratio, "Pass the share of the batch to replace, in (0, 1].")
        input_key, label_key = check_keys(input_key, label_key)
        if not is_int(seed):
            raise config_error("seed", seed, "Pass an integer seed.")
        self.attack: Literal["fgsm", "pgd"] = attack
        self.steps = steps
        self.norm: Norm = norm
        self.ratio = float(ratio)
        self.clip = check_clip(clip)
        self.input_key = input_key
        self.label_key = label_key
        self.seed = seed
        self.batches = 0
        self.loss_attacked: str | None = None

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._labels: Tensor | None = None
        self._generator: torch.Generator | None = None
        close_batch_stages(trainer)  # a step of an earlier fit is not this fit's

    @override
    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # The attack is the pipeline's forward stage: it runs at the module's first forward
        # call of the step, after every batch stage (augmentation) and whatever
        # training_step does to the inputs, whatever the callback order.
        run_batch_stages(trainer, pl_module, batch, batch_idx)

    @override
    def prepare_stage(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        batch_inputs(batch, self.input_key, "AdversarialTraining")  # checked now
        self._labels = batch_labels(batch, self.label_key, owner="AdversarialTraining")
        self._generator = torch.Generator().manual_seed(
            hash((self.seed, trainer.global_rank, trainer.global_step)) % 2**63
        )

    @override
    def run_forward_stage(self, module: nn.Module, inputs: Tensor) -> Tensor:
        x, y = inputs, self._labels
        assert y is not None
        count = max(1, round(self.ratio * x.shape[0]))
        loss, self.loss_attacked = attack_loss(module, "training")
        part = x[:count].detach()
        if self.attack == "fgsm":
            adv = fgsm(module, part, y[:count], self.eps, loss_fn=loss, clip=self.clip,
                       random_start=True, generator=self._generator)  # fmt: skip
        else:
            adv = pgd(module, part, y[:count], self.eps, steps=self.steps, norm=self.norm,
                      loss_fn=loss, clip=self.clip, generator=self._generator)  # fmt: skip
        self.batches += 1
        return adv if count == x.shape[0] else torch.cat([adv, x[count:]])

    @override
    def forward_stage_missed(self) -> None:
        helpers.rank_zero_warn(
            "AdversarialTraining: the module was never called on this training step "
            "(training_step does not call self(x)?), so nothing was attacked. Call the "
            "module itself on the inputs in training_step."
        )

    @override
    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        end_batch_stages(trainer)

    @override
    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        close_batch_stages(trainer)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        close_batch_stages(trainer)
        self._labels = None
        self._generator = None  # a torch.Generator does not pickle

    @override
    def run_summary(self) -> RecipeSummary:
        """The attack used and how many batches it replaced."""
        return RecipeSummary(
            "Adversarial training",
            facts={
                "attack": self.attack,
                "eps": self.eps,
                "norm": self.norm,
                "steps": self.steps if self.attack == "pgd" else 1,
                "share of each batch": self.ratio,
                "batches attacked": self.batches,
                "loss attacked": self.loss_attacked or "none yet (no training step)",
            },
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches = int(state_dict["batches"])
