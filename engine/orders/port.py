"""The slice of :class:`engine.gateway.client.GatewayClient` the order manager uses, as a structural type.

Why a Protocol: the manager needs eleven calls, not the whole client, and naming them here documents exactly what
the order path depends on (mutations return a typed outcome and are never resent by the client; reads raise a
``GatewayError`` after the client's own retries). ``GatewayClient`` satisfies it as is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from engine.gateway.outcome import MutationOutcome
from engine.protocol import models as m


class OrderClient(Protocol):
    async def place_order(self, request: m.PlaceOrderRequest, *, enforcement: bool = False) -> MutationOutcome: ...

    async def modify_order(self, request: m.ModifyOrderRequest, *, enforcement: bool = False) -> MutationOutcome: ...

    async def cancel_order(self, account_id: int, order_id: int, *, enforcement: bool = False) -> MutationOutcome: ...

    async def close_position(
        self, account_id: int, contract_id: str, *, enforcement: bool = False
    ) -> MutationOutcome: ...

    async def partial_close_position(
        self, account_id: int, contract_id: str, size: int, *, enforcement: bool = False
    ) -> MutationOutcome: ...

    async def search_orders(
        self, account_id: int, start: datetime, end: datetime | None = None
    ) -> list[m.OrderModel]: ...

    async def search_open_orders(self, account_id: int) -> list[m.OrderModel]: ...

    async def order_by_id(self, account_id: int, order_id: int) -> m.OrderModel | None: ...

    async def query_orders_v2(self, request: m.OrderQueryRequest) -> m.OrderQueryResponse: ...

    async def search_open_positions(self, account_id: int) -> list[m.PositionModel]: ...
