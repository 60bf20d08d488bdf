"""Where the two gradient norms of the noise scale come from, on each kind of run.

- `MeasuringAllreduce` (DDP): a communication hook that, on measuring steps, adds up each
  bucket's squared norm before the all-reduce (this rank's gradient, ``B_local``
  examples) and after it (the average over ranks, ``B_local * world`` examples). Other
  steps run the plain all-reduce of ``torch.distributed``'s default hook: same result, no
  extra kernel and no host sync.
- `half_batch_gradients` (one device, no accumulation): an extra forward and backward of
  the module's own ``training_step`` on the first half of the batch, which leaves no trace
  (random states, buffers such as BatchNorm statistics, ``.grad`` and logged metrics are
  all as before).
- `squared_norm`: the squared norm of a list of gradients, fused (``torch._foreach_norm``).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor
from torch.distributed import GradBucket  # type: ignore[attr-defined]
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

from lightning_recipes._core.rng import preserved_rng
from lightning_recipes.errors import RecipeConfigError

__all__ = ["MeasuringAllreduce", "half_batch", "half_batch_gradients", "squared_norm"]


def squared_norm(tensors: Sequence[Tensor]) -> Tensor:
    """``sum_i |t_i|^2`` in float64, in two fused kernels (no host sync).

    Examples:
        >>> squared_norm([torch.tensor([3.0]), torch.tensor([4.0, 0.0])])
        tensor(25., dtype=torch.float64)
    """
    if not tensors:
        return torch.zeros((), dtype=torch.float64)
    norms = torch._foreach_norm(list(tensors))
    return torch.stack(norms).double().pow(2).sum()


@dataclass
class MeasuringAllreduce:
    """The state of the measuring DDP communication hook (`hook` is the hook itself).

    Attributes:
        measuring: Whether the next synchronised backward is a measuring one.
        before: Per bucket, this rank's squared norm before the all-reduce.
        after: Per bucket, the squared norm of the averaged bucket.
        process_group: The group to all-reduce over (None: the default group).
    """

    measuring: bool = False
    before: list[Tensor] = field(default_factory=list)
    after: list[Tensor] = field(default_factory=list)
    process_group: Any = None

    @staticmethod
    def hook(state: "MeasuringAllreduce", bucket: GradBucket) -> torch.futures.Future[Tensor]:
        """DDP communication hook: the default all-reduce, plus two norms when measuring."""
        if not state.measuring:
            return allreduce_hook(state.process_group, bucket)
        buffer = bucket.buffer()
        state.before.append(buffer.detach().double().pow(2).sum())
        future = allreduce_hook(state.process_group, bucket)  # divides in place, then sums

        def measure(done: torch.futures.Future[Tensor]) -> Tensor:
            averaged = done.value()
            state.after.append(averaged.detach().double().pow(2).sum())
            return averaged

        return future.then(measure)

    def take(self) -> tuple[Tensor, Tensor] | None:
        """The step's squared norms (this rank's, the averaged one), or None; then reset."""
        if not self.before or not self.after:
            self.before.clear()
            self.after.clear()
            return None
        before = torch.stack(self.before).sum()
        after = torch.stack(self.after).sum()
        self.before.clear()
        self.after.clear()
        return before, after

    def __getstate__(self) -> dict[str, Any]:
        return {"measuring": False, "before": [], "after": [], "process_group": None}


def half_batch(batch: Any, size: int) -> Any:
    """The first ``size // 2`` examples of every tensor in ``batch`` whose first dim is ``size``."""
    half = size // 2

    def cut(tensor: Tensor) -> Tensor:
        return tensor[:half] if tensor.dim() > 0 and tensor.shape[0] == size else tensor

    return apply_to_collection(batch, Tensor, cut)


def _discard_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``self.log`` during the extra pass: its values must not reach the run."""


def _step_loss(output: Any) -> Tensor | None:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, dict) and isinstance(output.get("loss"), Tensor):
        return output["loss"]  # type: ignore[no-any-return]
    if output is None:
        return None
    raise RecipeConfigError(
        "GradientNoiseScale needs the loss of training_step: it returned neither a tensor, a "
        f"dict with a 'loss' tensor, nor None (got {type(output).__name__})."
    )


def half_batch_gradients(
    trainer: Trainer,
    pl_module: LightningModule,
    batch: Any,
    batch_idx: int,
    size: int,
    params: Sequence[Tensor],
) -> list[Tensor | None] | None:
    """The gradients of ``training_step`` on the first half of ``batch``, leaving no trace.

    Random states (Python, NumPy, torch, CUDA) and every buffer (BatchNorm statistics) are
    restored afterwards, ``.grad`` is not touched (``torch.autograd.grad``), and the
    module's ``self.log`` / ``self.log_dict`` are silenced for the pass.

    Args:
        trainer: The running Trainer (for its precision context).
        pl_module: The module, in training mode.
        batch: The training batch, as ``on_train_batch_start`` received it.
        batch_idx: Its index, passed on to ``training_step``.
        size: The batch's size (first dimension of its tensors).
        params: The parameters whose gradients to return.

    Returns:
        One gradient per parameter (None where the loss does not depend on it), or None
        when ``training_step`` returned None (a skipped batch).
    """
    half = half_batch(batch, size)
    buffers = [(b, b.detach().clone()) for b in pl_module.buffers()]
    own = vars(pl_module)
    saved = {name: own[name] for name in ("log", "log_dict") if name in own}
    own["log"] = own["log_dict"] = _discard_log
    try:
        with preserved_rng(), torch.enable_grad(), trainer.precision_plugin.train_step_context():
            loss = _step_loss(pl_module.training_step(half, batch_idx))
            if loss is None:
                return None
            grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    finally:
        for name in ("log", "log_dict"):
            if name in saved:
                own[name] = saved[name]
            else:
                own.pop(name, None)
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)
    return list(grads)
