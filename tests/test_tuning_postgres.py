"""Two worker processes share one Optuna study in a real, throwaway PostgreSQL server.

The server is the Debian ``postgresql`` package's (``.ci/run`` installs it when missing):
``initdb`` and ``pg_ctl`` on a temporary folder, run as an unprivileged user when the tests
run as root, listening on 127.0.0.1 at a free port, stopped and deleted afterwards. The
test is skipped, with the reason, only where those programs are not installed.

Each worker is this file run as a script (``python tests/test_tuning_postgres.py ...``): it
joins the study by name (``create_study(load_if_exists=True)``, as several ``tune``
processes on different hosts do), and runs its trials, each a real Lightning fit with a
`TrialReporter` that reports every epoch to the trial in PostgreSQL.
"""

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

N_TRIALS = 3  # per worker
STUDY = "shared"
WORKERS = ("alpha", "beta")
PRUNER_ARGS = {"n_startup_trials": 2}


def pg_program(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or in Debian's versioned folder (newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unprivileged_user() -> str | None:
    """The user to run the server as: None unless we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.fail("running as root, and there is neither a 'postgres' nor a 'nobody' user")


def run_as(user: str | None, cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL server; yield its URL without a database."""
    initdb, pg_ctl = pg_program("initdb"), pg_program("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server programs (initdb, pg_ctl) are not installed: on Debian, "
            "apt-get install postgresql (.ci/run does this)"
        )
    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="lightning-recipes-pg-"))
    data = root / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port()
    started = False
    try:
        init = run_as(user, [initdb, "-D", str(data), "-A", "trust", "-U", "tuner",
                             "-E", "UTF8", "--no-sync"], root)  # fmt: skip
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        start = run_as(
            user, [pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options,
                   "-w", "-t", "60", "start"], root)  # fmt: skip
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        assert start.returncode == 0, f"pg_ctl start failed:\n{start.stderr}\n{log}"
        started = True
        yield f"postgresql://tuner@127.0.0.1:{port}"
    finally:
        if started:
            run_as(user, [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database for this test."""
    import psycopg  # the driver is pinned in the `tune` extra: missing is a failure

    name = "db_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


def start_workers(args: list[list[str]], tmp_path: Path) -> list[str]:
    """Run this file as a script once per argument list, all at once; return their outputs."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    logs = [tmp_path / f"worker{i}.log" for i in range(len(args))]
    procs = []
    for arg, log in zip(args, logs, strict=True):
        with log.open("w") as sink:
            procs.append(
                subprocess.Popen(
                    [sys.executable, __file__, *arg],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=tmp_path,
                )
            )
    outputs = []
    for proc, log in zip(procs, logs, strict=True):
        try:
            proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = log.read_text()
        assert proc.returncode == 0, f"worker {proc.args} failed:\n{output[-6000:]}"
        outputs.append(output)
    return outputs


def test_processes_started_together_create_the_schema_once(
    postgres_url: str, tmp_path: Path
) -> None:
    # Plain RDBStorage(url) in several processes at once on an empty PostgreSQL database
    # fails in the losers with "duplicate key ... pg_type_typname_nsp_index".
    import optuna

    outputs = start_workers([["race", postgres_url, "3"] for _ in range(3)], tmp_path)
    assert all("joined" in output for output in outputs)
    study = optuna.load_study(study_name=STUDY, storage=postgres_url)
    assert len(study.trials) == 3


def test_two_worker_processes_share_one_postgresql_study(postgres_url: str, tmp_path: Path) -> None:
    import optuna

    runs = [[postgres_url, STUDY, name, str(N_TRIALS), str(tmp_path)] for name in WORKERS]
    start_workers(runs, tmp_path)

    study = optuna.load_study(study_name=STUDY, storage=postgres_url)
    trials = study.get_trials()
    assert len(trials) == N_TRIALS * len(WORKERS)
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    by_worker = {name: [t for t in trials if t.user_attrs["worker"] == name] for name in WORKERS}
    assert all(len(mine) == N_TRIALS for mine in by_worker.values()), by_worker
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for trial in trials:
        assert trial.state in finished, trial
        # Every epoch's report reached PostgreSQL from inside the fit.
        assert trial.intermediate_values, trial
        assert trial.user_attrs["epochs"] == len(trial.intermediate_values)
    # They ran at the same time: each worker started a trial before the other finished.
    spans = {
        name: (min(t.datetime_start for t in mine), max(t.datetime_complete for t in mine))
        for name, mine in by_worker.items()
    }
    (a_start, a_end), (b_start, b_end) = spans.values()
    assert a_start < b_end
    assert b_start < a_end
    assert study.best_trial.state == optuna.trial.TrialState.COMPLETE


def worker(url: str, study_name: str, name: str, n_trials: int, out: Path) -> None:
    """Join the study and run ``n_trials`` trials, each a Lightning fit with a TrialReporter."""
    import optuna
    from lightning.pytorch import Trainer, seed_everything

    from lightning_recipes.data import DigitsDataModule
    from lightning_recipes.modules import MLP, Classifier
    from lightning_recipes.tuning import TrialReporter, build_pruner, finish_trial, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        # open_storage: both workers create the schema in an empty database at once.
        storage=open_storage(url),
        load_if_exists=True,  # both workers race to create it: one creates, one joins
        sampler=optuna.samplers.RandomSampler(seed=WORKERS.index(name)),
        pruner=build_pruner("median", **PRUNER_ARGS),
    )
    data = DigitsDataModule(batch_size=64)
    for _ in range(n_trials):
        trial = study.ask()
        trial.set_user_attr("worker", name)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        reporter = TrialReporter(
            url, study_name, trial._trial_id, pruner="median", pruner_args=PRUNER_ARGS
        )
        seed_everything(trial.number)
        trainer = Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=3,
            limit_train_batches=4,
            callbacks=[reporter],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=out / name,
        )
        trainer.fit(Classifier(MLP(64, [16]), num_classes=10, lr=lr), datamodule=data)
        trial.set_user_attr("epochs", reporter.epochs_run)
        state = finish_trial(study, trial, reporter.result())
        print(f"worker {name}: trial {trial.number} lr={lr:.2e} -> {state.name}", flush=True)


def race(url: str, racers: int) -> None:
    """Once all racers are ready (files in the working folder), open the storage, add a trial."""
    import optuna

    from lightning_recipes.tuning import open_storage

    Path(f"ready-{os.getpid()}").touch()
    while len(list(Path().glob("ready-*"))) < racers:
        time.sleep(0.005)
    ready = time.time()
    storage = open_storage(url)
    study = optuna.create_study(study_name=STUDY, storage=storage, load_if_exists=True)
    study.tell(study.ask(), 0.0)
    print(f"joined after {time.time() - ready:.1f} s", flush=True)


if __name__ == "__main__" and sys.argv[1] == "race":
    race(sys.argv[2], int(sys.argv[3]))
elif __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
