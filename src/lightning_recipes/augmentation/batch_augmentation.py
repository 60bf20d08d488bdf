"""The per-batch pipeline the augmentation callbacks share (`BatchAugmentation`).

All augmentation callbacks of this package share one per-batch pipeline: the first of
them whose ``on_train_batch_start`` runs applies every one of them, image transforms
first, then mixes, then smoothing, so the order of ``callbacks=[...]`` does not matter.
They work on the batch Lightning hands to ``training_step`` (already on the device),
never on validation, test or prediction batches. Mixes and smoothing reach the loss
through the core's loss path (``_core.loss_path``): the module may call ``F.cross_entropy``
itself or use ``self.loss_fn``, unchanged, with the same result.

Randomness comes from private generators seeded by ``(seed, callback, global rank,
epoch, batch index)`` (MixUp and CutMix: by block of 64 batches, drawn together,
`mixing_augmentation`): ranks draw differently, the global RNG (dropout, shuffling) is not
touched, and a run resumed from a checkpoint replays the same draws.
"""

import math
import zlib
from typing import Any, ClassVar

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.batch import batch_inputs, replace_inputs
from lightning_recipes._core.batch_pipeline import StageKind, close_batch_stages
from lightning_recipes._core.contract import RecipeSummary
from lightning_recipes._core.labels import LabelKey, check_label_key
from lightning_recipes._core.loss_path import LossStage
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.rng import reseed
from lightning_recipes._core.validate import is_int, is_real
from lightning_recipes.errors import config_error

__all__ = [
    "BatchAugmentation",
    "InputKey",
    "check_alpha",
    "check_common",
    "check_image_shape",
    "check_probability",
]

InputKey = int | str

# Handed to `augment` of the stages that draw nothing (`draws` False), never drawn from.
_NO_DRAWS = np.random.default_rng(0)


def check_probability(name: str, value: Any) -> float:
    """Validate a probability in (0, 1]."""
    if not is_real(value) or not 0.0 < value <= 1.0:
        raise config_error(name, value, "Pass a probability in (0, 1].")
    return float(value)


def check_alpha(value: Any) -> float:
    """Validate a Beta parameter: finite and > 0."""
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        raise config_error(
            "alpha", value, "Pass a finite Beta parameter > 0 (0.2-0.4 for MixUp, 1.0 for CutMix)."
        )
    return float(value)


def check_common(seed: Any, stop_at_epoch: Any, input_key: Any, loss_attr: Any) -> None:
    """Validate the arguments every augmentation callback takes."""
    if seed is not None and (not is_int(seed) or not 0 <= seed < 2**63):
        raise config_error("seed", seed, "Pass None (the run's seed) or an integer in [0, 2**63).")
    if stop_at_epoch is not None and (not is_int(stop_at_epoch) or stop_at_epoch < 1):
        raise config_error(
            "stop_at_epoch",
            stop_at_epoch,
            "Pass None (never stop) or the 0-based epoch from which to stop, >= 1.",
        )
    if isinstance(input_key, bool) or not (
        (is_int(input_key) and input_key >= 0) or (isinstance(input_key, str) and input_key)
    ):
        raise config_error(
            "input_key",
            input_key,
            "Pass the index of the inputs in a tuple/list batch (0 for (inputs, labels)) or "
            "their key in a dict batch.",
        )
    if loss_attr is not None and (not isinstance(loss_attr, str) or not loss_attr.isidentifier()):
        raise config_error(
            "loss_attr", loss_attr, "Pass the name of the module attribute holding the loss."
        )


def check_image_shape(value: Any) -> tuple[int, int, int] | None:
    """Validate ``image_shape``: None or three positive integers ``(C, H, W)``."""
    if value is None:
        return None
    if (
        not isinstance(value, tuple | list)
        or len(value) != 3
        or not all(is_int(v) and v >= 1 for v in value)
    ):
        raise config_error(
            "image_shape",
            value,
            "Pass (channels, height, width) of the flat inputs, e.g. (1, 8, 8).",
        )
    return (int(value[0]), int(value[1]), int(value[2]))


