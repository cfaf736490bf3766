"""The GatewayClientSource adapter: v2/query paging (Suspended children included), incomplete or failed pages raise
instead of returning a partial list, and every read goes through a real GatewayClient against the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import trio

from engine.gateway.testing import simulated_client
from engine.protocol.enums import OrderSide, OrderStatus, OrderType
from engine.protocol.models import (
    BracketModel,
    HalfTradeModel,
    OrderModel,
    OrderQueryRequest,
    OrderQueryResponse,
    PlaceOrderRequest,
    PositionModel,
    TradingAccountModel,
)
from engine.state.gateway_source import GatewayClientSource
from engine.state.source import SnapshotUnavailable
from tests.state.simfeed import ACCOUNT, ES, quiet_config


async def test_working_orders_page_through_v2_query_including_suspended_children(
        autojump_clock: trio.abc.Clock) -> None:
    async with simulated_client(quiet_config()) as sim:
        placed = []
        for i in range(5):
            outcome = await sim.client.place_order(PlaceOrderRequest(
                account_id=ACCOUNT, contract_id=ES, type=int(OrderType.LIMIT), side=int(OrderSide.BID), size=1,
                limit_price=6000.0 - i, stop_loss_bracket=BracketModel(ticks=-4, type=OrderType.STOP)))
            assert outcome.order_id is not None
            placed.append(outcome.order_id)
        await sim.client.cancel_order(ACCOUNT, placed[0])
        source = GatewayClientSource(sim.client, page_size=3)
        working = await source.working_orders(ACCOUNT)
        statuses = [o.status for o in working]
        assert len(working) == 8 and statuses.count(OrderStatus.SUSPENDED) == 4
        assert [o.id for o in working] == sorted(o.id for o in working)
        since = await source.orders_since(ACCOUNT, sim.gateway.clock.now() - timedelta(hours=1))
        assert len(since) == 10  # 5 entries + 5 children, terminal ones included
        assert await source.order_by_id(ACCOUNT, 424242) is None
        assert [a.id for a in await source.accounts()] == [1001, 1002, 1003, 1004]  # inactive ones too


class FakeReads:
    """Answers query_orders_v2 from scripted pages (the client's other reads are unused here)."""

    def __init__(self, pages: list[OrderQueryResponse]) -> None:
        self.pages = pages
        self.requests: list[OrderQueryRequest] = []

    async def query_orders_v2(self, request: OrderQueryRequest) -> OrderQueryResponse:
        self.requests.append(request)
        return self.pages[len(self.requests) - 1]

    async def search_accounts(self, only_active: bool = True) -> list[TradingAccountModel]:
        raise NotImplementedError

    async def search_open_positions(self, account_id: int) -> list[PositionModel]:
        raise NotImplementedError

    async def order_by_id(self, account_id: int, order_id: int) -> OrderModel | None:
        raise NotImplementedError

    async def search_trades(self, account_id: int, start: datetime | None = None,
                            end: datetime | None = None) -> list[HalfTradeModel]:
        raise NotImplementedError


def _order(oid: int, minute: int = 0) -> dict[str, Any]:
    return {"id": oid, "accountId": ACCOUNT, "contractId": ES, "creationTimestamp": f"2026-11-25T15:{minute:02d}:00Z",
            "status": 1, "type": 1, "side": 0, "size": 1, "limitPrice": 6000.0, "fillVolume": 0}


def _page(orders: list[dict[str, Any]], success: bool = True) -> OrderQueryResponse:
    return OrderQueryResponse.model_validate({"success": success, "errorCode": 0 if success else 1, "orders": orders})


@pytest.mark.parametrize(("pages", "error"), [
    pytest.param([_page([], success=False)], "errorCode 1", id="error-envelope"),
])
async def test_an_incomplete_or_failed_query_raises(pages: list[OrderQueryResponse], error: str) -> None:
    source = GatewayClientSource(FakeReads(pages), page_size=2)
    with pytest.raises(SnapshotUnavailable, match=error):
        await source.working_orders(ACCOUNT)


async def test_a_full_page_of_one_instant_is_stepped_through_by_offset() -> None:
    reads = FakeReads([_page([_order(1), _order(2)]), _page([_order(3), _order(4)]), _page([_order(5)])])
    orders = await GatewayClientSource(reads, page_size=2).working_orders(ACCOUNT)
    assert [o.id for o in orders] == [1, 2, 3, 4, 5]
    assert [r.page_offset for r in reads.requests] == [0, 0, 2]


async def test_pages_are_read_by_creation_time_until_a_short_page() -> None:
    reads = FakeReads([_page([_order(1, 1), _order(2, 2)]), _page([_order(2, 2), _order(3, 3)]),
                       _page([_order(3, 3)])])
    orders = await GatewayClientSource(reads, page_size=2).working_orders(ACCOUNT)
    assert [o.id for o in orders] == [1, 2, 3]
    assert [r.page_offset for r in reads.requests] == [0, 0, 0]
    afters = [r.filter.created_after for r in reads.requests]
    assert afters[0] is None
    assert afters[1] is not None and afters[1] < orders[1].creation_timestamp
    assert reads.requests[0].filter.statuses == [1, 6, 7, 8]


async def test_an_order_leaving_the_set_between_pages_skips_no_other(autojump_clock: trio.abc.Clock) -> None:
    async with simulated_client(quiet_config()) as sim:
        ids = []
        for i in range(7):
            outcome = await sim.client.place_order(PlaceOrderRequest(
                account_id=ACCOUNT, contract_id=ES, type=int(OrderType.LIMIT), side=int(OrderSide.BID), size=1,
                limit_price=6000.0 - i))
            assert outcome.order_id is not None
            ids.append(outcome.order_id)
            await trio.sleep(1)

        class CancelsAfterFirstPage:
            def __init__(self) -> None:
                self.calls = 0

            def __getattr__(self, name: str) -> Any:
                return getattr(sim.client, name)

            async def query_orders_v2(self, request: OrderQueryRequest) -> OrderQueryResponse:
                response = await sim.client.query_orders_v2(request)
                self.calls += 1
                if self.calls == 1:
                    await sim.client.cancel_order(ACCOUNT, ids[0])
                return response

        working = await GatewayClientSource(CancelsAfterFirstPage(), page_size=3).working_orders(ACCOUNT)
        assert [o.id for o in working] == ids  # ids[0] as read before its cancel; nothing after it skipped


def test_page_size_is_checked() -> None:
    with pytest.raises(ValueError, match="page_size"):
        GatewayClientSource(FakeReads([]), page_size=500)
