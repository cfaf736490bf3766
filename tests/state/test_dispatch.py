"""feed_mirror: every event in channel order, drained without a scheduler pass per event, yet never starving the
other tasks; any async iterable still works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import trio

from engine.state.dispatch import DRAIN_BURST, feed_mirror
from engine.state.mirror import StateMirror
from tests.state.test_mirror import ES, order, wrap


@dataclass(frozen=True)
class Ev:
    hub: str
    target: str
    arguments: tuple[Any, ...]


def _orders(n: int) -> list[Ev]:
    return [Ev("user", "GatewayUserOrder", (wrap(order(i)),)) for i in range(1, n + 1)]


async def test_a_burst_is_applied_in_order_and_other_tasks_still_run() -> None:
    mirror = StateMirror()
    send, receive = trio.open_memory_channel[Ev](10_000)
    events = [*_orders(4 * DRAIN_BURST), Ev("market", "GatewayQuote", (ES, {"lastPrice": 1.0}))]
    for event in events:
        send.send_nowait(event)
    send.close()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await feed_mirror(mirror, receive)
        nursery.cancel_scope.cancel()
    assert [o.id for o in mirror.working_orders()] == list(range(1, 4 * DRAIN_BURST + 1))
    assert mirror.last_quote(ES) is not None
    assert ticks >= 3  # the feeder yielded once per burst (without yielding it would be 1 at most)


async def test_events_sent_while_the_feeder_waits_arrive_and_the_end_of_the_channel_ends_it() -> None:
    mirror = StateMirror()
    send, receive = trio.open_memory_channel[Ev](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed_mirror, mirror, receive)
        async with send:
            for event in _orders(5):
                await send.send(event)
    assert [o.id for o in mirror.working_orders()] == [1, 2, 3, 4, 5]


async def test_any_async_iterable_is_fed() -> None:
    mirror = StateMirror()

    async def stream() -> AsyncIterator[Ev]:
        for event in _orders(3):
            yield event

    await feed_mirror(mirror, stream())
    assert len(mirror.working_orders()) == 3
