"""What `tune` shows while it runs: a progress bar over trials, and less chatter."""

import logging
from typing import Any

__all__: list[str] = []


class _Quiet:
    """Lower Optuna's and Lightning's per-trial chatter while the progress bar shows."""

    _NAMES = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")

    def __init__(self, optuna: Any) -> None:
        self.optuna = optuna
        self.saved: list[tuple[logging.Logger, int]] = []
        self.verbosity = 0

    def __enter__(self) -> None:
        self.verbosity = self.optuna.logging.get_verbosity()
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)
        for name in self._NAMES:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level))
            logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self.optuna.logging.set_verbosity(self.verbosity)
        for logger, level in self.saved:
            logger.setLevel(level)
        self.saved.clear()


class _ProgressBar:
    """A tqdm bar over the study's counted trials, showing the best value so far."""

    def __init__(self, total: int, done: int, mode: str) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # a dependency of Lightning

        self.bar = tqdm(total=total, initial=min(done, total), desc="trials", unit="trial")
        self.mode = mode

    def __call__(self, study: Any, trial: Any) -> None:
        if trial.state.name in ("COMPLETE", "PRUNED"):
            self.bar.update(1)
        try:
            best = study.best_value
        except ValueError:  # no completed trial yet
            return
        self.bar.set_postfix(best=f"{best:.4g}", last=trial.state.name.lower())

    def close(self) -> None:
        self.bar.close()
