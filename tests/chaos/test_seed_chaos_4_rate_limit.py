"""Seed chaos test 4: the server answers 429 anyway (another client on the same key); requests queue, all complete.

What the seed requires, asserted as such: every request completes and no 429 reaches a caller (each read and each
enforcement cancel gets the server's own answer); throttling works (in no stretch of ``windowSeconds`` do more than
``requests`` calls reach the wire, so the simulator's own window never answers 429: the only 429s on the wire are the
injected ones); requests queue (a burst beyond one window's allowance takes as many windows as it needs). The number
of 429s is whatever the seeded fault injected (at most its armed count); the limiter must have counted exactly those.
(How long a 429 pauses admissions is the limiter's unit test: here the full window binds first.)
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import httpx
import trio

from engine.gateway.testing import simulated_client

READS = 300
"""More than the general window allows in one window (200 / 60 s), so the limiter must queue."""
CANCELS = 5
ARMED_429S = 6
RETRY_AFTER_S = 3


@dataclass
class WireLog:
    """The Trio time of every request as it reaches the wire and of every 429 answer."""

    sent: list[float] = field(default_factory=list)
    answered_429: list[float] = field(default_factory=list)


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, wire: WireLog) -> None:
        self.inner, self.wire = inner, wire

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.wire.sent.append(trio.current_time())
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            self.wire.answered_429.append(trio.current_time())
        return response


async def test_injected_429s_pause_the_limiter_and_every_request_completes(autojump_clock: object) -> None:
    wire = WireLog()
    async with simulated_client(wrap_transport=lambda inner: Recording(inner, wire)) as sim:
        client = sim.client
        general = sim.settings.error_handling.rate_limit.general
        await client.tokens.current()
        sim.gateway.faults.arm("http_429", count=ARMED_429S, probability=0.5,
                               params={"retry_after_s": RETRY_AFTER_S})
        completed = 0
        cancels_ok = 0

        async def read() -> None:
            nonlocal completed
            await client.search_open_orders(1001)
            completed += 1

        async def enforcement_cancel() -> None:
            nonlocal cancels_ok
            outcome = await client.cancel_order(1001, 123456, enforcement=True)
            # reached the server (not found is its answer): queued behind the pause, never lost
            assert outcome.rejected and outcome.code == 2
            cancels_ok += 1

        started, before = trio.current_time(), len(wire.sent)
        async with trio.open_nursery() as nursery:
            for _ in range(READS):
                nursery.start_soon(read)
            for _ in range(CANCELS):
                nursery.start_soon(enforcement_cancel)
        elapsed = trio.current_time() - started

        # no 429 reached a caller: every call returned the server's own answer
        assert completed == READS and cancels_ok == CANCELS
        # the 429s on the wire are exactly the injected ones (none from the simulator's window) ...
        injected = [r for r in sim.gateway.faults.log if r.kind == "http_429"]
        assert 0 < len(injected) <= ARMED_429S
        assert len(wire.answered_429) == len(injected)
        # ... and the limiter counted each and refused nobody
        stats = client.limiter.stats()
        assert stats.rate_limited_429_total == len(injected) and stats.refused_total == 0
        # throttling: in no window-length stretch did more than the window's requests reach the wire (the login
        # included: the server counts it too) ...
        window_s, limit = general.window_seconds, general.requests
        sent = sorted(wire.sent)
        busiest = max(bisect.bisect_left(sent, t + window_s) - i for i, t in enumerate(sent))
        assert busiest <= limit
        # ... so a burst beyond one window's allowance queued for as many windows as it needed
        in_burst = len(wire.sent) - before
        assert in_burst == READS + CANCELS + len(injected)  # one retry per 429, nothing else resent
        assert elapsed >= (math.ceil(in_burst / limit) - 1) * window_s