class BatchAugmentation(Recipe, LossStage):
    """Base of the per-batch augmentation callbacks (not used directly).

    Args:
        p: Probability that a training batch is augmented.
        seed: Seed of the callback's private generators; None takes the run's seed
            (``torch.initial_seed()`` on rank 0 when training starts, kept in the
            checkpoint).
        stop_at_epoch: 0-based epoch from which the callback stops (fine-tune the last
            epochs on clean data); None never stops.
        input_key: Where the inputs are in a batch: index in a tuple/list, key in a dict.
        loss_attr: Module attribute holding the loss, when it is not ``loss_fn`` /
            ``criterion`` / ``loss``; the loss may also be a plain ``F.cross_entropy``
            call in ``training_step``.
        label_key: Where the labels are in a batch (index or key); None reads
            ``(inputs, labels)`` pairs and dicts with one ``label``/``labels``/``y``/
            ``target``/``targets`` key.
    """

    identity: ClassVar[tuple[str, ...]] = ("p", "seed", "stop_at_epoch")
    stage_kind: ClassVar[StageKind] = "transform"
    """Pipeline order (`lightning_recipes._core.batch_pipeline`): transforms, mixes, smoothing."""
    recipe: ClassVar[str] = "augmentation"
    uses_loss: ClassVar[bool] = True
    per_batch: ClassVar[bool] = True
    """Whether ``p`` is drawn once per batch (else the subclass applies it per sample)."""
    draws: ClassVar[bool] = True
    """Whether `augment` draws from its generator (False: the batch's one is not built)."""

    def __init__(
        self,
        *,
        p: float,
        seed: int | None,
        stop_at_epoch: int | None,
        input_key: InputKey,
        loss_attr: str | None = None,
        label_key: LabelKey = None,
    ) -> None:
        super().__init__()
        self.p = check_probability("p", p)
        check_common(seed, stop_at_epoch, input_key, loss_attr)
        self.seed = seed
        self.stop_at_epoch = stop_at_epoch
        self.input_key = input_key
        self.loss_attr = loss_attr
        self.label_key = check_label_key(label_key)
        self.batches_seen = 0
        self.batches_augmented = 0
        self._seed: int | None = seed
        self._salt = zlib.crc32(type(self).__name__.encode())
        self._draws: np.random.Generator | None = None

    # ------------------------------------------------------------ state

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self._seed,
            "batches_seen": self.batches_seen,
            "batches_augmented": self.batches_augmented,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._seed = state_dict["seed"]
        self.batches_seen = state_dict["batches_seen"]
        self.batches_augmented = state_dict["batches_augmented"]

    # ------------------------------------------------------------ lifecycle

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        close_batch_stages(trainer)  # a step of an earlier fit is not this fit's
        self.batches_seen = self.batches_augmented = 0
        if self.seed is None:
            self._seed = int(helpers.broadcast(trainer, torch.initial_seed() % 2**63))
        max_epochs = trainer.max_epochs
        if self.stop_at_epoch is not None and max_epochs not in (None, -1):
            assert max_epochs is not None
            if self.stop_at_epoch >= max_epochs:
                helpers.rank_zero_warn(
                    f"{type(self).__name__}(stop_at_epoch={self.stop_at_epoch}) never stops: "
                    f"the run has max_epochs={max_epochs} (epochs 0 to {max_epochs - 1})."
                )
        if not self.uses_loss:
            return
        found, _ = self.attach_loss(pl_module, self.loss_attr, self.label_key)
        if found is not None:
            self._check_loss(found[0])

    def _check_loss(self, loss: torch.nn.Module) -> None:
        """Refuse a loss this callback cannot work with (at setup)."""

    # ------------------------------------------------------------ per batch

    def active(self, epoch: int) -> bool:
        """Whether the callback acts during ``epoch``."""
        return self.stop_at_epoch is None or epoch < self.stop_at_epoch

    def generator(self, trainer: Trainer, batch_idx: int) -> np.random.Generator:
        """This batch's private generator: a function of seed, rank, epoch and batch index.

        ``np.random.default_rng(np.random.SeedSequence(entropy))``'s state, put in one
        generator per callback (`reseed`: building both each batch cost ~0.1 ms a step).
        """
        assert self._seed is not None
        entropy = [self._seed, self._salt, trainer.global_rank, trainer.current_epoch, batch_idx]
        if self._draws is None:
            self._draws = np.random.default_rng()
        return reseed(self._draws, entropy)

    @override
    def run_stage(self, trainer: Trainer, batch: Any, batch_idx: int) -> None:
        self.batches_seen += 1
        if self.active(trainer.current_epoch) and self.apply(batch, trainer, batch_idx):
            self.batches_augmented += 1

    def apply(self, batch: Any, trainer: Trainer, batch_idx: int) -> bool:
        """Draw this batch's randomness, decide (``p``), augment; whether it augmented."""
        rng = self.generator(trainer, batch_idx) if self.draws else _NO_DRAWS
        if self.per_batch and self.p < 1.0 and rng.random() >= self.p:
            return False
        self.augment(batch, rng)
        return True

    def augment(self, batch: Any, rng: np.random.Generator) -> None:
        """Augment ``batch`` in place (subclasses)."""
        raise NotImplementedError

    @override
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_draws"] = None  # re-seeded every batch
        return state

    # ------------------------------------------------------------ inputs

    def get_inputs(self, batch: Any) -> Tensor:
        """The inputs tensor of ``batch`` (at ``input_key``)."""
        return batch_inputs(batch, self.input_key, type(self).__name__)

    def set_inputs(self, batch: Any, new: Tensor) -> None:
        """Put ``new`` in place of the inputs: a list/dict entry, or in place in the tensor."""
        replace_inputs(batch, self.input_key, new, type(self).__name__)

    def get_images(self, batch: Any) -> tuple[Tensor, torch.Size | None]:
        """The inputs as images ``(N, C, H, W)`` / ``(N, H, W)``, and their flat shape if any.

        Flat inputs ``(N, C*H*W)`` are viewed as images of ``image_shape`` when it is set.
        """
        inputs = self.get_inputs(batch)
        shape: tuple[int, ...] | None = getattr(self, "image_shape", None)
        if shape is not None and inputs.dim() == 2 and inputs.shape[1] == math.prod(shape):
            return inputs.reshape(inputs.shape[0], *shape), inputs.shape
        if inputs.dim() not in (3, 4) or shape is not None:
            expected = f" or flat (N, {math.prod(shape)})" if shape is not None else ""
            raise config_error(
                "image_shape" if shape is not None else "input_key",
                shape if shape is not None else self.input_key,
                f"{type(self).__name__} needs images (N, C, H, W) or (N, H, W){expected}; the "
                f"inputs have shape {tuple(inputs.shape)}. Keep the images unflattened in the "
                "batch (flatten in the model) or pass image_shape=(C, H, W) for flat inputs.",
            )
        return inputs, None

    def set_images(self, batch: Any, images: Tensor, flat: torch.Size | None) -> None:
        """Put augmented images back, flattened again when they came flat."""
        self.set_inputs(batch, images.reshape(flat) if flat is not None else images)

    # ------------------------------------------------------------ report

    def summary_facts(self) -> dict[str, Any]:
        """The callback's settings, for `run_summary`."""
        return {"p": self.p}

    @override
    def run_summary(self) -> RecipeSummary:
        """What the callback did in the last run (for the run report)."""
        facts = {
            **self.summary_facts(),
            "training batches seen": self.batches_seen,
            "batches augmented": self.batches_augmented,
        }
        if self.stop_at_epoch is not None:
            facts["stopped from epoch"] = self.stop_at_epoch
        notes = [] if self.batches_seen else ["No training batch seen (training never ran)."]
        return RecipeSummary(self.recipe, facts=facts, notes=notes)
