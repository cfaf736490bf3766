"""Partial fills (several trades, dedupe, average price, remaining), the cancel race (cancel after a partial fill, a
fill after the cancel request), the completion deadline, and verified cancel / modify / close / flatten."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from engine.orders import ResultKind
from engine.protocol import models as m
from engine.protocol.enums import OrderSide
from tests.orders.harness import ACCOUNT, CONTRACT, Harness, limit, market, order_harness


def sim_trades(h: Harness, order_id: int | None) -> list[m.HalfTradeModel]:
    return [m.HalfTradeModel.model_validate(t) for t in h.gateway.snapshot()["trades"] if t["orderId"] == order_id]


def tracked(h: Harness, order_id: int | None) -> Any:
    assert order_id is not None
    order = h.manager.tracked_by_order_id(order_id)
    assert order is not None
    return order.lifecycle


async def test_partial_fills_over_several_trades_give_quantity_average_and_remaining(
    autojump_clock: MockClock,
) -> None:
    async with order_harness(sim={"partial_fill_parts": 3, "partial_fill_interval_s": 2.0}) as h:
        result = await h.manager.place(market(3))
        assert result.kind is ResultKind.ACCEPTED
        lifecycle = tracked(h, result.order_id)
        assert 1 <= lifecycle.filled_quantity < 3 and lifecycle.remaining == 3 - lifecycle.filled_quantity
        await trio.sleep(10)
        trades = sim_trades(h, result.order_id)
        assert len(trades) == 3
        assert lifecycle.state.value == "filled" and lifecycle.filled_quantity == 3 and lifecycle.remaining == 0
        vwap = sum(t.price * t.size for t in trades) / 3
        assert abs(lifecycle.average_price - vwap) < 1e-9
        for trade in trades:  # a duplicated stream delivers them again: counted once
            h.manager.on_trade_event(trade)
        assert lifecycle.filled_quantity == 3
        await h.store.flush()
        assert sorted(f["trade_id"] for f in await h.store.history("fills")) == sorted(t.id for t in trades)
        row = await h.store.get_intent(result.intent_id)
        assert row is not None and row.filled_qty == 3 and abs((row.avg_price or 0) - vwap) < 1e-9


async def test_cancel_after_a_partial_fill_keeps_the_filled_part(autojump_clock: MockClock) -> None:
    async with order_harness(sim={"partial_fill_parts": 4, "partial_fill_interval_s": 30.0}) as h:
        result = await h.manager.place(limit(6400.0, 4))  # marketable: the first quarter fills at once
        await trio.sleep(1)
        cancel = await h.manager.cancel(ACCOUNT, result.order_id or 0)
        assert cancel.kind is ResultKind.ACCEPTED and cancel.state == "cancelled"
        await trio.sleep(1)
        lifecycle = tracked(h, result.order_id)
        assert lifecycle.filled_quantity == 1 and lifecycle.remaining == 3
        assert (await h.manager.cancel(ACCOUNT, result.order_id or 0)).kind is ResultKind.REJECTED  # already final


async def test_a_fill_arriving_after_the_cancel_request_is_applied(autojump_clock: MockClock) -> None:
    async with order_harness(stream=False, sim={"partial_fill_parts": 2, "partial_fill_interval_s": 30.0}) as h:
        result = await h.manager.place(limit(6400.0, 2))
        lifecycle = tracked(h, result.order_id)
        assert lifecycle.filled_quantity == 0  # no stream: the manager has not seen the first fill yet
        h.gateway.faults.arm("delay", params={"seconds": 1.0})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(h.manager.cancel, ACCOUNT, result.order_id or 0)
            await trio.sleep(0.5)
            assert lifecycle.state.value == "cancelling"
            for trade in sim_trades(h, result.order_id):  # the late trade event reaches us now
                h.manager.on_trade_event(trade)
            assert lifecycle.filled_quantity == 1 and lifecycle.state.value == "cancelling"
        assert lifecycle.state.value == "cancelled" and lifecycle.filled_quantity == 1
        await h.store.flush()
        chain = [(r["from_state"], r["to_state"]) for r in await h.store.history("transitions")
                 if r["order_ref"] == result.intent_id]
        assert ("cancelling", "cancelling") in chain and chain[-1] == ("cancelling", "cancelled")


async def test_order_not_complete_within_the_timeout_is_handed_to_the_reconciler(autojump_clock: MockClock) -> None:
    handed: list[Any] = []
    async with order_harness(
        sim={"partial_fill_parts": 2, "partial_fill_interval_s": 500.0},
        settings={"orderManagement.partialFills.completeTimeout": 60_000},
        policy={"on_handoff": handed.append},
    ) as h:
        result = await h.manager.place(market(2))
        await trio.sleep(59)
        assert handed == []
        await trio.sleep(2)
        assert [(x.kind, x.order_id, x.filled_qty, x.remaining) for x in handed] == [
            ("incomplete", result.order_id, 1, 1)
        ]


async def test_cancel_with_a_lost_response_is_verified_not_resent(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        result = await h.manager.place(limit(6000.0, 1))
        h.gateway.faults.arm("lose_response")
        cancel = await h.manager.cancel(ACCOUNT, result.order_id or 0, priority=True)
        assert cancel.kind is ResultKind.ACCEPTED and cancel.attempts == 1
        assert h.sim_orders(result.custom_tag)[0]["status"] == 3


async def test_cancel_not_executed_is_sent_again(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        result = await h.manager.place(limit(6000.0, 1))
        h.gateway.faults.arm("http_5xx")
        cancel = await h.manager.cancel(ACCOUNT, result.order_id or 0)
        assert cancel.kind is ResultKind.ACCEPTED and cancel.attempts == 2


async def test_modify_with_a_lost_response_is_verified_applied(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        result = await h.manager.place(limit(6000.0, 1))
        h.gateway.faults.arm("lose_response")
        modified = await h.manager.modify(ACCOUNT, result.order_id or 0, limit_price=6001.0)
        assert modified.kind is ResultKind.ACCEPTED and modified.attempts == 1
        assert h.sim_orders(result.custom_tag)[0]["limitPrice"] == 6001.0


async def test_partial_and_full_close_with_lost_responses_never_close_twice(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        await h.manager.place(market(3))
        h.gateway.faults.arm("lose_response")
        partial = await h.manager.close_position(ACCOUNT, CONTRACT, size=1, priority=True)
        assert partial.kind is ResultKind.ACCEPTED and partial.attempts == 1
        positions = await h.client.search_open_positions(ACCOUNT)
        assert [(p.contract_id, p.size) for p in positions] == [(CONTRACT, 2)]
        original = h.client.close_position
        first = [True]

        async def close_answered_503_once(account_id: int, contract_id: str, *, enforcement: bool = False) -> Any:
            if first.pop() if first else False:
                h.gateway.faults.arm("http_5xx")  # not executed: proven unchanged, then sent again
            return await original(account_id, contract_id, enforcement=enforcement)

        h.client.close_position = close_answered_503_once  # type: ignore[method-assign]
        full = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True)
        assert full.kind is ResultKind.ACCEPTED and full.attempts == 2
        assert await h.client.search_open_positions(ACCOUNT) == []
        sells = [o for o in h.sim_orders() if o["side"] == int(OrderSide.ASK)]
        assert sorted(o["size"] for o in sells) == [1, 2]


async def test_flatten_cancels_working_orders_closes_positions_and_verifies_flat(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        await h.manager.place(market(2))
        await h.manager.place(limit(6000.0, 1))
        await h.client.place_order(m.PlaceOrderRequest(  # an entry with a server-side bracket: Suspended children
            account_id=ACCOUNT, contract_id=CONTRACT, type=1, side=0, size=1, limit_price=6000.0,
            stop_loss_bracket=m.BracketModel(ticks=-10, type=4), take_profit_bracket=m.BracketModel(ticks=10, type=1)))
        h.gateway.faults.arm("lose_response")
        result = await h.manager.flatten(ACCOUNT)
        assert result.kind is ResultKind.ACCEPTED and result.reason == "verified flat"
        assert await h.client.search_open_positions(ACCOUNT) == []
        assert all(o["status"] in (2, 3) for o in h.sim_orders())
