"""Seed integration test 5, "Order Placement Network Failure": the network fails after the order was sent and before
the response arrived; the network comes back; verification finds the order; no duplicate is placed.

The failure is the simulator's ``lose_response`` fault (the Gateway executes the order, the client sees a dropped
connection: a real ``httpx.RemoteProtocolError`` through SimulatorTransport), followed by an outage while the
engine first tries to verify; verification keeps trying until the network is back.
"""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from engine.orders import ResultKind
from engine.protocol import models as m
from tests.orders.harness import limit, market, order_harness


async def test_lost_response_then_reconnect_verification_finds_the_order_and_no_duplicate(
    autojump_clock: MockClock,
) -> None:
    async with order_harness(stream=False) as h:
        h.gateway.faults.arm("lose_response")
        original = h.client.place_order

        async def disconnect_after_send(request: m.PlaceOrderRequest, *, enforcement: bool = False) -> Any:
            outcome = await original(request, enforcement=enforcement)
            h.gateway.faults.arm("outage", duration_s=3)  # the network is down, then comes back
            return outcome

        h.client.place_order = disconnect_after_send  # type: ignore[method-assign]
        result = await h.manager.place(market(2))

        assert result.kind is ResultKind.ACCEPTED
        assert result.attempts == 1  # verified, never re-sent
        orders = h.sim_orders()
        assert len(orders) == 1 and orders[0]["customTag"] == result.custom_tag
        assert orders[0]["id"] == result.order_id
        assert h.tag_counts() == {result.custom_tag: 1}
        row = await h.store.get_intent(result.intent_id)
        assert row is not None and row.gateway_order_id == result.order_id and row.status == "filled"
        assert await h.store.unresolved_intents() == []


async def test_lost_response_with_the_stream_running_adopts_the_order_state(autojump_clock: MockClock) -> None:
    async with order_harness(stream=True) as h:
        h.gateway.faults.arm("lose_response")
        result = await h.manager.place(limit(6000.0, 1))
        assert result.kind is ResultKind.ACCEPTED and result.state == "working"
        assert h.tag_counts() == {result.custom_tag: 1}
