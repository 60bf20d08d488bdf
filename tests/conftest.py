"""Shared fixtures: quiet single-process Trainers, the DDP harness, and a clean checkout.

Tests write only under ``tmp_path``. The checkout is compared before and after the
whole run (``git status --porcelain`` plus each listed file's content, files git ignores
left out): a test that creates or changes a file in it fails the run.
"""

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings
from lightning.pytorch import Trainer

from tests.ddp.cases import BATCH
from tests.ddp.harness import DDP_TIMEOUT, DdpBatch, run_ddp

# Property tests check properties, not speed: on a loaded 2-core machine a 0.3 ms example
# took 272 ms and failed hypothesis' default 200 ms deadline (timing lives in benchmarks/).
settings.register_profile("lightning-recipes", deadline=None)
settings.load_profile("lightning-recipes")

ROOT = Path(__file__).resolve().parents[1]
XDIST_WORKER = bool(os.environ.get("PYTEST_XDIST_WORKER"))
if XDIST_WORKER:
    # Two workers on two cores: one intra-op thread each, or they oversubscribe the cores
    # (torch's default is one thread per core: 2 x 2 threads made tiny steps crawl).
    torch.set_num_threads(1)
_BEFORE = pytest.StashKey[dict[str, str] | None]()
_REPORTED = pytest.StashKey[bool]()


def checkout_state(root: Path = ROOT) -> dict[str, str] | None:
    """Each new or changed file of the checkout -> its status and a hash of its content.

    None when ``root`` is not a git work tree (an unpacked sdist) or git is missing.
    """
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    listing = subprocess.run(
        [git, "status", "--porcelain", "-z", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    state: dict[str, str] = {}
    entries = iter(listing.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if "R" in status or "C" in status:
            next(entries, None)  # a rename or copy lists its source path next
        file = root / path
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "-"
        state[path] = f"{status} {digest}"
    return state


def checkout_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The paths whose status or content differ between two `checkout_state` results."""
    return sorted(
        path for path in before.keys() | after.keys() if before.get(path) != after.get(path)
    )


def _littered(config: pytest.Config) -> list[str]:
    before = config.stash.get(_BEFORE, None)
    after = checkout_state()
    if before is None or after is None:
        return []
    return checkout_changes(before, after)


def _message(paths: list[str]) -> str:
    return (
        "The tests created or changed these files in the checkout (tests must write only "
        "under tmp_path; or were they edited during the run?): " + ", ".join(paths)
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Record the checkout's state before any test (doctests included) runs."""
    session.config.stash[_BEFORE] = checkout_state()
    session.config.stash[_REPORTED] = False


@pytest.fixture(scope="session", autouse=True)
def clean_checkout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail (as an error at teardown of the last test) if the tests wrote into the checkout."""
    yield
    littered = _littered(request.config)
    if littered:
        request.config.stash[_REPORTED] = True
        pytest.fail(_message(littered), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check once more at the very end (doctests, or a run with no test under tests/)."""
    if session.config.stash.get(_REPORTED, False):
        return
    littered = _littered(session.config)
    if littered:
        session.config.stash[_REPORTED] = True
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"ERROR: {_message(littered)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., Trainer]:
    """Build a quiet CPU Trainer writing under tmp_path; keyword arguments override."""

    def build(**kwargs: Any) -> Trainer:
        defaults: dict[str, Any] = {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "enable_checkpointing": False,
            "logger": False,
            "default_root_dir": tmp_path,
        }
        defaults.update(kwargs)
        return Trainer(**defaults)

    return build


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """DDP tests wait for the whole batch: their time limit is the batch's. Under
    pytest-xdist they form one group (``--dist loadgroup``), run by one worker."""
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if item.get_closest_marker("ddp") is not None:
            item.add_marker(pytest.mark.timeout(DDP_TIMEOUT))
            if xdist:
                item.add_marker(pytest.mark.xdist_group("ddp"))


class _LazyBatch:
    """The DDP batch, launched at the first call of `get` (or at once with ``start``)."""

    def __init__(self, out: Path, start: bool) -> None:
        self.out = out
        self.batch = DdpBatch(BATCH, out) if start else None
        self.cases = {(name, json.dumps(dict(params), sort_keys=True)) for name, params in BATCH}

    def has(self, case: str, params: dict[str, Any]) -> bool:
        return (case, json.dumps(dict(params), sort_keys=True)) in self.cases

    def get(self) -> DdpBatch:
        if self.batch is None:
            self.batch = DdpBatch(BATCH, self.out)
        return self.batch


@pytest.fixture(scope="session", autouse=True)
def ddp_batch(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_LazyBatch | None]:
    """Start every case of tests/ddp/cases.py's BATCH in one 2-process launch, in the
    background, when the session's first test starts, if any selected test is a DDP one.

    Under pytest-xdist (``make test`` runs two workers) every worker collects every test,
    and the DDP tests all go to one worker (`pytest_collection_modifyitems`): there the
    batch starts with the first DDP test instead, so that it runs once, not once per worker.
    """
    wanted = any(item.get_closest_marker("ddp") for item in request.session.items)
    holder = (
        _LazyBatch(tmp_path_factory.mktemp("ddp-batch"), start=not XDIST_WORKER) if wanted else None
    )
    yield holder
    if holder is not None and holder.batch is not None:
        holder.batch.stop()


@pytest.fixture
def ddp(tmp_path: Path, ddp_batch: _LazyBatch | None) -> Callable[..., list[dict[str, Any]]]:
    """Run a case of tests/ddp/cases.py on 2 CPU processes; returns each rank's payload.

    A case of the batch is read from it; any other is launched on its own.
    """

    def run(case: str, **params: Any) -> list[dict[str, Any]]:
        if ddp_batch is not None and ddp_batch.has(case, params):
            return ddp_batch.get().result(case, params, timeout=DDP_TIMEOUT)
        return run_ddp(case, tmp_path, **params)

    return run
