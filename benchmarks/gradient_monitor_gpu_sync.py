"""GradientMonitor makes no host-device sync on non-logging steps (CUDA only).

Trains the 48-layer MLP of ``gradient_monitor.py`` on CUDA for 60 steps with
``GradientMonitor(log_every_n_steps=20)`` and a CSVLogger, in its default configuration and
with each per-step feature (the ``non_finite="skip"``/``"stop"`` guard, each clip mode).
Two guard callbacks sandwich the monitor: the first turns
``torch.cuda.set_sync_debug_mode("error")`` on just before GradientMonitor's
``on_before_optimizer_step`` on every non-logging step, the second turns it off right after,
so any synchronising CUDA call inside the monitor raises, while Lightning's and the
optimizer's own work stays outside the check. A control run with a deliberate ``.item()``
inside the window proves that the check catches syncs.

Prints PASS/FAIL per configuration and exits 1 on any failure; without a CUDA device it
prints "skipped: no CUDA device" and exits 0. Reproduce:
``.venv/bin/python benchmarks/gradient_monitor_gpu_sync.py``.
"""

import logging
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import quiet_trainer
from gradient_monitor import BATCH, CLASSES, FEATURES, Net

from lightning_recipes import GradientMonitor

STEPS = 60
EVERY = 20

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")


class SyncCheck(Callback):
    """Opens (``start=True``) or closes the no-sync window around the callbacks between."""

    def __init__(self, start: bool, every: int) -> None:
        self.start = start
        self.every = every
        self.checked = 0

    def on_before_optimizer_step(self, trainer: Trainer, *args: Any) -> None:
        if not self.start:
            torch.cuda.set_sync_debug_mode("default")
        elif trainer.global_step % self.every != 0:  # a non-logging step
            torch.cuda.set_sync_debug_mode("error")
            self.checked += 1

    def on_exception(self, *args: Any) -> None:
        # Before the Trainer's teardown, which may legitimately sync.
        torch.cuda.set_sync_debug_mode("default")


class ReadsBack(Callback):
    """Control: a callback that syncs (``.item()``) at every step."""

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Any
    ) -> None:
        next(pl_module.parameters()).grad.norm().item()  # type: ignore[union-attr]


def run(make_callback: Callable[[], Callback], root: str) -> tuple[bool, int, str]:
    seed_everything(0, verbose=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH * STEPS, FEATURES, generator=generator)
    y = torch.randint(0, CLASSES, (BATCH * STEPS,), generator=generator)
    loader: DataLoader[tuple[Tensor, ...]] = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    opening = SyncCheck(start=True, every=EVERY)
    trainer = quiet_trainer(
        accelerator="cuda",
        max_steps=STEPS,
        limit_val_batches=0,
        logger=CSVLogger(root, name="sync"),
        callbacks=[opening, make_callback(), SyncCheck(start=False, every=EVERY)],
    )
    try:
        trainer.fit(Net(), train_dataloaders=loader)
    except RuntimeError as error:
        return False, opening.checked, str(error).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return True, opening.checked, ""


def main() -> int:
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    options: list[dict[str, Any]] = [
        {},  # the defaults
        {"non_finite": "skip"},  # the per-step check and device-side zeroing
        {"non_finite": "stop"},
        {"clip": "norm", "max_norm": 1.0},
        {"clip": "value", "max_norm": 0.01},
        {"clip": "agc", "max_norm": 0.01},
        {"clip": "norm", "max_norm": 1.0, "non_finite": "skip", "groups": "parameter"},
    ]
    cases: list[tuple[str, Callable[[], Callback]]] = [
        (
            "GradientMonitor("
            + ", ".join(f"{k}={v!r}" for k, v in {"log_every_n_steps": EVERY, **kw}.items())
            + ")",
            lambda kw=kw: GradientMonitor(log_every_n_steps=EVERY, **kw),
        )
        for kw in options
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as root:
        control_passed, _, message = run(ReadsBack, root)
        if control_passed:
            print("FAIL control: a deliberate .item() was not caught; the check is not active")
            return 1
        print(f"ok   control: a deliberate .item() is caught ({message})")
        for name, make in cases:
            passed, checked, message = run(make, root)
            if passed and checked == STEPS - STEPS // EVERY:
                print(f"PASS {name}: {checked} non-logging steps without a host sync")
            else:
                failures += 1
                detail = message or f"only {checked} steps checked"
                print(f"FAIL {name}: {detail}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
