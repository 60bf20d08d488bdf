"""The gradient noise scale of McCandlish et al. 2018, pure: tensors in, tensors out.

"An Empirical Model of Large-Batch Training" (Appendix A): with the squared norms of the
mean gradient measured at two batch sizes ``b_small < b_big`` on the same weights,

- ``|G|^2 ≈ (b_big |G_big|^2 - b_small |G_small|^2) / (b_big - b_small)`` and
- ``tr(Σ) ≈ (|G_small|^2 - |G_big|^2) / (1 / b_small - 1 / b_big)``

are unbiased estimates of the true gradient's squared norm and of the trace of the
per-example gradient covariance. Their ratio ``B_simple = tr(Σ) / |G|^2`` is the simple
noise scale: the batch size above which a larger batch stops buying proportionally fewer
steps. Each estimate is noisy (``|G|^2`` can come out negative), so the two are smoothed
separately over steps and only then divided (`NoiseScaleEMA`).

Nothing here reads a tensor back to the host: the callback keeps them on the device and
reads them when it logs.
"""

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from lightning_recipes.errors import config_error

__all__ = [
    "LRScaling",
    "NoiseScaleEMA",
    "lr_scaling_rule",
    "noise_estimates",
    "scale_lr",
    "simple_noise_scale",
]

LRScaling = Literal["linear", "sqrt"]

