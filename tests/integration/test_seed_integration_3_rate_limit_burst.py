"""Seed integration test 3: a burst of more than 50 requests in 30 s is throttled client-side: no 429, all complete."""

from __future__ import annotations

from datetime import timedelta

import httpx
import trio

from engine.gateway.testing import SIM_EPOCH, simulated_client
from engine.protocol import models as m
from engine.protocol.enums import AggregateBarUnit
from tests.gateway.sim_helpers import ScriptedTransport


class StatusCounter(ScriptedTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner)
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.statuses.append(response.status_code)
        return response


async def test_burst_over_the_history_limit_is_paced_without_429(autojump_clock: object) -> None:
    holder: list[StatusCounter] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        holder.append(StatusCounter(inner))
        return holder[0]

    async with simulated_client(wrap_transport=wrap) as sim:  # the simulator enforces 50/30 s and 200/60 s
        await sim.client.tokens.current()
        bars_done = 0
        reads_done = 0
        request = m.RetrieveBarRequest(
            contract_id="CON.F.US.EP.Z26", live=False, start_time=SIM_EPOCH - timedelta(minutes=30),
            end_time=SIM_EPOCH, unit=int(AggregateBarUnit.MINUTE), unit_number=1, limit=10,
            include_partial_bar=False)

        async def bars() -> None:
            nonlocal bars_done
            assert len(await sim.client.retrieve_bars(request)) > 0
            bars_done += 1

        async def read() -> None:
            nonlocal reads_done
            await sim.client.search_open_orders(1001)
            reads_done += 1

        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(120):  # 120 history requests at once: 2.4 x the 30 s window
                nursery.start_soon(bars)
            for _ in range(250):  # and 250 general requests: over the 200 / 60 s window
                nursery.start_soon(read)
        elapsed = trio.current_time() - start
        assert bars_done == 120 and reads_done == 250
        statuses = holder[0].statuses
        assert 429 not in statuses and set(statuses) == {200}
        assert sim.client.limiter.stats().rate_limited_429_total == 0
        assert 60.0 <= elapsed < 130.0  # throttled (3 history windows), not stalled
