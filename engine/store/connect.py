"""Building the SQLAlchemy engine for a database URL, with the pragmas and pool each backend needs.

SQLite (the default, a single file) gets WAL with ``synchronous=NORMAL``, a busy timeout and foreign keys on every
connection; the writer switches a transaction to ``synchronous=FULL`` when a record must survive power loss
(:func:`durable_commit`). An in-memory SQLite database lives in a single connection shared by the worker threads
(``StaticPool``): that is only safe because every store call is funnelled through one ``CapacityLimiter(1)``.
PostgreSQL URLs are routed to psycopg 3 (``postgresql://`` becomes ``postgresql+psycopg://``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from engine.store.errors import StoreError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=5000",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)


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
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


@contextmanager
def durable_commit(conn: Connection, durable: bool) -> Iterator[None]:
    """Run the enclosed transaction with ``synchronous=FULL`` on SQLite when ``durable`` (WAL fsync on commit).

    PostgreSQL commits are durable by default (``synchronous_commit=on``), so nothing changes there.
    """
    switch = durable and conn.dialect.name == "sqlite"
    if switch:
        conn.exec_driver_sql("PRAGMA synchronous=FULL")
        conn.commit()
    try:
        yield
    finally:
        if switch:
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
            conn.commit()
