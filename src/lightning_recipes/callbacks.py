"""Every lightning-recipes Callback in one place, for browsing and for YAML class paths."""

from lightning_recipes.gradients import BatchMixingCheck, GradientMonitor
from lightning_recipes.history import MetricHistory

__all__ = ["BatchMixingCheck", "GradientMonitor", "MetricHistory"]
