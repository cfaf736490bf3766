"""Finding orders again after an ambiguous outcome: REST searches over a time window, matched by tag or fingerprint.

Why ``Order/v2/query`` first: it filters by contract and creation time server-side and, unlike ``Order/search`` and
``searchOpen``, returns Suspended bracket children too; a Gateway without it (older deployments) falls back to
``Order/search`` over the same window. A search that fails raises (``GatewayError``): a failed search is never
taken as "not found" (absence from a list is only evidence when the list was actually obtained).
"""

from __future__ import annotations

import logging
from datetime import datetime

from engine.gateway.errors import GatewayError, PermanentError
from engine.orders.port import OrderClient
from engine.protocol import models as m
from engine.protocol.enums import OrderSortField, OrderStatus, SortDirection

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 50


async def orders_since(
    client: OrderClient, account_id: int, since: datetime, *, contract_id: str | None = None,
    statuses: list[OrderStatus] | None = None,
) -> list[m.OrderModel]:
    """Every order of ``account_id`` created at or after ``since`` (optionally of one contract / some statuses)."""
    try:
        return await _query_all(client, account_id, since, contract_id, statuses)
    except PermanentError as exc:
        if exc.status not in (404, 405):
            raise
        log.info("Order/v2/query unavailable (%s): falling back to Order/search", exc)
    orders = await client.search_orders(account_id, since)
    return [
        o for o in orders
        if (contract_id is None or o.contract_id == contract_id) and (statuses is None or o.status in statuses)
    ]


async def _query_all(
    client: OrderClient, account_id: int, since: datetime, contract_id: str | None,
    statuses: list[OrderStatus] | None,
) -> list[m.OrderModel]:
    found: list[m.OrderModel] = []
    seen: set[int] = set()
    for page in range(MAX_PAGES):
        request = m.OrderQueryRequest(
            filter=m.OrderQueryFilter(account_id=account_id, contract_id=contract_id, created_after=since,
                                      statuses=statuses),
            page_size=PAGE_SIZE, page_offset=page * PAGE_SIZE, sort_by=OrderSortField.ID,
            sort_direction=SortDirection.ASC,
        )
        response = await client.query_orders_v2(request)
        if not response.success:
            raise GatewayError(f"Order/v2/query failed with errorCode {response.error_code}",
                               endpoint="/api/Order/v2/query", code=response.error_code)
        for order in response.orders:
            if order.id not in seen:
                seen.add(order.id)
                found.append(order)
        if len(response.orders) < PAGE_SIZE:
            return found
    log.warning("Order/v2/query: stopped after %d pages for account %d", MAX_PAGES, account_id)
    return found


def match_tag(orders: list[m.OrderModel], tag: str) -> m.OrderModel | None:
    """The order carrying exactly ``tag`` (bracket children carry ``tag-SL``/``tag-TP`` and do not match)."""
    for order in orders:
        if order.custom_tag == tag:
            return order
    return None


def match_fingerprint(
    orders: list[m.OrderModel], request: m.PlaceOrderRequest, claimed: set[int]
) -> m.OrderModel | None:
    """An untagged order looking exactly like ``request`` and not claimed by another intent (oldest first)."""
    for order in sorted(orders, key=lambda o: o.id):
        if (
            order.id not in claimed
            and order.custom_tag is None
            and order.parent_order_id is None
            and order.contract_id == request.contract_id
            and int(order.side) == request.side
            and int(order.type) == request.type
            and order.size == request.size
            and (request.limit_price is None or order.limit_price == request.limit_price)
            and (request.stop_price is None or order.stop_price == request.stop_price)
        ):
            return order
    return None
