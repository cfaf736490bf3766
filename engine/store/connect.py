"""Building the SQLAlchemy engine for a database URL, with the pragmas and pool each backend needs.

SQLite (the default, a single file) gets WAL with ``synchronous=NORMAL``, a busy timeout and foreign keys on every
connection; the writer switches a transaction to ``synchronous=FULL`` when a record must survive power loss
(:func:`durable_commit`). An in-memory SQLite database lives in a single connection shared by the worker threads
(``StaticPool``): that is only safe because every store call is funnelled through one ``CapacityLimiter(1)``.
PostgreSQL URLs are routed to psycopg 3 (``postgresql://`` becomes ``postgresql+psycopg://``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from engine.store.errors import StoreError

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
_WAL_SWITCH_ATTEMPTS = 50  # x 0.1 s: switching a new file to WAL needs an exclusive lock, and ignores busy_timeout


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the driver this project ships (psycopg 3 for PostgreSQL)."""
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy's ArgumentError quotes the raw text, which may hold a password: not chained
        raise StoreError("database.url is not a valid SQLAlchemy database URL (e.g. sqlite:///engine.db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"database.url uses backend {parsed.get_backend_name()!r}: only sqlite and postgresql are supported"
        )
    return parsed


def masked(url: URL) -> str:
    """The URL with any password hidden, for messages and logs."""
    return url.render_as_string(hide_password=True)


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def sqlite_path(url: URL) -> Path | None:
    """The file of a file-backed SQLite URL, or None (in-memory, or not SQLite)."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    assert url.database is not None
    return Path(url.database)


def build_engine(url: URL) -> Engine:
    """An engine for ``url`` (already normalized) with the backend's pragmas applied on every new connection."""
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if is_memory_sqlite(url):
            kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_pre_ping"] = True
        # A server that does not answer must not hang the writer (its batches are shielded from cancellation).
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(url, **kwargs)
    except ImportError:
        raise StoreError(
            "database.url names PostgreSQL, which needs the psycopg driver: pip install 'psycopg[binary]'"
        ) from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (which would run DDL outside any transaction, so a
    # crash during the first migration could leave half a schema); SQLAlchemy's "begin" emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            if "journal_mode" in pragma:
                _switch_to_wal(cursor, pragma)
            else:
                cursor.execute(pragma)
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any, pragma: str) -> None:
    """WAL is a property of the file; only the first connections to a new file race for it (when several engine
    processes or threads open a fresh database at once), and that race answers "locked" at once: retry briefly.
    Blocking sleep is fine here: connections are made in the store's worker thread, never on the Trio thread."""
    for attempt in range(_WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute(pragma)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(0.1)


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a transaction that reads and then
    # writes (a migration, a batch) can never fail half-way with SQLITE_BUSY when another process wrote meanwhile.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def durable_commit(conn: Connection, durable: bool) -> Iterator[None]:
    """Run the enclosed transaction with ``synchronous=FULL`` on SQLite when ``durable`` (WAL fsync on commit).

    PostgreSQL commits are durable by default (``synchronous_commit=on``), so nothing changes there.
    """
    switch = durable and conn.dialect.name == "sqlite"
    # Outside any transaction, on the driver connection (SQLAlchemy's autobegin would wrap it in BEGIN).
    raw = conn.connection.driver_connection if switch else None
    if raw is not None:
        raw.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        if raw is not None:
            raw.execute("PRAGMA synchronous=NORMAL")
