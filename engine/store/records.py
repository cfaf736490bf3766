"""The records the engine hands to the store: small frozen dataclasses, one per kind of fact.

They are pure values (no I/O, no clock reads): the caller stamps every instant, so the journal carries the engine's
notion of "now" (its :class:`~engine.protocol.timebase.WallClock`), and tests can reproduce it exactly. Prices are
floats as on the Gateway's JSON wire; Gateway enums (side, order type) stay their integer codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

#: Order statuses whose outcome is unknown: the order manager verifies these before anything else after a restart.
#: An intent is recorded as ``submitted`` BEFORE its request is sent, so a crash between the commit and the send
#: also leaves it here (it may or may not have reached the Gateway).
UNRESOLVED_STATUSES: frozenset[str] = frozenset({"submitted", "ambiguous", "verifying"})


#: Intent kinds (``order_intents.kind``). A place carries its order's attributes and a customTag; a cancel or modify
#: names its order in ``gateway_order_id`` (modify: the new absolute values in ``size`` / prices, 0 = unchanged); a
#: close names the position by ``contract_id`` (``partial_close``: how many in ``size``) and keeps the position's
#: signed size before the send in ``position_before``: what verification after a crash compares against.
INTENT_KINDS: frozenset[str] = frozenset({"place", "cancel", "modify", "close", "partial_close"})


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A mutation the engine is about to send; committed (``await store.record_intent``) before the request goes out.

    ``kind`` says which (see :data:`INTENT_KINDS`); only a place sends its ``custom_tag``, the others keep a local,
    unique key there."""

    intent_id: str
    account_id: int
    contract_id: str
    side: int
    size: int
    order_type: int
    custom_tag: str
    created_at: datetime
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    status: str = "submitted"
    gateway_order_id: int | None = None
    filled_qty: int = 0
    avg_price: float | None = None
    kind: str = "place"
    position_before: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in INTENT_KINDS:
            raise ValueError(f"unknown intent kind {self.kind!r}; expected one of {', '.join(sorted(INTENT_KINDS))}")


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change to an intent's current row; ``None`` fields are left as they are. ``at`` becomes ``updated_at``."""

    intent_id: str
    at: datetime
    status: str | None = None
    gateway_order_id: int | None = None
    filled_qty: int | None = None
    avg_price: float | None = None


@dataclass(frozen=True, slots=True)
class OrderTransition:
    """One transition of an order machine. ``order_ref`` is the intent id (or another stable order reference)."""

    order_ref: str
    from_state: str
    to_state: str
    cause: str
    at: datetime
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One Gateway trade (half-turn fill). ``trade_id`` is unique: recording the same trade again updates it."""

    trade_id: int
    account_id: int
    order_id: int
    contract_id: str
    side: int
    price: float
    size: int
    fees: float
    at: datetime
    pnl: float | None = None
    commissions: float | None = None
    voided: bool = False


@dataclass(frozen=True, slots=True)
class EnforcementEntry:
    """A risk rule that fired: what was measured, the limit, the actions taken and how it ended."""

    rule: str
    measured: Mapping[str, Any]
    limit: float | None
    actions: Sequence[str]
    outcome: str
    triggered_at: datetime
    completed_at: datetime | None = None
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class PnlSnapshot:
    """An account's unrealized P&L at an instant of a trading day."""

    account_id: int
    trading_day: date
    unrealized_pnl: float
    at: datetime


@dataclass(frozen=True, slots=True)
class ReconcileFinding:
    """Something the reconciler found the stream had missed (kind e.g. ``missed_fill``), with its details."""

    kind: str
    details: Mapping[str, Any]
    at: datetime
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class ComponentEvent:
    """A transition of the connection, breaker or token machine (``component`` names which one)."""

    component: str
    from_state: str
    to_state: str
    cause: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The mirrored state with the Gateway's field names: ``accounts``, ``positions``, ``orders`` (lists of dicts).

    Stored one row per account (``accounts[i]["id"]``; positions and orders go to their ``accountId``), so engine
    processes that watch different accounts of one shared database never overwrite each other.
    """

    accounts: Sequence[Mapping[str, Any]]
    positions: Sequence[Mapping[str, Any]]
    orders: Sequence[Mapping[str, Any]]
    at: datetime

    @classmethod
    def from_gateway(cls, snapshot: Mapping[str, Sequence[Mapping[str, Any]]], at: datetime) -> StateSnapshot:
        missing = [key for key in ("accounts", "positions", "orders") if key not in snapshot]
        if missing:
            raise ValueError(f"state snapshot lacks {', '.join(missing)} (expected accounts, positions, orders)")
        return cls(
            accounts=list(snapshot["accounts"]),
            positions=list(snapshot["positions"]),
            orders=list(snapshot["orders"]),
            at=at,
        )


@dataclass(frozen=True, slots=True)
class AccountLockout:
    """A risk lockout: the account may hold nothing until ``until`` (set by the breach of ``rule`` at ``since``).

    One row per account (a newer lockout replaces the older one), committed durably when it starts, so that
    restarting the engine cannot lift it: :meth:`Store.active_lockouts` hands back those still in force at start-up.
    ``rule`` is the ``riskRules`` name (``dailyLossLimit``, ...); ``at`` is when it was recorded.
    """

    account_id: int
    rule: str
    since: datetime
    until: datetime
    reason: str
    at: datetime


Record = (
    OrderIntent
    | OrderUpdate
    | OrderTransition
    | Fill
    | EnforcementEntry
    | PnlSnapshot
    | ReconcileFinding
    | ComponentEvent
    | StateSnapshot
    | AccountLockout
)


@dataclass(frozen=True, slots=True)
class StoredIntent:
    """An order intent as stored, with its current status (what :meth:`Store.unresolved_intents` returns)."""

    intent_id: str
    account_id: int
    contract_id: str
    side: int
    size: int
    order_type: int
    custom_tag: str
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    status: str
    gateway_order_id: int | None
    filled_qty: int
    avg_price: float | None
    created_at: datetime
    updated_at: datetime
    kind: str = "place"
    position_before: int | None = None


@dataclass(frozen=True, slots=True)
class SavedState:
    """What :meth:`Store.load_state` returns: the Gateway-shaped lists plus when they were last saved."""

    accounts: list[dict[str, Any]]
    positions: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    saved_at: datetime | None

    def as_gateway_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"accounts": self.accounts, "positions": self.positions, "orders": self.orders}
