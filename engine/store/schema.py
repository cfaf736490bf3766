"""The store's tables (SQLAlchemy Core) and the schema version this code writes.

Core tables rather than ORM classes: every write is a small, explicit INSERT/UPDATE run by the single writer thread,
and every read returns plain rows, so nothing lazy or session-bound ever crosses the Trio/thread boundary.

The Alembic migrations in :mod:`engine.store.migrations` create exactly these tables; a test checks that a migrated
database and this metadata agree. Times are stored as UTC (:class:`UTCDateTime` refuses naive datetimes, so a local
time can never sneak in) and JSON documents keep the Gateway's camelCase field names untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import DateTime, TypeDecorator

#: The newest schema version this code knows (``database.schemaVersion`` in the seed config).
SCHEMA_VERSION = 2

#: Alembic revision that brings a database to each schema version this code can write.
SCHEMA_REVISIONS: dict[int, str] = {2: "v2_0003"}
"""Version 2 gained the ``risk_lockouts`` table in revision ``v2_0002`` and the intent ``kind`` (cancel, modify and
close intents beside places) in ``v2_0003``; both additive: an older version-2 database upgrades in place when it
is opened, and the seed's ``schemaVersion: 2`` keeps loading unchanged."""

#: Key of the row in ``store_meta`` that records the schema version.
SCHEMA_VERSION_KEY = "schema_version"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; SQLite gives naive values back, so UTC is re-attached on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store: pass a timezone-aware instant")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - SQLite with a foreign writer
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), never a BIGINT one.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

order_intents = Table(
    "order_intents",
    metadata,
    Column("intent_id", String(64), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("side", Integer, nullable=False),
    Column("size", Integer, nullable=False),
    Column("order_type", Integer, nullable=False),
    Column("limit_price", Float, nullable=True),
    Column("stop_price", Float, nullable=True),
    Column("trail_price", Float, nullable=True),
    Column("custom_tag", String(128), nullable=False),
    Column("gateway_order_id", BigInteger, nullable=True),
    Column("status", String(32), nullable=False),
    Column("filled_qty", Integer, nullable=False),
    Column("avg_price", Float, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False, server_default="place"),
    Column("position_before", Integer, nullable=True),
    UniqueConstraint("account_id", "custom_tag", name="uq_order_intents_account_tag"),
    Index("ix_order_intents_status", "status"),
    Index("ix_order_intents_updated_at", "updated_at"),
    Index("ix_order_intents_gateway_order_id", "gateway_order_id"),
)

order_transitions = Table(
    "order_transitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("order_ref", String(64), nullable=False),
    Column("account_id", BigInteger, nullable=True),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("cause", Text, nullable=False),
    Index("ix_order_transitions_at", "at"),
    Index("ix_order_transitions_order_ref", "order_ref"),
)

fills = Table(
    "fills",
    metadata,
    Column("trade_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account_id", BigInteger, nullable=False),
    Column("order_id", BigInteger, nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("side", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("size", Integer, nullable=False),
    Column("fees", Float, nullable=False),
    Column("commissions", Float, nullable=True),
    Column("pnl", Float, nullable=True),
    Column("voided", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_fills_at", "at"),
    Index("ix_fills_order_id", "order_id"),
)

enforcement_log = Table(
    "enforcement_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=True),
    Column("rule", String(64), nullable=False),
    Column("measured", JSON, nullable=False),
    Column("limit_value", Float, nullable=True),
    Column("actions", JSON, nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("triggered_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Index("ix_enforcement_log_triggered_at", "triggered_at"),
)

daily_unrealized_pnl = Table(
    "daily_unrealized_pnl",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("trading_day", Date, nullable=False),
    Column("unrealized_pnl", Float, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_daily_unrealized_pnl_at", "at"),
)

reconcile_findings = Table(
    "reconcile_findings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=True),
    Column("kind", String(64), nullable=False),
    Column("details", JSON, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_reconcile_findings_at", "at"),
)

component_events = Table(
    "component_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("component", String(64), nullable=False),
    Column("from_state", String(32), nullable=False),
    Column("to_state", String(32), nullable=False),
    Column("cause", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_component_events_at", "at"),
)

mirrored_state = Table(
    "mirrored_state",
    metadata,
    # One row per account, so engine processes watching different accounts never overwrite each other's state.
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("document", JSON, nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
)

risk_lockouts = Table(
    "risk_lockouts",
    metadata,
    # One row per account: the lockout in force (or the last one, once ``locked_until`` has passed). Why a table of
    # its own rather than the enforcement log: the log is fire-and-forget (a full queue drops, retention trims, its
    # JSON is a report, not a contract), while a lockout is a fact the engine acts on after a restart.
    Column("account_id", BigInteger, primary_key=True, autoincrement=False),
    Column("rule", String(64), nullable=False),
    Column("locked_since", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)
