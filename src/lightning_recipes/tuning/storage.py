"""Open an Optuna RDB storage that several processes may be creating at the same moment.

Optuna's ``RDBStorage`` creates its tables when it first connects to an empty database.
On PostgreSQL, two processes doing so at once (several ``tune`` workers started together
against a new database) race inside ``CREATE TYPE`` / ``CREATE TABLE`` and the loser fails
with ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``: a
known PostgreSQL behaviour, not an Optuna bug. `open_storage` serialises the creation with
a PostgreSQL advisory lock, and for any database retries a creation that lost such a race.
"""

import contextlib
import random
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_recipes._core.optional import require
from lightning_recipes.errors import config_error

if TYPE_CHECKING:
    from optuna.storages import BaseStorage, RDBStorage

__all__ = [
    "JOURNAL_SCHEME",
    "journal_path",
    "journal_url",
    "open_storage",
    "redact_url",
    "share_storage",
    "write_ahead_log",
]

JOURNAL_SCHEME = "journal://"
"""Storage URLs of Optuna journal files: ``journal://`` + the file's path."""


def redact_url(url: str) -> str:
    """A storage URL without its password, fit for messages, logs and reports.

    The one redaction of the library. Written by hand: SQLAlchemy's ``make_url`` reads an
    unescaped ``@`` in a password as the start of the host and would print the rest of
    the password (``mysql://a:p@ss@h/d`` -> ``a:***@ss@h``); this keeps everything up to
    the last ``@`` hidden.

    Args:
        url: A SQLAlchemy URL such as ``postgresql://user:secret@host/db``.

    Returns:
        The URL with the password replaced by ``***`` (unchanged if it has none).

    Examples:
        >>> redact_url("postgresql://tuner:secret@db.example:5432/studies")
        'postgresql://tuner:***@db.example:5432/studies'
        >>> redact_url("sqlite:///runs/s/study.db")
        'sqlite:///runs/s/study.db'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def journal_path(url: str) -> Path | None:
    """The journal file of a ``journal://`` URL, None for any other storage URL.

    Examples:
        >>> journal_path("journal:///runs/s/study.journal")
        PosixPath('/runs/s/study.journal')
        >>> journal_path("sqlite:///s.db") is None
        True
    """
    return Path(url[len(JOURNAL_SCHEME) :]) if url.startswith(JOURNAL_SCHEME) else None


def journal_url(path: str | Path) -> str:
    """The storage URL of a journal file (its absolute path).

    Examples:
        >>> journal_url("/runs/s/study.journal")
        'journal:///runs/s/study.journal'
    """
    return JOURNAL_SCHEME + str(Path(path).resolve())


# Storages lent by `share_storage` to the code running in this process (url -> storage).
_SHARED: dict[str, "BaseStorage"] = {}
_SHARED_LOCK = threading.Lock()


@contextlib.contextmanager
def share_storage(url: str, storage: "BaseStorage") -> Iterator[None]:
    """Within the block, `open_storage(url)` (without arguments) returns ``storage``.

    `tune` lends its open storage to the `TrialReporter` of a trial that it fits in the same
    process, which would otherwise open a second connection pool to the same database at
    every trial (about a tenth of a second each time). It lends the study's own storage
    object (for an RDB, Optuna's cache in front of it), so the reporter's pruner reads the
    finished trials from that cache instead of the database at every report.

    Args:
        url: The storage's URL.
        storage: The open storage.

    Yields:
        Nothing.
    """
    with _SHARED_LOCK:
        previous = _SHARED.get(url)
        _SHARED[url] = storage
    try:
        yield
    finally:
        with _SHARED_LOCK:
            if previous is None:
                _SHARED.pop(url, None)
            else:
                _SHARED[url] = previous


# One fixed advisory-lock key for "creating the Optuna schema" (any 64-bit integer will do).
_LOCK_KEY = zlib.crc32(b"lightning_recipes.tuning.storage") & 0x7FFFFFFF
_ATTEMPTS = 5


def _wal_pragmas(connection: Any, record: Any) -> None:
    del record
    cursor = connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def write_ahead_log(storage: "RDBStorage") -> None:
    """Make an SQLite storage commit to a write-ahead log, without a disk sync per commit.

    SQLite's default (a rollback journal, ``synchronous=FULL``) syncs the disk at every
    commit: 10-20 ms on a busy disk, and a trial commits some 30 times (its parameters,
    attributes, one report per epoch, heartbeats, its end), as long as a short trial
    itself. In WAL mode with ``synchronous=NORMAL`` a commit costs microseconds; a power
    cut may lose the last commits but never corrupts the file, and readers (the
    dashboard, other workers on this machine) do not block the writer. WAL needs shared
    memory: keep the file on a local disk (PostgreSQL serves several machines). The mode is
    stored in the file, so later processes opening it use the log too.

    Args:
        storage: An ``RDBStorage`` on an ``sqlite://`` URL; its open connections are
            closed so that every connection from now on sets the mode.
    """
    sqlalchemy = require("sqlalchemy", extra="tune", feature="lightning_recipes.tuning")
    engine = storage.engine
    if engine.dialect.name != "sqlite":
        return
    if not sqlalchemy.event.contains(engine, "connect", _wal_pragmas):
        sqlalchemy.event.listen(engine, "connect", _wal_pragmas)
    engine.dispose()


def open_storage(url: str, **rdb_kwargs: Any) -> "BaseStorage":
    """An Optuna storage for ``url``, safe when many processes open it at once.

    Args:
        url: A SQLAlchemy URL (``sqlite:///runs/s/study.db``, ``postgresql://u@host/db``...:
            an ``RDBStorage``) or ``journal://`` and a file's path (a
            `HeartbeatJournalStorage`, `tune`'s default).
        **rdb_kwargs: Passed to ``RDBStorage`` (``heartbeat_interval``, ``grace_period``,
            ``engine_kwargs``...); a journal takes the heartbeat ones.

    Within `share_storage` for ``url``, a call without ``rdb_kwargs`` returns the storage
    lent there.

    Returns:
        The storage, its tables created.

    Raises:
        RecipeConfigError: If ``url`` is not a database URL.
    """
    if not isinstance(url, str) or "://" not in url:
        raise config_error(
            "storage", url, "Pass a database URL, e.g. 'sqlite:///study.db' or 'postgresql://...'."
        )
    if not rdb_kwargs:
        with _SHARED_LOCK:
            shared = _SHARED.get(url)
        if shared is not None:
            return shared
    path = journal_path(url)
    if path is not None:
        require("optuna", extra="tune", feature="lightning_recipes.tuning")
        from lightning_recipes.tuning.journal import HeartbeatJournalStorage

        rdb_kwargs.pop("engine_kwargs", None)
        return HeartbeatJournalStorage(path, **rdb_kwargs)
    storages = require("optuna.storages", extra="tune", feature="lightning_recipes.tuning")
    sqlalchemy = require("sqlalchemy", extra="tune", feature="lightning_recipes.tuning")
    for attempt in range(_ATTEMPTS):
        try:
            if url.startswith("postgresql"):
                return _open_locked(storages, sqlalchemy, url, rdb_kwargs)
            storage: RDBStorage = storages.RDBStorage(url, **rdb_kwargs)
            return storage
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Another process created the same table or type between our check and our
            # CREATE; the next attempt finds it there.
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")  # pragma: no cover


def _open_locked(
    storages: Any, sqlalchemy: Any, url: str, rdb_kwargs: dict[str, Any]
) -> "RDBStorage":
    """Create the storage while holding a PostgreSQL advisory lock (one creator at a time)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    lock = sqlalchemy.text("SELECT pg_advisory_lock(:key)")
    unlock = sqlalchemy.text("SELECT pg_advisory_unlock(:key)")
    try:
        with engine.connect() as connection:
            connection.execute(lock, {"key": _LOCK_KEY})
            try:
                storage: RDBStorage = storages.RDBStorage(url, **rdb_kwargs)
            finally:
                connection.execute(unlock, {"key": _LOCK_KEY})
            return storage
    finally:
        engine.dispose()
