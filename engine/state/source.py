"""What the reconciler reads: a narrow, read-only view of the Gateway's REST API.

Why a protocol of its own: the reconciler needs six questions answered ("which accounts", "which positions are open",
"which orders work, Suspended bracket children included", "which orders were created since", "what became of this
order", "which trades since") and must be testable against anything that answers them. The adapter to the engine's
``GatewayClient`` lives in :mod:`engine.state.gateway_source`.

The contract every implementation keeps: a method returns the *complete* list, or raises. A failed request, an error
envelope (``success: false``), a page that could not be read: all raise, because a missing list must never be taken
for an empty one (an empty list would make the reconciler close positions and cancel orders that still exist).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from engine.protocol.models import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel


class SnapshotUnavailable(Exception):
    """A source could not produce a complete answer (an error envelope, an unreadable body, an incomplete page)."""


class SnapshotSource(Protocol):
    async def accounts(self) -> Sequence[TradingAccountModel]:
        """Every account the engine may watch (Account/search)."""
        ...

    async def open_positions(self, account_id: int) -> Sequence[PositionModel]:
        """Open positions of the account (Position/searchOpen)."""
        ...

    async def working_orders(self, account_id: int) -> Sequence[OrderModel]:
        """Every working order of the account *including Suspended bracket children* (Order/v2/query with the working
        statuses, all pages; Order/searchOpen alone would miss the children)."""
        ...

    async def orders_since(self, account_id: int, start: datetime) -> Sequence[OrderModel]:
        """Every order of the account created at or after ``start``, whatever its status (terminal ones included)."""
        ...

    async def order_by_id(self, account_id: int, order_id: int) -> OrderModel | None:
        """One order (Order/searchById); None only when the Gateway says it does not know the order."""
        ...

    async def trades_since(self, account_id: int, start: datetime) -> Sequence[HalfTradeModel]:
        """Trades of the account created at or after ``start`` (Trade/search)."""
        ...
