"""Gateway enums exactly as they travel on the wire (integers).

Values come from the reference (docs/projectx-gateway.md §6). They are ``IntEnum`` so a model field typed with one
accepts the integer from JSON and serialises back to it; the engine and the simulator share them so both sides can
never disagree on what ``status: 6`` means.
"""

from __future__ import annotations

from enum import IntEnum


class OrderSide(IntEnum):
    BID = 0
    """Buy."""
    ASK = 1
    """Sell."""


class OrderType(IntEnum):
    UNKNOWN = 0
    LIMIT = 1
    MARKET = 2
    STOP_LIMIT = 3
    STOP = 4
    TRAILING_STOP = 5
    JOIN_BID = 6
    JOIN_ASK = 7


class OrderStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8
    """A staged bracket child, waiting for its entry to fill."""

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_ORDER_STATUSES

    @property
    def is_working(self) -> bool:
        return self in WORKING_ORDER_STATUSES


TERMINAL_ORDER_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)
WORKING_ORDER_STATUSES = frozenset(
    {OrderStatus.OPEN, OrderStatus.PENDING, OrderStatus.PENDING_CANCELLATION, OrderStatus.SUSPENDED}
)


class PositionType(IntEnum):
    UNDEFINED = 0
    LONG = 1
    SHORT = 2


class AggregateBarUnit(IntEnum):
    UNSPECIFIED = 0
    SECOND = 1
    MINUTE = 2
    HOUR = 3
    DAY = 4
    WEEK = 5
    MONTH = 6
    TICK = 7
    """Newer swagger only (low confidence); the simulator rejects it as UnitInvalid."""


class TradeLogType(IntEnum):
    """GatewayTrade ``type``: the aggressor side."""

    BUY = 0
    SELL = 1


class DomType(IntEnum):
    UNKNOWN = 0
    ASK = 1
    BID = 2
    BEST_ASK = 3
    BEST_BID = 4
    TRADE = 5
    RESET = 6
    LOW = 7
    HIGH = 8
    NEW_BEST_BID = 9
    NEW_BEST_ASK = 10
    FILL = 11


class OrderSortField(IntEnum):
    CREATED_AT = 0
    ID = 1


class SortDirection(IntEnum):
    ASC = 0
    DESC = 1


class StreamAction(IntEnum):
    """The ``action`` of a user-hub ``{"action", "data"}`` wrapper. Undocumented: live captures show 0 on trades, 1 on
    order/position/account updates and 2 on a position that closed (size 0). The simulator emits exactly that."""

    NEW = 0
    UPDATE = 1
    REMOVE = 2
