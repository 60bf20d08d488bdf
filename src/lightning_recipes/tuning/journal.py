"""`tune`'s default storage: an Optuna journal file that keeps heartbeats.

Optuna's ``JournalStorage`` appends each change of a study to a file and replays it in
memory: a trial's report costs ~0.2 ms against ~2.5 ms through SQLite's ``RDBStorage``
(60-epoch trials: 11 ms against 146 ms of CPU per trial, measured), and several processes
on one machine share the file (appends are atomic). It has no heartbeats, so a trial whose
process died would stay RUNNING forever; `HeartbeatJournalStorage` adds them through
Optuna's own ``BaseHeartbeat`` interface (the one ``RDBStorage`` implements): the beats
are trial system attributes, and Optuna's machinery (the heartbeat thread of
``study.optimize``, ``fail_stale_trials``, ``RetryHeartbeatStaleTrialCallback``) does the
rest. Beats use this machine's clock: keep the file on a disk of one machine (PostgreSQL
serves several).

Appends are single atomic writes to the operating system, not each synced to the disk
(`UnsyncedJournalFile`), as SQLite's write-ahead log with ``synchronous=NORMAL``
(`lightning_recipes.tuning.storage.write_ahead_log`) does.

The storage URL is ``journal://`` followed by the file's path (``journal:///abs/study.journal``,
`lightning_recipes.tuning.storage.journal_url`). This module imports Optuna (the ``tune``
extra): `open_storage` imports it when a URL asks for a journal.
"""

import json
import os
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from optuna.storages import JournalStorage

# Optuna's interface for storages with heartbeats has no public import path (RDBStorage
# implements it from the same module); tests/test_tuning_journal.py pins the behaviour.
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState
from typing_extensions import override

__all__ = ["HeartbeatJournalStorage", "UnsyncedJournalFile"]

_BEAT = "lightning_recipes:heartbeat"


class UnsyncedJournalFile(JournalFileBackend):
    """Optuna's journal file, appended atomically: no lock file, no sync per append.

    Hand-written (a documented cost): Optuna's ``JournalFileBackend`` takes a lock file
    (a symbolic link created and removed), opens the file, writes, calls ``fsync`` and
    closes it for every append, and a study appends some 12 times per trial (its
    parameters, attributes, heartbeats, one report per epoch, its end). Measured in
    ``benchmarks/peers_tune.py``, the syncs and then the lock were the largest part of what
    the journal cost a study of short trials (~0.1 ms a lock, ~25 ms a study of 12 trials).

    Here an append is one ``write`` of whole lines to the file opened with ``O_APPEND``:
    POSIX moves the offset to the end and writes with no other change to the file in
    between, so appends of several processes on one machine never interleave, with or
    without a lock (the journal's replay needs nothing more: Optuna's Redis journal has no
    lock either). Optuna's own writers, with their lock, can share the file. A written line
    is in the operating system's cache: every process of this machine reads it at once,
    and it survives the death of the process that wrote it (a killed trial, a Ctrl-C);
    only a power cut or a crash of the machine can lose the last appends, as with SQLite's
    ``synchronous=NORMAL``. Optuna's reader skips a last line cut short, so the journal
    stays readable: the lost trials run again. Keep the file on a local disk (not NFS,
    where appends are not atomic), as the heartbeats need anyway.

    A read finds nothing new at the cost of one ``stat`` when the file has not grown since
    the last read (Optuna's reader opens the file on every access of the storage).

    Args:
        path: The journal file (created if missing).

    Examples:
        >>> import tempfile, optuna
        >>> folder = tempfile.mkdtemp()
        >>> storage = optuna.storages.JournalStorage(UnsyncedJournalFile(f"{folder}/s.journal"))
        >>> optuna.create_study(storage=storage).optimize(lambda t: t.suggest_float("x", 0, 1), 2)
        >>> plain = optuna.storages.journal.JournalFileBackend(f"{folder}/s.journal")
        >>> read = optuna.storages.JournalStorage(plain)  # Optuna's own reader
        >>> len(optuna.load_study(study_name=None, storage=read).trials)
        2
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(str(path))
        self.path = Path(path)
        # (log number a read stopped at, the file's size before that read)
        self._read_to: tuple[int, int] = (-1, -1)

    @override
    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        data = lines.encode("utf-8")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(descriptor, data)  # one write: atomic among appends
        finally:
            os.close(descriptor)
        if written != len(data):  # only a full disk (or quota) writes part of it
            raise OSError(
                f"Only {written} of {len(data)} bytes were appended to {self.path} (is the "
                "disk full?); the study cannot go on until it has room."
            )

    @override
    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        size = os.stat(self.path).st_size
        if (log_number_from, size) == self._read_to:
            return  # nothing appended since the last read reached this log number
        number = log_number_from
        for log in super().read_logs(log_number_from):
            number += 1
            yield log
        # Optuna's reader read at least `size` bytes (up to a last line cut short)
        self._read_to = (number, size)


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A ``JournalStorage`` on a file, with heartbeats.

    Args:
        path: The journal file (created with its folder).
        heartbeat_interval: Seconds between a running trial's beats; None: no heartbeats.
        grace_period: Seconds without a beat after which a RUNNING trial is stale
            (default: twice ``heartbeat_interval``).
        heartbeat_stale_trial_callback: Called on each trial failed as stale (Optuna's
            ``RetryHeartbeatStaleTrialCallback`` runs its parameters again).

    Examples:
        >>> import tempfile, optuna
        >>> folder = tempfile.mkdtemp()
        >>> storage = HeartbeatJournalStorage(f"{folder}/s.journal", heartbeat_interval=10)
        >>> study = optuna.create_study(storage=storage)
        >>> study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        >>> len(optuna.load_study(study_name=study.study_name, storage=storage).trials)
        2
    """

    def __init__(
        self,
        path: str | Path,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        heartbeat_stale_trial_callback: Callable[[Any, FrozenTrial], None] | None = None,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(UnsyncedJournalFile(path))
        self.path = Path(path)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = (
            grace_period
            if grace_period is not None or heartbeat_interval is None
            else 2 * heartbeat_interval
        )
        self.stale_callback = heartbeat_stale_trial_callback

    @override
    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, _BEAT, time.time())

    @override
    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if self.grace_period is None:
            return []
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = trial.system_attrs.get(_BEAT)
            if beat is None:  # not beaten yet: it counts from its start
                start = trial.datetime_start
                beat = start.timestamp() if start is not None else now
            if now - float(beat) > self.grace_period:
                stale.append(trial._trial_id)
        return stale

    @override
    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    @override
    def get_heartbeat_stale_trial_callback(self) -> Callable[[Any, FrozenTrial], None] | None:
        return self.stale_callback
