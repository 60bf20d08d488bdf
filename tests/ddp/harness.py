"""Run a DDP case in 2 CPU processes and collect what each rank decided.

Lightning's ``ddp`` strategy starts rank 1 by re-running ``sys.argv``; inside pytest that
would re-run pytest. So each case runs as ``python tests/ddp/worker.py CASE OUTDIR PARAMS``
in a subprocess: every rank saves a payload with `save_rank_result` (then waits at a
barrier), and `run_ddp` returns the payloads in rank order. This also keeps the pytest
process free of the process group and DDP environment variables.

Usage in a test::

    results = run_ddp("classifier_fit", tmp_path, max_epochs=2)
    assert_same_tensors(results[0]["state_dict"], results[1]["state_dict"])

New cases go in ``tests/ddp/cases.py``, decorated with ``@case``; those listed in its
``BATCH`` run together in one launch (`DdpBatch`), started in the background when the
session begins (tests/conftest.py): one pair of processes for all of them, instead of one
pair per case (the imports and the process group alone cost seconds per launch), and it
overlaps with the single-process tests on the other core.
"""

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

WORKER = Path(__file__).with_name("worker.py")
DDP_TIMEOUT = 900
"""Seconds a DDP test may wait for the batch (all its cases, run beside the other tests)."""
BATCH_CASE = "__batch__"
"""The worker's name for "run these cases one after the other in the same processes"."""
_DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")


def run_ddp(
    case: str, tmp_path: Path, *, devices: int = 2, timeout: float = 270, **params: Any
) -> list[dict[str, Any]]:
    """Run ``case`` under ``strategy="ddp"`` on ``devices`` CPU processes.

    Returns one payload per rank, in rank order. Fails with the processes' output when the
    run fails or a rank saved nothing. ``timeout`` only catches a hang (a collective call
    made by some ranks only): a case takes 15-20 s on a quiet machine and several times
    that on a loaded 2-core one, so it is as long as pytest's own limit (300 s) allows
    while still failing with the ranks' output.
    """
    out = tmp_path / f"ddp-{case}"
    proc = _launch(case, out, params, devices)
    status, stdout, stderr = _wait(proc, timeout)
    return _payloads(case, out, devices, proc.returncode, status, stdout, stderr)


def _launch(case: str, out: Path, params: Any, devices: int) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _DDP_ENV}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", DDP_TEST_DEVICES=str(devices))
    cmd = [sys.executable, str(WORKER), case, str(out), json.dumps(params)]
    # The ranks run in a folder of their own, not in ``out``: a Trainer's default_root_dir
    # equal to the current folder counts as unset (nothing is written there unasked).
    cwd = out / "cwd"
    cwd.mkdir(exist_ok=True)
    # A new session, so that a hung run can be killed with every rank it started.
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str, str]:
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        status = f"exited with {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        status = f"hung for {timeout} s (a collective call made by only some ranks?)"
    return status, stdout, stderr


def _payloads(
    case: str, out: Path, devices: int, code: int | None, status: str, stdout: str, stderr: str
) -> list[dict[str, Any]]:
    files = sorted(out.glob("rank*.pt"))
    if len(files) != devices or (code != 0 and not files):
        raise AssertionError(
            f"DDP case {case!r} {status}; {len(files)} of {devices} ranks saved a result.\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-8000:]}"
        )
    return [torch.load(f, weights_only=False) for f in files]


def case_folder(index: int, case: str) -> str:
    """The folder of the ``index``-th case of a batch."""
    return f"{index:02d}-{case}"


class DdpBatch:
    """Cases run one after the other in one 2-process DDP launch, started at once.

    Args:
        cases: ``(case, params)`` pairs of tests/ddp/cases.py.
        out: Where the ranks save each case's payloads (a folder per case).
        devices: Processes.
    """

    def __init__(
        self, cases: Sequence[tuple[str, Mapping[str, Any]]], out: Path, devices: int = 2
    ) -> None:
        self.cases = [(name, json.dumps(dict(params), sort_keys=True)) for name, params in cases]
        self.out = out
        self.devices = devices
        self.proc = _launch(BATCH_CASE, out, [[n, dict(p)] for n, p in cases], devices)
        self.done: tuple[str, str, str] | None = None

    def has(self, case: str, params: Mapping[str, Any]) -> bool:
        """Whether the batch runs ``case`` with ``params``."""
        return (case, json.dumps(dict(params), sort_keys=True)) in self.cases

    def result(
        self, case: str, params: Mapping[str, Any], timeout: float = DDP_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Each rank's payload of ``case`` (waits for the whole batch, once)."""
        if self.done is None:
            self.done = _wait(self.proc, timeout)
        index = self.cases.index((case, json.dumps(dict(params), sort_keys=True)))
        folder = self.out / case_folder(index, case)
        return _payloads(case, folder, self.devices, self.proc.returncode, *self.done)

    def stop(self) -> None:
        """Kill the launch if it still runs (a session that ends early)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


def assert_same_tensors(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
    """Assert two state dicts hold the same keys and bitwise-equal tensors."""
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs between ranks"
