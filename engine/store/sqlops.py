"""The blocking SQL behind every store call: run only in a worker thread, one call at a time.

:class:`~engine.store.store.Store` funnels each of these through ``trio.to_thread.run_sync`` with its single
``CapacityLimiter(1)``; nothing here knows about Trio. Writes take an open transaction and add rows to it, so the
caller decides what commits together (a batch of journal records, or one awaited record).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store import schema
from engine.store.errors import StoreError
from engine.store.records import (
    UNRESOLVED_STATUSES,
    AccountLockout,
    ComponentEvent,
    EnforcementEntry,
    Fill,
    OrderIntent,
    OrderTransition,
    OrderUpdate,
    PnlSnapshot,
    ReconcileFinding,
    Record,
    SavedState,
    StateSnapshot,
    StoredIntent,
)
from engine.store.retention import RetentionPolicy

#: ``history`` kinds -> (table, time column used for ``since`` and ordering).
HISTORY_KINDS: dict[str, tuple[Table, str]] = {
    "orders": (schema.order_intents, "updated_at"),
    "transitions": (schema.order_transitions, "at"),
    "fills": (schema.fills, "at"),
    "enforcement": (schema.enforcement_log, "triggered_at"),
    "pnl": (schema.daily_unrealized_pnl, "at"),
    "reconcile": (schema.reconcile_findings, "at"),
    "connection": (schema.component_events, "at"),
}

_FILL_UPDATABLE = ("price", "size", "fees", "commissions", "pnl", "voided", "at")


def write(conn: Connection, record: Record) -> None:
    """Add ``record`` to the open transaction on ``conn`` (the writer commits)."""
    match record:
        case OrderIntent():
            conn.execute(insert(schema.order_intents).values(**asdict(record), updated_at=record.created_at))
        case OrderUpdate():
            changes: dict[str, Any] = {
                name: value
                for name in ("status", "gateway_order_id", "filled_qty", "avg_price")
                if (value := getattr(record, name)) is not None
            }
            changes["updated_at"] = record.at
            table = schema.order_intents
            result = conn.execute(update(table).where(table.c.intent_id == record.intent_id).values(**changes))
            if result.rowcount == 0:
                raise StoreError(f"order update for unknown intent {record.intent_id!r}: record the intent first")
        case OrderTransition():
            conn.execute(insert(schema.order_transitions).values(**asdict(record)))
        case Fill():
            _upsert_fill(conn, record)
        case EnforcementEntry():
            values = asdict(record)
            values["limit_value"] = values.pop("limit")
            values["measured"] = dict(record.measured)
            values["actions"] = list(record.actions)
            conn.execute(insert(schema.enforcement_log).values(**values))
        case PnlSnapshot():
            conn.execute(insert(schema.daily_unrealized_pnl).values(**asdict(record)))
        case ReconcileFinding():
            conn.execute(insert(schema.reconcile_findings).values(**asdict(record) | {"details": dict(record.details)}))
        case ComponentEvent():
            conn.execute(insert(schema.component_events).values(**asdict(record)))
        case StateSnapshot():
            _save_state(conn, record)
        case AccountLockout():
            _upsert_lockout(conn, record)
        case _:  # pragma: no cover - guarded by the type checker
            raise TypeError(f"not a store record: {type(record).__name__}")


def _upsert(conn: Connection, table: Table, values: dict[str, Any], key: str, updatable: Iterable[str]) -> None:
    """INSERT, or UPDATE ``updatable`` of the row with the same ``key`` (both dialects spell it ON CONFLICT)."""
    stmt: Any
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values(**values)
    else:
        stmt = sqlite.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[key]], set_={name: stmt.excluded[name] for name in updatable}
    )
    conn.execute(stmt)


def _upsert_fill(conn: Connection, record: Fill) -> None:
    _upsert(conn, schema.fills, asdict(record), "trade_id", _FILL_UPDATABLE)


_LOCKOUT_COLUMNS = {"rule": "rule", "since": "locked_since", "until": "locked_until", "reason": "reason",
                    "at": "recorded_at"}
"""AccountLockout field -> risk_lockouts column (besides the key, account_id)."""


def _upsert_lockout(conn: Connection, record: AccountLockout) -> None:
    values = {column: getattr(record, name) for name, column in _LOCKOUT_COLUMNS.items()}
    _upsert(conn, schema.risk_lockouts, {"account_id": record.account_id, **values}, "account_id", values)


def active_lockouts(conn: Connection, now: datetime, account_ids: Iterable[int] | None = None) -> list[AccountLockout]:
    """The lockouts still in force at ``now`` (``until`` strictly later), by account."""
    if now.tzinfo is None:
        raise ValueError("active_lockouts needs a timezone-aware 'now'")
    table = schema.risk_lockouts
    query = select(table).where(table.c.locked_until > now).order_by(table.c.account_id)
    if account_ids is not None:
        query = query.where(table.c.account_id.in_(list(account_ids)))
    return [
        AccountLockout(account_id=row.account_id, **{name: row._mapping[column]
                                                     for name, column in _LOCKOUT_COLUMNS.items()})
        for row in conn.execute(query)
    ]


def _account_of(item: Mapping[str, Any], key: str, what: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise StoreError(f"state snapshot: a {what} has no integer {key!r} (got {value!r})")
    return value


def _save_state(conn: Connection, record: StateSnapshot) -> None:
    documents: dict[int, dict[str, Any]] = {}

    def doc(account_id: int) -> dict[str, Any]:
        return documents.setdefault(account_id, {"account": None, "positions": [], "orders": []})

    for account in record.accounts:
        doc(_account_of(account, "id", "account"))["account"] = dict(account)
    for position in record.positions:
        doc(_account_of(position, "accountId", "position"))["positions"].append(dict(position))
    for order in record.orders:
        doc(_account_of(order, "accountId", "order"))["orders"].append(dict(order))
    if not documents:
        return
    table = schema.mirrored_state
    conn.execute(delete(table).where(table.c.account_id.in_(list(documents))))
    conn.execute(
        insert(table),
        [{"account_id": a, "document": d, "saved_at": record.at} for a, d in sorted(documents.items())],
    )


def load_state(conn: Connection, account_ids: Iterable[int] | None = None) -> SavedState:
    table = schema.mirrored_state
    query = select(table).order_by(table.c.account_id)
    if account_ids is not None:
        query = query.where(table.c.account_id.in_(list(account_ids)))
    accounts: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    saved_at: datetime | None = None
    for row in conn.execute(query):
        document = row.document
        if document.get("account") is not None:
            accounts.append(document["account"])
        positions.extend(document.get("positions", []))
        orders.extend(document.get("orders", []))
        saved_at = row.saved_at if saved_at is None else max(saved_at, row.saved_at)
    return SavedState(accounts=accounts, positions=positions, orders=orders, saved_at=saved_at)


_INTENT_FIELDS = tuple(f.name for f in fields(StoredIntent))


def _intent(row: Any) -> StoredIntent:
    mapping = row._mapping
    return StoredIntent(**{name: mapping[name] for name in _INTENT_FIELDS})


def unresolved_intents(conn: Connection, statuses: Iterable[str] = UNRESOLVED_STATUSES) -> list[StoredIntent]:
    table = schema.order_intents
    query = (
        select(table)
        .where(table.c.status.in_(sorted(statuses)))
        .order_by(table.c.created_at, table.c.intent_id)
    )
    return [_intent(row) for row in conn.execute(query)]


def get_intent(conn: Connection, *, intent_id: str | None = None, account_id: int | None = None,
               custom_tag: str | None = None) -> StoredIntent | None:
    table = schema.order_intents
    if intent_id is not None:
        query = select(table).where(table.c.intent_id == intent_id)
    elif account_id is not None and custom_tag is not None:
        query = select(table).where(table.c.account_id == account_id, table.c.custom_tag == custom_tag)
    else:
        raise ValueError("get_intent needs intent_id, or account_id with custom_tag")
    row = conn.execute(query).first()
    return None if row is None else _intent(row)


def history(
    conn: Connection, kind: str, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    try:
        table, time_column = HISTORY_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown history kind {kind!r}; expected one of {', '.join(HISTORY_KINDS)}") from None
    column = table.c[time_column]
    query = select(table).order_by(column, *table.primary_key.columns)
    if since is not None:
        query = query.where(column >= since)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def apply_retention(conn: Connection, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete rows older than each window (strictly before ``now - days``); returns the count per table.

    Orders: an intent whose outcome is still unknown is never deleted, however old.
    """
    if now.tzinfo is None:
        raise ValueError("apply_retention needs a timezone-aware 'now'")
    now = now.astimezone(UTC)
    pnl_cut = now - timedelta(days=policy.daily_unrealized_pnl)
    enforcement_cut = now - timedelta(days=policy.enforcement_logs)
    orders_cut = now - timedelta(days=policy.order_history)
    intents = schema.order_intents
    statements = {
        "daily_unrealized_pnl": delete(schema.daily_unrealized_pnl).where(schema.daily_unrealized_pnl.c.at < pnl_cut),
        "enforcement_log": delete(schema.enforcement_log).where(
            schema.enforcement_log.c.triggered_at < enforcement_cut
        ),
        "reconcile_findings": delete(schema.reconcile_findings).where(
            schema.reconcile_findings.c.at < enforcement_cut
        ),
        "component_events": delete(schema.component_events).where(schema.component_events.c.at < enforcement_cut),
        "order_intents": delete(intents).where(
            intents.c.updated_at < orders_cut, intents.c.status.not_in(sorted(UNRESOLVED_STATUSES))
        ),
        "order_transitions": delete(schema.order_transitions).where(
            schema.order_transitions.c.at < orders_cut,
            schema.order_transitions.c.order_ref.not_in(
                select(intents.c.intent_id).where(intents.c.status.in_(sorted(UNRESOLVED_STATUSES)))
            ),
        ),
        "fills": delete(schema.fills).where(schema.fills.c.at < orders_cut),
    }
    return {name: conn.execute(stmt).rowcount for name, stmt in statements.items()}
