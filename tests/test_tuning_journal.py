"""`tune`'s default storage: Optuna's journal file with heartbeats, appended atomically.

The journal is shared by every worker of a study on one machine: appends must never
interleave (no lock file is taken), a read that finds nothing new must not reopen the file,
and what Optuna's own reader (optuna-dashboard's) sees must be the same study.
"""

import json
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest

from tests.test_tuning_search import stored

optuna = pytest.importorskip("optuna")

from lightning_recipes.tuning.journal import (  # noqa: E402
    HeartbeatJournalStorage,
    UnsyncedJournalFile,
)


def _append_many(path: str, worker: int, count: int) -> None:
    journal = UnsyncedJournalFile(path)
    for i in range(count):  # lines of varied length, several logs per append now and then
        logs = [{"worker": worker, "i": i, "pad": "x" * (i % 97)}] * (1 + i % 3)
        journal.append_logs(logs)


def test_appends_of_several_processes_never_interleave_and_take_no_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "s.journal")
    UnsyncedJournalFile(path)  # creates it
    monkeypatch.setattr(os, "symlink", lambda *a: pytest.fail("a lock file was taken"))
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("an append synced the disk"))
    _append_many(path, worker=0, count=50)  # in this process: no lock, no sync
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, w, 400)) for w in (1, 2, 3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    lines = Path(path).read_bytes().split(b"\n")
    assert lines[-1] == b""
    logs = [json.loads(line) for line in lines[:-1]]  # every line whole
    per_worker = {w: [log["i"] for log in logs if log["worker"] == w] for w in (1, 2, 3)}
    expected = [i for i in range(400) for _ in range(1 + i % 3)]
    assert all(seen == expected for seen in per_worker.values())  # each in its own order
    # Optuna's reader reads the same lines
    assert [log["i"] for log in UnsyncedJournalFile(path).read_logs(0)] == [
        log["i"] for log in logs
    ]


def test_a_read_with_nothing_new_does_not_open_the_file_and_sees_other_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.journal"
    ours, theirs = UnsyncedJournalFile(path), UnsyncedJournalFile(path)
    ours.append_logs([{"n": 0}, {"n": 1}])
    assert [log["n"] for log in ours.read_logs(0)] == [0, 1]
    opened: list[Any] = []
    real_open = open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(args[0])
        return real_open(*args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert list(ours.read_logs(2)) == []
    assert opened == []  # one stat, no open
    theirs.append_logs([{"n": 2}])
    assert [log["n"] for log in ours.read_logs(2)] == [2]
    assert [log["n"] for log in ours.read_logs(0)] == [0, 1, 2]  # from the start: read again


def test_a_study_on_the_journal_is_the_study_optunas_own_reader_sees(tmp_path: Path) -> None:
    storage = HeartbeatJournalStorage(tmp_path / "s.journal", heartbeat_interval=10)
    study = optuna.create_study(storage=storage, study_name="s")

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.report(x, step=0)
        return x

    study.optimize(objective, n_trials=3)
    plain = optuna.load_study(study_name="s", storage=stored(tmp_path / "s.journal"))
    ours = [(t.params, t.value, t.intermediate_values, t.state) for t in study.trials]
    assert [(t.params, t.value, t.intermediate_values, t.state) for t in plain.trials] == ours


def test_a_partial_append_says_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = UnsyncedJournalFile(tmp_path / "s.journal")
    monkeypatch.setattr(os, "write", lambda fd, data: len(data) // 2)
    with pytest.raises(OSError, match="disk full"):
        journal.append_logs([{"n": 0}])


def test_the_journal_fails_a_running_trial_whose_heartbeat_stopped(tmp_path: Path) -> None:
    """Optuna's own heartbeat machinery, on the default journal storage."""
    storage = HeartbeatJournalStorage(tmp_path / "s.journal", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    alive, dead = study.ask(), study.ask()
    storage.record_heartbeat(alive._trial_id)
    storage.record_heartbeat(dead._trial_id)
    assert storage._get_stale_trial_ids(study._study_id) == []
    storage.set_trial_system_attr(dead._trial_id, "lightning_recipes:heartbeat", 0.0)
    assert storage._get_stale_trial_ids(study._study_id) == [dead._trial_id]
    optuna.storages.fail_stale_trials(study)
    states = {
        t.number: t.state.name
        for t in stored(tmp_path / "s.journal").get_all_trials(study._study_id)
    }
    assert states == {alive.number: "RUNNING", dead.number: "FAIL"}
    # Without heartbeats nothing is ever stale.
    assert HeartbeatJournalStorage(tmp_path / "s.journal")._get_stale_trial_ids(0) == []


def test_the_default_journal_survives_a_cut_last_line(tmp_path: Path) -> None:
    storage = HeartbeatJournalStorage(tmp_path / "s.journal", heartbeat_interval=10)
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    # A power cut while appending leaves the last line cut short: Optuna's reader skips it.
    with (tmp_path / "s.journal").open("ab") as journal:
        journal.write(b'{"op_code":4,"worker_id":"w","trial_id":1,"sta')
    again = optuna.load_study(study_name="s", storage=stored(tmp_path / "s.journal"))
    assert [t.params["x"] for t in again.trials] == [t.params["x"] for t in study.trials]
