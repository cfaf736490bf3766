"""feed_mirror: every event in channel order (the channel's items are batches: one frame's events each, applied in
order), drained without a scheduler pass per batch, yet never starving the other tasks; any async iterable of batches
still works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import trio

from engine.protocol.enums import OrderStatus
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


def _batches(events: list[Ev], size: int) -> list[tuple[Ev, ...]]:
    return [tuple(events[i:i + size]) for i in range(0, len(events), size)]


async def test_a_burst_is_applied_in_order_and_other_tasks_still_run() -> None:
    mirror = StateMirror()
    send, receive = trio.open_memory_channel[tuple[Ev, ...]](10_000)
    events = [*_orders(4 * DRAIN_BURST), Ev("market", "GatewayQuote", (ES, {"lastPrice": 1.0}))]
    for batch in _batches(events, 64):  # a yield after every 8 batches
        send.send_nowait(batch)
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
    send, receive = trio.open_memory_channel[tuple[Ev, ...]](0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed_mirror, mirror, receive)
        async with send:
            for batch in _batches(_orders(5), 2):
                await send.send(batch)
    assert [o.id for o in mirror.working_orders()] == [1, 2, 3, 4, 5]


async def test_any_async_iterable_is_fed() -> None:
    mirror = StateMirror()

    async def stream() -> AsyncIterator[tuple[Ev, ...]]:
        events = [*_orders(3), Ev("market", "GatewayQuote", (ES, {"lastPrice": 1.0}))]
        for batch in _batches(events, 2):  # the last one mixes hubs: each event is routed by its own hub
            yield batch

    await feed_mirror(mirror, stream())
    assert len(mirror.working_orders()) == 3 and mirror.last_quote(ES) is not None


async def test_a_batch_is_applied_whole_and_in_order_the_yield_comes_between_batches() -> None:
    """One frame's events are applied together even when the frame is larger than DRAIN_BURST: no other task runs in
    the middle of a batch (the yield comes once the burst is spent, before the next batch)."""
    mirror = StateMirror()
    send, receive = trio.open_memory_channel[tuple[Ev, ...]](10)
    big = tuple(_orders(2 * DRAIN_BURST))
    send.send_nowait(big)
    send.send_nowait((Ev("user", "GatewayUserOrder", (wrap(order(1, status=OrderStatus.FILLED, fill=2,
                                                                    at=timedelta(1))),)),))  # then order 1 fills
    send.close()
    seen_mid_batch: list[int] = []

    async def observer() -> None:
        while True:
            seen_mid_batch.append(len(mirror.working_orders()))
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(observer)
        await trio.lowlevel.checkpoint()
        await feed_mirror(mirror, receive)
        nursery.cancel_scope.cancel()
    assert set(seen_mid_batch) <= {0, 2 * DRAIN_BURST}  # never part of the big batch
    assert [o.id for o in mirror.working_orders()] == list(range(2, 2 * DRAIN_BURST + 1))
