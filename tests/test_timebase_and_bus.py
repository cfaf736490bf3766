from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio

from engine.protocol.timebase import WallClock
from simulator.bus import EventBus, HubEvent, SubscriberOverflow

EPOCH = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


async def test_wall_clock_follows_virtual_time(autojump_clock) -> None:
    clock = WallClock(EPOCH)
    assert clock.now() == EPOCH
    await trio.sleep(3600)
    assert clock.now() == EPOCH + timedelta(hours=1)
    target = EPOCH + timedelta(hours=2)
    assert clock.trio_time_at(target) == pytest.approx(trio.current_time() + 3600)


def test_wall_clock_rejects_naive_epoch() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        WallClock(datetime(2026, 1, 1))


async def test_bus_routes_by_hub_and_cuts_off_slow_subscribers() -> None:
    bus = EventBus()
    order = HubEvent("user", "GatewayUserOrder", ({"action": 1, "data": {"id": 1}},), account_id=7)
    quote = HubEvent("market", "GatewayQuote", ("CON.F.US.EP.Z26", {"lastPrice": 1.0}), contract_id="CON.F.US.EP.Z26")
    with bus.subscribe("user", max_buffer=2) as user, bus.subscribe("market") as market:
        assert bus.subscriber_count == 2
        bus.publish(order)
        bus.publish(quote)
        assert await user.receive() == order
        assert await market.receive() == quote
        for _ in range(3):
            bus.publish(order)
        assert user.overflowed
        await user.receive()
        await user.receive()
        with pytest.raises(SubscriberOverflow):
            await user.receive()
    assert bus.subscriber_count == 0
