"""The exponential moving average's horizon and its default decay: the math of `WeightAverage`.

Pure functions, no Lightning: numbers in, numbers out.
"""

__all__ = ["ema_decay_for", "ema_horizon"]

# The default EMA spans a tenth of the steps it averages, between 2 and 1000 steps.
_HORIZON_FRACTION = 0.1
_MIN_HORIZON, _MAX_HORIZON = 2.0, 1000.0


def ema_horizon(decay: float) -> float:
    """The number of steps an EMA with ``decay`` averages over: ``1 / (1 - decay)``.

    Examples:
        >>> round(ema_horizon(0.999)), round(ema_horizon(0.9))
        (1000, 10)
    """
    return 1.0 / (1.0 - decay)


def ema_decay_for(steps: float) -> float:
    """The default EMA decay for a run that averages ``steps`` optimizer steps.

    Its horizon ``1 / (1 - decay)`` is a tenth of ``steps``, at least 2 and at most 1000
    steps (``decay=0.999``, for runs of 10,000 steps or more, or of unknown length). The
    first weights then hold ``decay ** steps`` of the final average: under 1e-4, where a
    fixed 0.999 over 60 steps leaves 94% of it on the starting weights.

    Args:
        steps: Optimizer steps the average will see (``inf`` when unknown).

    Returns:
        The decay, in [0.5, 0.999].

    Examples:
        >>> ema_decay_for(60), ema_decay_for(1_000), ema_decay_for(float("inf"))
        (0.8333333333333334, 0.99, 0.999)
    """
    horizon = min(max(_HORIZON_FRACTION * steps, _MIN_HORIZON), _MAX_HORIZON)
    return 1.0 - 1.0 / horizon
