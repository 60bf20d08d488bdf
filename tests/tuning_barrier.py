"""A callback that holds one trial of a study at a known point, for kill and resume tests.

The test does not race a kill against a training trial: the trial writes ``reached`` when
it gets to its first training epoch and then waits for ``release`` (which the test never
writes before the kill), so the kill always finds that trial RUNNING, whatever the load.
"""

import time
from pathlib import Path

from lightning.pytorch import Callback, LightningModule, Trainer
from typing_extensions import override


class HoldTrial(Callback):
    """In trial number ``trial`` of a `tune` study, touch ``reached`` then wait for ``release``."""

    def __init__(self, trial: int, reached: str, release: str) -> None:
        self.trial = trial
        self.reached = Path(reached)
        self.release = Path(release)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if Path(trainer.default_root_dir).name != f"trial_{self.trial:04d}":
            return
        self.reached.touch()
        while not self.release.exists():  # no deadline: the test kills this process
            time.sleep(0.01)
