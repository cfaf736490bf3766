"""The reconciler's :class:`~engine.state.source.SnapshotSource` over the engine's ``GatewayClient``.

Why Order/v2/query and not Order/searchOpen: searchOpen (and Order/search) leave out Suspended bracket children
(docs/projectx-gateway.md §5.10, §7.6), so a reconciliation built on them would cancel every staged stop-loss in the
mirror. v2/query with the working statuses returns them.

Paging is by key, not by offset: pages are read sorted by creation time ascending, each next page asking for orders
created after the last one seen. Under a busy account orders leave the working set between two page reads, and with
offsets every later row would shift left and one would be skipped silently; a key does not shift. Only a full page of
orders sharing one creation instant is stepped through by offset.

Every failure of the client (a :class:`~engine.gateway.errors.GatewayError` after its own retries) propagates: the
reconciler then skips that part and retries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from engine.protocol.enums import WORKING_ORDER_STATUSES, OrderSortField, SortDirection
from engine.protocol.models import (
    HalfTradeModel,
    OrderModel,
    OrderQueryFilter,
    OrderQueryRequest,
    OrderQueryResponse,
    PositionModel,
    TradingAccountModel,
)
from engine.state.source import SnapshotUnavailable

PAGE_SIZE = 100
"""The most rows the Gateway is said to return per v2/query page."""
MAX_PAGES = 1_000
KEYSET_OVERLAP = timedelta(milliseconds=1)
"""Each next page starts this long before the last creation time seen (whether ``createdAfter`` is inclusive or
not, no order at the boundary is skipped; repeats are removed by id)."""


class ReadClient(Protocol):
    """The read methods of ``engine.gateway.client.GatewayClient`` this adapter uses."""

    async def search_accounts(self, only_active: bool = True) -> list[TradingAccountModel]: ...

    async def search_open_positions(self, account_id: int) -> list[PositionModel]: ...

    async def query_orders_v2(self, request: OrderQueryRequest) -> OrderQueryResponse: ...

    async def order_by_id(self, account_id: int, order_id: int) -> OrderModel | None: ...

    async def search_trades(self, account_id: int, start: datetime | None = None,
                            end: datetime | None = None) -> list[HalfTradeModel]: ...


class GatewayClientSource:
    """Answers the reconciler's questions with a ``GatewayClient`` (or anything with its read methods)."""

    def __init__(self, client: ReadClient, *, only_active_accounts: bool = False, page_size: int = PAGE_SIZE) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}, got {page_size}")
        self.client = client
        self.only_active_accounts = only_active_accounts
        self.page_size = page_size

    async def accounts(self) -> Sequence[TradingAccountModel]:
        return await self.client.search_accounts(self.only_active_accounts)

    async def open_positions(self, account_id: int) -> Sequence[PositionModel]:
        return await self.client.search_open_positions(account_id)

    async def working_orders(self, account_id: int) -> Sequence[OrderModel]:
        statuses = sorted(WORKING_ORDER_STATUSES)
        return await self._query(OrderQueryFilter(account_id=account_id, statuses=statuses))

    async def orders_since(self, account_id: int, start: datetime) -> Sequence[OrderModel]:
        return await self._query(OrderQueryFilter(account_id=account_id, created_after=start))

    async def order_by_id(self, account_id: int, order_id: int) -> OrderModel | None:
        return await self.client.order_by_id(account_id, order_id)

    async def trades_since(self, account_id: int, start: datetime) -> Sequence[HalfTradeModel]:
        return await self.client.search_trades(account_id, start)

    async def _query(self, query: OrderQueryFilter) -> list[OrderModel]:
        found: dict[int, OrderModel] = {}
        after, offset = query.created_after, 0
        for _ in range(MAX_PAGES):
            response = await self.client.query_orders_v2(OrderQueryRequest(
                filter=query.model_copy(update={"created_after": after}), page_size=self.page_size,
                page_offset=offset, sort_by=OrderSortField.CREATED_AT, sort_direction=SortDirection.ASC,
            ))
            if not response.success:
                raise SnapshotUnavailable(f"Order/v2/query failed with errorCode {response.error_code}")
            for order in response.orders:
                found[order.id] = order
            if len(response.orders) < self.page_size:
                return [found[k] for k in sorted(found)]
            key = max(o.creation_timestamp for o in response.orders) - KEYSET_OVERLAP
            if key == after:
                offset += self.page_size  # a full page of one instant: step through it by offset
            else:
                after, offset = key, 0
        raise SnapshotUnavailable(f"Order/v2/query returned more than {MAX_PAGES} pages")
