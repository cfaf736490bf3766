"""Seed chaos test 5: a cascade of server errors opens the breaker, the fallback works, and the engine recovers when
the server returns (held enforcement commands are sent once it is closed)."""

from __future__ import annotations

import trio

from engine.gateway.breaker import BreakerState
from engine.gateway.testing import simulated_client
from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderType


async def test_server_error_cascade_breaker_fallback_and_recovery(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        client = sim.client
        placed = await client.place_order(m.PlaceOrderRequest(
            account_id=1001, contract_id="CON.F.US.EP.Z26", type=int(OrderType.LIMIT), side=int(OrderSide.BID),
            size=1, limit_price=6000.0))
        assert placed.accepted and placed.order_id is not None
        before = await client.with_stale_fallback(lambda: client.search_open_orders(1001))
        assert [o.id for o in before.value] == [placed.order_id]

        # the server fails for 3 minutes: 5xx first, then it refuses connections
        sim.gateway.faults.arm("http_5xx", count=None, duration_s=90, params={"status": [500, 502, 503]})
        stale = await client.with_stale_fallback(lambda: client.search_open_orders(1001))
        assert client.breaker.state is BreakerState.OPEN
        assert stale.stale and [o.id for o in stale.value] == [placed.order_id]

        denied = await client.place_order(m.PlaceOrderRequest(
            account_id=1001, contract_id="CON.F.US.EP.Z26", type=int(OrderType.MARKET), side=int(OrderSide.BID),
            size=1))
        assert denied.denied  # an ordinary command is not sent into an open breaker

        held_done: list[float] = []

        async def held_cancel() -> None:
            outcome = await client.cancel_order(1001, placed.order_id or 0, enforcement=True)
            assert outcome.accepted, outcome
            held_done.append(trio.current_time())

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(held_cancel)
            await trio.sleep(60)
            sim.gateway.faults.arm("outage", duration_s=60)  # then the server is down altogether
            await trio.sleep(1)
            assert held_done == []
        # the held cancel went out first once the server was back and a probe closed the breaker
        assert held_done and held_done[0] - start >= 120 - 1e-6  # float sums of Trio times
        assert client.breaker.state is BreakerState.CLOSED
        assert await client.search_open_orders(1001) == []
        targets = [t.target for t in client.breaker.transitions if t.source != t.target]
        assert targets.count("open") >= 2 and targets[-1] == "closed"
