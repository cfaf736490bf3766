"""Closing a position whose size the caller already knows (the risk driver passes the mirror's): the whole close
goes out without reading the position first, an ambiguous outcome is still verified against the server, a stale
known size makes verification inconclusive instead of sending again, and a partial close always reads first."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from engine.orders import ResultKind
from engine.protocol.enums import OrderSide
from tests.orders.harness import ACCOUNT, CONTRACT, Harness, market, order_harness


def spy_calls(h: Harness) -> list[str]:
    """Record, in order, the position reads and the closes the manager sends through the real client."""
    calls: list[str] = []
    search, close, partial = h.client.search_open_positions, h.client.close_position, h.client.partial_close_position

    async def searching(account_id: int) -> Any:
        calls.append("searchOpen")
        return await search(account_id)

    async def closing(account_id: int, contract_id: str, *, enforcement: bool = False) -> Any:
        calls.append("closeContract")
        return await close(account_id, contract_id, enforcement=enforcement)

    async def partially(account_id: int, contract_id: str, size: int, *, enforcement: bool = False) -> Any:
        calls.append("partialCloseContract")
        return await partial(account_id, contract_id, size, enforcement=enforcement)

    h.client.search_open_positions = searching  # type: ignore[method-assign]
    h.client.close_position = closing  # type: ignore[method-assign]
    h.client.partial_close_position = partially  # type: ignore[method-assign]
    return calls


def sells(h: Harness) -> list[int]:
    return sorted(o["size"] for o in h.sim_orders() if o["side"] == int(OrderSide.ASK))


async def test_a_known_whole_position_is_closed_without_reading_it_first(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        await h.manager.place(market(2))
        calls = spy_calls(h)
        result = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True, known_size=2)
        assert result.kind is ResultKind.ACCEPTED and result.attempts == 1
        assert calls == ["closeContract"]
        assert result.details["position_before"] == 2 and result.details["before_from"] == "caller"
        assert await h.client.search_open_positions(ACCOUNT) == [] and sells(h) == [2]


async def test_a_lost_answer_is_verified_against_the_server_and_not_sent_again(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        await h.manager.place(market(2, side=OrderSide.ASK))
        calls = spy_calls(h)
        h.gateway.faults.arm("lose_response")
        result = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True, known_size=-2)
        assert result.kind is ResultKind.ACCEPTED and result.attempts == 1
        assert calls[0] == "closeContract" and calls.count("closeContract") == 1 and "searchOpen" in calls
        assert await h.client.search_open_positions(ACCOUNT) == []
        buys = [o["size"] for o in h.sim_orders() if o["side"] == int(OrderSide.BID)]
        assert buys == [2]  # the one close (the short was opened by a sell)


async def test_a_close_proven_not_executed_is_sent_again(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        await h.manager.place(market(2))
        calls = spy_calls(h)
        h.gateway.faults.arm("http_5xx")  # refused before execution: the server still shows the known size
        result = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True, known_size=2)
        assert result.kind is ResultKind.ACCEPTED and result.attempts == 2
        assert calls[0] == "closeContract" and calls.count("closeContract") == 2
        assert await h.client.search_open_positions(ACCOUNT) == [] and sells(h) == [2]


async def test_a_stale_known_size_makes_an_unexecuted_close_inconclusive_not_resent(
    autojump_clock: MockClock,
) -> None:
    handed: list[Any] = []
    async with order_harness(policy={"on_handoff": handed.append}) as h:
        await h.manager.place(market(3))
        calls = spy_calls(h)
        h.gateway.faults.arm("http_5xx")
        result = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True, known_size=2)  # server holds 3
        assert result.kind is ResultKind.UNKNOWN and result.attempts == 1
        assert calls.count("closeContract") == 1
        assert [(x.kind, x.intent) for x in handed] == [("unresolved", "close")]
        positions = await h.client.search_open_positions(ACCOUNT)
        assert [(p.contract_id, p.size) for p in positions] == [(CONTRACT, 3)]


async def test_a_partial_close_reads_the_position_first_even_when_the_size_is_known(
    autojump_clock: MockClock,
) -> None:
    async with order_harness() as h:
        await h.manager.place(market(3))
        calls = spy_calls(h)
        result = await h.manager.close_position(ACCOUNT, CONTRACT, size=1, priority=True, known_size=3)
        assert result.kind is ResultKind.ACCEPTED
        assert calls == ["searchOpen", "partialCloseContract"] and result.details["before_from"] == "server"


async def test_flatten_closes_the_positions_it_just_read_without_reading_each_again(
    autojump_clock: MockClock,
) -> None:
    async with order_harness() as h:
        await h.manager.place(market(2))
        calls = spy_calls(h)
        result = await h.manager.flatten(ACCOUNT)
        assert result.kind is ResultKind.ACCEPTED and result.reason == "verified flat"
        assert calls == ["searchOpen", "closeContract", "searchOpen"]


async def test_a_known_size_of_zero_is_refused(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        with pytest.raises(ValueError, match="known_size"):
            await h.manager.close_position(ACCOUNT, CONTRACT, known_size=0)
