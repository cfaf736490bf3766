"""Trades of orders whose id is not known yet: one of ours arriving before Order/place answers is replayed on
adoption (its fill journalled); trades of other front ends are not held when no order of ours awaits its id, and
held ones are dropped after the time bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from engine.orders import ResultKind
from engine.protocol import models as m
from engine.protocol.enums import OrderSide
from engine.protocol.signalr import Invocation, StreamReader, encode
from engine.protocol.user_events import StreamPayload, read_user_event
from tests.orders.harness import ACCOUNT, CONTRACT, Harness, market, order_harness


def foreign_trade(trade_id: int, order_id: int = 990_000) -> m.HalfTradeModel:
    return m.HalfTradeModel.model_validate({
        "id": trade_id, "accountId": ACCOUNT, "contractId": CONTRACT, "creationTimestamp": "2026-03-03T15:00:00Z",
        "price": 6000.0, "fees": 0.0, "side": int(OrderSide.BID), "size": 1, "orderId": order_id})


def sim_trades(h: Harness) -> list[m.HalfTradeModel]:
    return [m.HalfTradeModel.model_validate(t) for t in h.gateway.snapshot()["trades"]]


def _as_record(h: Harness, trade: m.HalfTradeModel) -> None:
    assert h.manager.on_trade_event(trade) is False


def _as_hub_dicts(h: Harness, trade: m.HalfTradeModel) -> None:
    h.manager.on_user_event("GatewayUserTrade", ({"action": 0, "data": trade.wire()},))


def _as_typed_hub_payload(h: Harness, trade: m.HalfTradeModel) -> None:
    """As ``user_hub()`` delivers it: the codec read the frame straight into a StreamPayload holding the record
    (engine.protocol.user_events); it was once dropped as 'expected an object, got StreamPayload'."""
    reader = StreamReader("client", read_typed=read_user_event)
    reader.feed("{}\x1e")
    (event,) = reader.feed(encode(Invocation("GatewayUserTrade", ({"action": 0, "data": trade.wire()},))))
    assert isinstance(event, Invocation) and type(event.arguments[0]) is StreamPayload
    h.manager.on_user_event(event.target, event.arguments)


@pytest.mark.parametrize("deliver", [_as_record, _as_hub_dicts, _as_typed_hub_payload],
                         ids=["record", "hub-dicts", "hub-typed"])
async def test_a_trade_arriving_before_the_place_answer_is_replayed_on_adoption(
        deliver: Callable[[Harness, m.HalfTradeModel], None], autojump_clock: MockClock) -> None:
    """However the trade reaches the manager (a record from the mirror, or raw hub arguments as dicts or as the
    user hub's typed payload), one that arrives before Order/place answers is held and replayed on adoption."""
    async with order_harness(stream=False) as h:
        place = h.client.place_order

        async def trade_first(request: m.PlaceOrderRequest, *, enforcement: bool = False) -> Any:
            outcome = await place(request, enforcement=enforcement)
            for trade in sim_trades(h):  # the stream is faster than the answer
                deliver(h, trade)
            assert h.manager.early_trades_held == 1
            return outcome

        h.client.place_order = trade_first  # type: ignore[method-assign]
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.ACCEPTED and h.manager.early_trades_held == 0
        tracked = h.manager.tracked_by_order_id(result.order_id or 0)
        assert tracked is not None and tracked.lifecycle.filled_quantity == 1
        await h.store.flush()
        assert [f["order_id"] for f in await h.store.history("fills")] == [result.order_id]


async def test_trades_of_other_front_ends_are_not_held_when_nothing_awaits_an_id(autojump_clock: MockClock) -> None:
    async with order_harness(stream=False) as h:
        await h.manager.place(market(1))
        for trade_id in range(1, 501):
            assert h.manager.on_trade_event(foreign_trade(trade_id)) is False
        assert h.manager.early_trades_held == 0


async def test_held_trades_are_dropped_after_the_time_bound(autojump_clock: MockClock) -> None:
    async with order_harness(stream=False) as h:
        # every request unanswered for a while: our place stays without an id (ambiguous, then verified in vain)
        h.gateway.faults.arm("delay", count=None, duration_s=300.0, params={"seconds": 120.0})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.manager.place, market(1))
            await trio.sleep(1)
            for trade_id in range(1, 4):
                h.manager.on_trade_event(foreign_trade(trade_id))
            assert h.manager.early_trades_held == 3  # an order of ours awaits its id: they could be its trades
            await trio.sleep(h.manager.early_trade_ttl_s + 1)
            h.manager.on_trade_event(foreign_trade(4))
            assert h.manager.early_trades_held == 1  # the three older ones are gone
            nursery.cancel_scope.cancel()
