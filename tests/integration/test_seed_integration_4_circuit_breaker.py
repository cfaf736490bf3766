"""Seed integration test 4: 5 consecutive failures open the breaker; fallback while open; half-open; closed."""

from __future__ import annotations

import trio

from engine.gateway.breaker import BreakerState
from engine.gateway.errors import CircuitOpenError
from engine.gateway.testing import simulated_client


async def test_five_consecutive_failures_open_fallback_half_open_closed(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        client = sim.client
        seen: list[tuple[str, str]] = []
        client.breaker.add_listener(lambda t: seen.append((t.source, t.target)) if t.source != t.target else None)
        fresh = await client.with_stale_fallback(lambda: client.search_open_positions(1001))
        assert not fresh.stale and fresh.value == []

        sim.gateway.faults.arm("http_5xx", count=5, params={"status": 503})
        result = await client.with_stale_fallback(lambda: client.search_open_positions(1001))
        # the read's 5 attempts all failed: the breaker opened and the last good answer was served, flagged
        assert client.breaker.state is BreakerState.OPEN
        assert result.stale and result.value == [] and result.as_of is not None
        assert seen == [("closed", "open")]

        try:
            await client.search_open_positions(1001)
        except CircuitOpenError as exc:
            assert exc.retry_in_s is not None and 0 < exc.retry_in_s <= 60 + 1e-9  # float sums of Trio times
        else:
            raise AssertionError("the open breaker let a read through")

        await trio.sleep(60)  # errorHandling.circuitBreaker.timeout
        fresh = await client.with_stale_fallback(lambda: client.search_open_positions(1001))
        assert not fresh.stale
        assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
        assert client.breaker.state is BreakerState.CLOSED
