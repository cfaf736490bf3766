"""Seed chaos test 4: the server answers 429 anyway (another client on the same key); requests queue, all complete."""

from __future__ import annotations

import trio

from engine.gateway.testing import simulated_client


async def test_injected_429s_pause_the_limiter_and_every_request_completes(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        client = sim.client
        await client.tokens.current()
        sim.gateway.faults.arm("http_429", count=6, probability=0.5, params={"retry_after_s": 3})
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

        async with trio.open_nursery() as nursery:
            for _ in range(300):  # more than the 200 / 60 s window as well
                nursery.start_soon(read)
            for _ in range(5):
                nursery.start_soon(enforcement_cancel)
        assert completed == 300 and cancels_ok == 5
        stats = client.limiter.stats()
        assert stats.rate_limited_429_total == 6 and stats.refused_total == 0
        assert sim.gateway.faults.armed() == {}
