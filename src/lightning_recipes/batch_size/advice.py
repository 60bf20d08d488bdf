"""What a measured noise scale implies for the batch size, in a sentence; and its figure."""

import math
from collections.abc import Sequence
from typing import Any

from lightning_recipes.batch_size.noise import LRScaling, scale_lr

__all__ = ["batch_size_advice", "noise_scale_figure"]

_RULE_WORDS = {"linear": "linearly (SGD)", "sqrt": "by the square root (Adam-like)"}


def _round_power_of_two(value: float) -> int:
    return int(2 ** max(round(math.log2(max(value, 1.0))), 0))


def batch_size_advice(
    batch_size: int, noise_scale: float, rule: LRScaling, lr: float | None = None
) -> str:
    """One sentence on the training batch size against the measured noise scale.

    The steps to a target follow ``S ∝ 1 + B_noise / B`` (McCandlish et al. 2018): far
    below the noise scale, doubling the batch halves the steps; far above it, the extra
    examples buy almost nothing. The proposed batch is the power of two nearest the noise
    scale, with the learning rate scaled by the optimizer's rule.

    Args:
        batch_size: The examples per optimizer step (all ranks and micro-batches).
        noise_scale: The measured ``B_simple`` (NaN or <= 0: no estimate).
        rule: ``"linear"`` or ``"sqrt"``, from `lr_scaling_rule`.
        lr: The current learning rate, to print the scaled one (optional).

    Returns:
        The sentence.

    Examples:
        >>> print(batch_size_advice(64, 900.0, "sqrt", lr=1e-3))  # doctest: +NORMALIZE_WHITESPACE
        batch 64 is far below the noise scale (≈900): a larger batch would take
        proportionally fewer steps; batch 1024 would take about 0.12x the steps (model S ∝ 1 +
        B_noise/B). Scale the learning rate by the square root (Adam-like): 0.001 -> 0.004.
    """
    if not math.isfinite(noise_scale) or noise_scale <= 0:
        return (
            f"batch {batch_size}: no noise scale estimate (the gradient's signal |G|^2 was not "
            "measurably positive): train longer or measure more often before choosing a batch."
        )
    shown = f"≈{noise_scale:.3g}" if noise_scale < 100 else f"≈{noise_scale:.0f}"
    ratio = noise_scale / batch_size
    if 0.5 <= ratio <= 2:
        return (
            f"batch {batch_size} is near the noise scale ({shown}): a balanced trade-off; a "
            "larger batch would save few steps and a smaller one few examples."
        )
    proposed = _round_power_of_two(noise_scale)
    steps = (1 + noise_scale / proposed) / (1 + noise_scale / batch_size)
    if ratio > 2:
        head = (
            f"batch {batch_size} is {'far ' if ratio > 4 else ''}below the noise scale "
            f"({shown}): a larger batch would take proportionally fewer steps; batch "
            f"{proposed} would take about {steps:.2f}x the steps (model S ∝ 1 + B_noise/B)."
        )
    else:
        examples = steps * proposed / batch_size
        head = (
            f"batch {batch_size} is {'far ' if ratio < 0.25 else ''}above the noise scale "
            f"({shown}): most of each batch is redundant; batch {proposed} would need about "
            f"{examples:.2f}x the examples for {steps:.2f}x the steps (model S ∝ 1 + B_noise/B)."
        )
    rate = f"Scale the learning rate {_RULE_WORDS[rule]}"
    if lr is not None:
        rate += f": {lr:.3g} -> {scale_lr(lr, batch_size, proposed, rule):.3g}"
    return f"{head} {rate}."


def noise_scale_figure(
    history: Sequence[tuple[int, float, float, float]], batch_size: int | None
) -> Any:
    """B_simple over optimizer steps (log scale), with the training batch size as a line.

    Args:
        history: ``(step, b_simple, |G|^2, tr(Σ))`` at each logging step.
        batch_size: The training batch size (examples per optimizer step), or None.

    Returns:
        A ``matplotlib.figure.Figure`` (needs the ``plots`` extra).
    """
    from lightning_recipes._core.optional import new_figure

    figure = new_figure("GradientNoiseScale(plot=True)", figsize=(6, 3.6))
    axes = figure.subplots()
    points = [(s, b) for s, b, _, _ in history if math.isfinite(b) and b > 0]
    if points:
        steps, values = zip(*points, strict=True)
        axes.plot(steps, values, marker="o", markersize=3, label="noise scale B_simple")
        axes.set_yscale("log")
    if batch_size is not None:
        axes.axhline(batch_size, color="grey", linestyle="--", label=f"batch size {batch_size}")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("examples (B_simple = tr(Σ) / |G|²)")
    axes.set_title("Gradient noise scale over training")
    axes.legend(loc="best")
    figure.tight_layout()
    return figure
