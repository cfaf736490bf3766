"""Schema creation, the recorded schema version, and the refusals that protect a database from the wrong code."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.store import SCHEMA_VERSION, SchemaVersionError, Store, StoreError, StoreNotFoundError
from engine.store.connect import build_engine, normalize_url
from engine.store.schema import SCHEMA_REVISIONS, metadata
from tests.store.helpers import database_at_revision


def _open(url: str, **kwargs: object) -> Store:
    return Store.open(url, **kwargs)  # type: ignore[arg-type]


def test_fresh_database_gets_every_table_and_records_version(db_url: str) -> None:
    store = _open(db_url, schema_version=2)
    try:
        with store.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            version = conn.execute(sa.text("SELECT value FROM store_meta WHERE key = 'schema_version'")).scalar()
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        store.close()
    assert set(metadata.tables) <= tables
    assert version == str(SCHEMA_VERSION) == "2"
    assert revision == SCHEMA_REVISIONS[2]


def test_migrated_database_matches_the_code_tables(db_url: str) -> None:
    store = _open(db_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        store.close()
    assert diff == []


def test_reopening_is_idempotent_and_keeps_data(sqlite_url: str) -> None:
    for _ in range(2):
        store = _open(sqlite_url)
        with store.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO store_meta (key, value) VALUES (:k, 'x')"), {"k": f"probe{_}"})
        store.close()
    store = _open(sqlite_url)
    with store.engine.connect() as conn:
        keys = set(conn.execute(sa.text("SELECT key FROM store_meta")).scalars())
    store.close()
    assert {"schema_version", "probe0", "probe1"} <= keys


def test_database_recording_a_newer_version_is_refused(db_url: str) -> None:
    _open(db_url).close()
    engine = build_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE store_meta SET value = '3' WHERE key = 'schema_version'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=r"schema version 3, newer than this engine supports \(2\)"):
        _open(db_url)
    with pytest.raises(SchemaVersionError, match="newer than this engine"):
        _open(db_url, migrate_schema=False)


@pytest.mark.parametrize("version", [1, 3])
def test_configured_version_the_code_cannot_write_is_refused(sqlite_url: str, version: int) -> None:
    with pytest.raises(SchemaVersionError, match=f"database.schemaVersion is {version}"):
        _open(sqlite_url, schema_version=version)


def test_read_only_open_does_not_create_a_database(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(StoreNotFoundError, match="no database at"):
        _open(f"sqlite:///{path}", migrate_schema=False)
    assert not path.exists()


def test_read_only_open_of_an_empty_postgres_database_says_no_store(pg_url: str) -> None:
    with pytest.raises(StoreNotFoundError, match="no engine store yet"):
        _open(pg_url, migrate_schema=False)


def test_sqlite_pragmas_are_applied(sqlite_url: str) -> None:
    store = _open(sqlite_url)
    with store.engine.connect() as conn:
        pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                   for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")}
    store.close()
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1, "synchronous": 1}


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a valid SQLAlchemy database URL"), ("mysql://u:secretpw@h/db", "only sqlite and postgresql")],
)
def test_bad_urls_are_named_without_leaking_the_password(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        _open(url)
    assert "secretpw" not in str(info.value)
    assert info.value.__cause__ is None or "secretpw" not in str(info.value.__cause__)


def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError, match=r"cannot open the database at postgresql\+psycopg://engine:\*\*\*@") as info:
        _open(f"postgresql://engine:hunter2secret@127.0.0.1:{port}/engine")
    assert "hunter2secret" not in str(info.value)


async def test_read_only_open_of_a_database_an_older_revision_left_says_to_upgrade(tmp_path: Path) -> None:
    """A reader (the CLI) never migrates; a version-2 database at an earlier revision lacks columns this code selects
    (``order_intents.kind``), so reading it would fail with a raw SQL error: the open says what to do instead."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database_at_revision(url, "v2_0001")  # what an engine of the first revision left behind
    with pytest.raises(SchemaVersionError, match=r"revision v2_0001.*start the engine once"):
        _open(url, migrate_schema=False)
    store = _open(url)  # the engine's own open upgrades it; a reader then reads
    store.close()
    reader = _open(url, migrate_schema=False)
    try:
        assert await reader.history("orders") == []
    finally:
        reader.close()
