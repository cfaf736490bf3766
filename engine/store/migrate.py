"""Schema version checks and the programmatic Alembic upgrade run when a store opens.

Order of checks (each with a message that says what to do):
1. the configured ``database.schemaVersion`` must be one this code can write (:data:`SCHEMA_REVISIONS`);
2. a database that records a version newer than this code, or newer than configured, is refused: an older engine
   must never write into a newer schema;
3. otherwise Alembic upgrades to the revision of the configured version.

On PostgreSQL several engine processes may start at once against one database, so the upgrade runs under a
transaction-scoped advisory lock; PostgreSQL DDL is transactional, so a killed upgrade leaves nothing half-done.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, select

from engine.store.errors import SchemaVersionError, StoreNotFoundError
from engine.store.schema import SCHEMA_REVISIONS, SCHEMA_VERSION, SCHEMA_VERSION_KEY, store_meta

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x7F5A_1E57  # arbitrary constant shared by every engine process: "store migrations"


def recorded_version(conn: Connection) -> int | None:
    """The schema version recorded in the database, or None when the store tables do not exist yet."""
    if not inspect(conn).has_table(store_meta.name):
        return None
    value = conn.execute(select(store_meta.c.value).where(store_meta.c.key == SCHEMA_VERSION_KEY)).scalar()
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise SchemaVersionError(f"the database records schema version {value!r}, which is not a number") from None


def check_configured(schema_version: int) -> str:
    """The Alembic revision for ``schema_version``, or a clear error when this code cannot write that version."""
    revision = SCHEMA_REVISIONS.get(schema_version)
    if revision is None:
        known = ", ".join(str(v) for v in sorted(SCHEMA_REVISIONS))
        raise SchemaVersionError(
            f"database.schemaVersion is {schema_version}, but this engine writes schema version(s) {known} only"
        )
    return revision


def check_recorded(found: int | None, schema_version: int) -> None:
    if found is None:
        return
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database records schema version {found}, newer than this engine supports ({SCHEMA_VERSION}): "
            "upgrade the engine, or point database.url at another database"
        )
    if found > schema_version:
        raise SchemaVersionError(
            f"the database records schema version {found}, newer than database.schemaVersion ({schema_version}): "
            "downgrades are not supported; set database.schemaVersion to match"
        )


def upgrade(engine: Engine, schema_version: int) -> None:
    """Bring the database to ``schema_version`` (refusing a newer one). Blocking: call from a worker thread."""
    revision = check_configured(schema_version)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        check_recorded(recorded_version(conn), schema_version)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def verify_existing(engine: Engine, schema_version: int) -> int:
    """For read-only users (the CLI): the recorded version, or :class:`StoreNotFoundError` if there is no store."""
    check_configured(schema_version)
    with engine.connect() as conn:
        found = recorded_version(conn)
    if found is None:
        raise StoreNotFoundError("the database has no engine store yet (no tables): start the engine first")
    check_recorded(found, SCHEMA_VERSION)  # a newer version is refused
    check_revision(engine, SCHEMA_REVISIONS[SCHEMA_VERSION])
    return found


def check_revision(engine: Engine, target: str) -> None:
    """Refuse a database at an earlier revision than ``target``: this code selects the columns a later, additive
    revision added (``order_intents.kind``), so reading without upgrading would fail with a raw SQL error. A
    revision this code does not know (a newer engine's, additive) is read as it is."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    known = {rev.revision for rev in script.walk_revisions(base="base", head=target)}
    if current is not None and current != target and current in known:
        raise SchemaVersionError(
            f"the database is at revision {current}, older than this engine's {target}: readers never upgrade; "
            "start the engine once (it upgrades on open, additively), then read again"
        )