# Optimizers that divide by a running second moment: their step does not grow linearly
# with the gradient's signal-to-noise, so the square-root rule applies (Malladi et al. 2022;
# Hoffer et al. 2017). Matched on the class name and its bases, so subclasses follow.
_ADAPTIVE = frozenset(
    {"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "SparseAdam"}
)


def _check_sizes(b_small: float, b_big: float) -> None:
    if not 0 < b_small < b_big:
        raise config_error(
            "b_small, b_big",
            (b_small, b_big),
            "Pass two batch sizes with 0 < b_small < b_big (the small batch's gradient is the "
            "noisier one).",
        )


def noise_estimates(
    sq_norm_small: Tensor, sq_norm_big: Tensor, b_small: float, b_big: float
) -> tuple[Tensor, Tensor]:
    """The unbiased estimates of ``|G|^2`` and ``tr(Σ)`` from two batch sizes.

    Args:
        sq_norm_small: ``|G_small|^2``, the squared norm of the mean gradient over a batch of
            ``b_small`` examples (or the mean of several such squared norms).
        sq_norm_big: ``|G_big|^2``, the same over ``b_big`` examples, on the same weights.
        b_small: The small batch size.
        b_big: The big batch size (``> b_small``).

    Returns:
        ``(g2, trace)``: the estimates of ``|G|^2`` and of ``tr(Σ)``, tensors like the inputs.

    Raises:
        RecipeConfigError: If not ``0 < b_small < b_big``.

    Examples:
        >>> g2, trace = noise_estimates(torch.tensor(3.0), torch.tensor(2.0), 10, 20)
        >>> g2, trace  # 3 = |G|^2 + tr/10 and 2 = |G|^2 + tr/20
        (tensor(1.), tensor(20.))
    """
    _check_sizes(b_small, b_big)
    g2 = (b_big * sq_norm_big - b_small * sq_norm_small) / (b_big - b_small)
    trace = (sq_norm_small - sq_norm_big) / (1.0 / b_small - 1.0 / b_big)
    return g2, trace


def simple_noise_scale(g2: Tensor, trace: Tensor) -> Tensor:
    """``B_simple = tr(Σ) / |G|^2``; NaN where ``|G|^2 <= 0`` (no signal measured yet).

    Examples:
        >>> simple_noise_scale(torch.tensor([2.0, -1.0]), torch.tensor([100.0, 5.0]))
        tensor([50., nan])
    """
    return torch.where(g2 > 0, trace / g2.clamp_min(torch.finfo(g2.dtype).tiny), torch.nan)


@dataclass
class NoiseScaleEMA:
    """Exponential moving averages of ``|G|^2`` and ``tr(Σ)``, kept apart, debiased.

    Smoothing the ratio itself would let one near-zero ``|G|^2`` blow the average up; the
    paper smooths numerator and denominator separately. Every value stays on its device:
    `update` issues a few kernels and no host sync; a non-finite pair (an fp16 overflow) is
    skipped on the device, without a branch on the host.

    Attributes:
        beta: The decay per measurement (``0 <= beta < 1``; 0 keeps only the latest).
        g2: The running average of ``|G|^2`` (not debiased), None before any update.
        trace: The running average of ``tr(Σ)``, None before any update.
        weight: ``1 - beta^n`` for the ``n`` finite updates so far (the debiasing factor).

    Examples:
        >>> ema = NoiseScaleEMA(beta=0.5)
        >>> ema.update(torch.tensor(1.0), torch.tensor(100.0))
        >>> ema.update(torch.tensor(3.0), torch.tensor(100.0))
        >>> ema.value()  # (0.5 * 1 + 0.5 * 3 ... debiased: |G|^2 = 7/3, tr = 100)
        tensor(42.8571)
    """

    beta: float = 0.9
    g2: Tensor | None = None
    trace: Tensor | None = None
    weight: Tensor | None = field(default=None)

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 1.0:
            raise config_error("beta", self.beta, "Pass a smoothing factor in [0, 1).")

    def update(self, g2: Tensor, trace: Tensor) -> None:
        """Fold one measurement in (skipped on the device if either value is non-finite)."""
        g2, trace = g2.detach().double(), trace.detach().double()
        if self.g2 is None or self.trace is None or self.weight is None:
            zero = torch.zeros((), dtype=torch.float64, device=g2.device)
            self.g2, self.trace, self.weight = zero, zero.clone(), zero.clone()
        finite = torch.isfinite(g2) & torch.isfinite(trace)
        keep = torch.where(finite, self.beta, 1.0)
        self.g2 = keep * self.g2 + (1 - keep) * torch.where(finite, g2, 0.0)
        self.trace = keep * self.trace + (1 - keep) * torch.where(finite, trace, 0.0)
        self.weight = keep * self.weight + (1 - keep)

    def estimates(self) -> tuple[Tensor, Tensor]:
        """The debiased averages ``(|G|^2, tr(Σ))`` (NaN before any finite update)."""
        if self.g2 is None or self.trace is None or self.weight is None:
            nan = torch.tensor(torch.nan, dtype=torch.float64)
            return nan, nan.clone()
        weight = torch.where(self.weight > 0, self.weight, torch.nan)
        return self.g2 / weight, self.trace / weight

    def value(self) -> Tensor:
        """The smoothed ``B_simple``: the ratio of the two debiased averages."""
        g2, trace = self.estimates()
        return simple_noise_scale(g2, trace).float()

    def state_dict(self) -> dict[str, Tensor | None]:
        """The averages on the CPU, for a checkpoint."""
        return {
            name: None if value is None else value.detach().cpu().clone()
            for name, value in (("g2", self.g2), ("trace", self.trace), ("weight", self.weight))
        }

    def load_state_dict(self, state: dict[str, Tensor | None], device: torch.device) -> None:
        """Restore `state_dict`'s averages onto ``device``."""
        self.g2, self.trace, self.weight = (
            None if state.get(name) is None else state[name].to(device)  # type: ignore[union-attr]
            for name in ("g2", "trace", "weight")
        )


def lr_scaling_rule(optimizer: torch.optim.Optimizer | type) -> LRScaling:
    """The learning-rate scaling rule for a batch-size change with this optimizer.

    Linear for SGD (Goyal et al. 2017: k times the batch, k times the rate); square root
    for Adam-like optimizers that divide by a second-moment estimate (Hoffer et al. 2017,
    Malladi et al. 2022). Both hold only below the noise scale; above it the rate should
    stop growing.

    Args:
        optimizer: An optimizer or optimizer class.

    Returns:
        ``"sqrt"`` for Adam, AdamW, Adamax, NAdam, RAdam, Adagrad, Adadelta, RMSprop and
        their subclasses; ``"linear"`` otherwise.

    Examples:
        >>> lr_scaling_rule(torch.optim.SGD), lr_scaling_rule(torch.optim.AdamW)
        ('linear', 'sqrt')
    """
    cls = optimizer if isinstance(optimizer, type) else type(optimizer)
    return "sqrt" if any(base.__name__ in _ADAPTIVE for base in cls.__mro__) else "linear"


def scale_lr(lr: float, old_batch: float, new_batch: float, rule: LRScaling) -> float:
    """The learning rate for ``new_batch`` given the one tuned at ``old_batch``.

    Examples:
        >>> scale_lr(0.1, 64, 256, "linear"), scale_lr(1e-3, 64, 256, "sqrt")
        (0.4, 0.002)
    """
    if rule not in ("linear", "sqrt"):
        raise config_error("rule", rule, "Choose 'linear' (SGD) or 'sqrt' (Adam-like).")
    if not (old_batch > 0 and new_batch > 0):
        raise config_error(
            "old_batch, new_batch", (old_batch, new_batch), "Pass positive batch sizes."
        )
    ratio = new_batch / old_batch
    return float(lr * (ratio if rule == "linear" else ratio**0.5))
