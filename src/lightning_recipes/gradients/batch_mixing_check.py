"""BatchMixingCheck: at the start of training, check that the model keeps samples apart.

The check itself is `lightning_recipes.gradients.check.batch_mixing` (a pure function);
this callback decides when it runs (the first training batch, in eval mode) and what a
mixing model gets (an error or a warning, the same verdict on every rank).
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor
from typing_extensions import override

from lightning_recipes._core import trainer as helpers
from lightning_recipes._core.module_modes import evaluation_mode
from lightning_recipes._core.recipe import Recipe
from lightning_recipes._core.validate import is_int
from lightning_recipes.errors import BatchMixingError, choice_error, config_error
from lightning_recipes.gradients.check import batch_mixing

__all__ = ["BatchMixingCheck"]


class BatchMixingCheck(Recipe):
    """At the start of training, check that the model keeps the samples of a batch apart.

    Takes the first training batch, puts the model in eval mode (so BatchNorm does not
    mix samples legitimately), and verifies with `batch_mixing` that each checked
    sample's output has exactly zero gradient with respect to every other sample's input.
    A model that mixes samples (a wrong ``view``/``reshape`` across dim 0, a mean over
    the batch, attention across the batch) learns from leaked information and behaves
    differently at batch size 1. The module's train/eval mode is restored afterwards.
    Under DDP every rank checks its batch and all ranks agree on the verdict.

    Args:
        on_mixing: ``"raise"`` (a `BatchMixingError` naming the samples) or ``"warn"``.
        input_fn: Extracts the input tensor from a batch; default: ``batch[0]`` for
            tuples/lists, the batch itself for a tensor.
        samples: Which samples of the batch to check.

    Examples:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[BatchMixingCheck()], logger=False)
    """

    identity = ("on_mixing", "samples")

    def __init__(
        self,
        on_mixing: Literal["raise", "warn"] = "raise",
        input_fn: Callable[[Any], Tensor] | None = None,
        samples: Sequence[int] = (0, -1),
    ) -> None:
        if on_mixing not in ("raise", "warn"):
            raise choice_error("on_mixing", on_mixing, ("raise", "warn"))
        if input_fn is not None and not callable(input_fn):
            raise config_error(
                "input_fn", input_fn, "Pass a function from a batch to its input tensor, or None."
            )
        if (
            isinstance(samples, (str, bytes))
            or not isinstance(samples, Sequence)
            or not all(is_int(i) for i in samples)
        ):
            raise config_error(
                "samples", samples, "Pass a list of sample indices (ints), e.g. [0, -1]."
            )
        if len(samples) == 0:
            raise config_error("samples", tuple(samples), "Pass at least one sample index.")
        if len(set(samples)) != len(samples):
            raise config_error("samples", tuple(samples), "Give each sample index once.")
        self.on_mixing = on_mixing
        self.input_fn = input_fn
        self.samples = tuple(samples)
        self.result: dict[int, list[int]] | None = None

    def _inputs(self, batch: Any) -> Tensor:
        if self.input_fn is not None:
            return self.input_fn(batch)
        if isinstance(batch, Tensor):
            return batch
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
            return batch[0]
        raise config_error(
            "input_fn",
            None,
            f"Cannot find the input in a {type(batch).__name__} batch: pass "
            "input_fn=lambda batch: batch['x'] (whatever holds the input tensor).",
        )

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader = trainer.train_dataloader
        if loader is None:
            return
        device = pl_module.device
        # Starting a DataLoader iterator draws from the global torch RNG: fork it, so that
        # the check leaves the run's random numbers (dropout, shuffles) untouched.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            inputs = self._inputs(next(iter(loader))).to(device)
            with evaluation_mode(pl_module):
                self.result = batch_mixing(pl_module, inputs, self.samples)
        mixed = {i: js for i, js in self.result.items() if js}
        if helpers.all_ranks_agree(trainer, not mixed):
            return
        detail = (
            "; ".join(
                f"output of sample {i} depends on input sample(s) {js[:10]}"
                + ("..." if len(js) > 10 else "")
                for i, js in mixed.items()
            )
            or "on another rank"
        )
        message = (
            f"BatchMixingCheck: {type(pl_module).__name__} mixes samples across the batch "
            f"dimension ({detail}). Look for a view/reshape that moves dim 0, a reduction over "
            "dim 0, or attention over the batch."
        )
        if self.on_mixing == "raise":
            raise BatchMixingError(message)
        helpers.rank_zero_warn(message)
