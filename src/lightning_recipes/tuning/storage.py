"""Open an Optuna RDB storage that several processes may be creating at the same moment.

Optuna's ``RDBStorage`` creates its tables when it first connects to an empty database.
On PostgreSQL, two processes doing so at once (several ``tune`` workers started together
against a new database) race inside ``CREATE TYPE`` / ``CREATE TABLE`` and the loser fails
with ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``: a
known PostgreSQL behaviour, not an Optuna bug. `open_storage` serialises the creation with
a PostgreSQL advisory lock, and for any database retries a creation that lost such a race.
"""

import random
import time
import zlib
from typing import TYPE_CHECKING, Any

from lightning_recipes._optional import require
from lightning_recipes.errors import config_error

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

__all__ = ["open_storage"]

# One fixed advisory-lock key for "creating the Optuna schema" (any 64-bit integer will do).
_LOCK_KEY = zlib.crc32(b"lightning_recipes.tuning.storage") & 0x7FFFFFFF
_ATTEMPTS = 5


def open_storage(url: str, **rdb_kwargs: Any) -> "RDBStorage":
    """An `optuna.storages.RDBStorage` for ``url``, safe when many processes open it at once.

    Args:
        url: A SQLAlchemy URL: ``sqlite:///runs/s/study.db``, ``postgresql://u@host/db``...
        **rdb_kwargs: Passed to ``RDBStorage`` (``heartbeat_interval``, ``grace_period``,
            ``engine_kwargs``...).

    Returns:
        The storage, its tables created.

    Raises:
        RecipeConfigError: If ``url`` is not a database URL.
    """
    if not isinstance(url, str) or "://" not in url:
        raise config_error(
            "storage", url, "Pass a database URL, e.g. 'sqlite:///study.db' or 'postgresql://...'."
        )
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
