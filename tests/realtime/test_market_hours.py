"""The market hub's feed watchdog knows market hours: a closed market is silent by nature.

First the pure answer to "is CME Globex open at this instant" (:data:`engine.risk.calendar.CME_GLOBEX`), checked at
the boundaries and against the simulator's independent ``cme_is_open`` over random instants (DST changes included);
then the watchdog driven by it, in virtual time against the real simulator hubs, with the manager's wall clock
pinned where each test needs it: no stale-feed reconnect for hours of a closed weekend or through the daily halt,
and a silent feed reconnected exactly ``staleThreshold`` after the market (re)opens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.timebase import WallClock
from engine.realtime import HubEvents, HubManager, market_hub
from engine.risk.calendar import CME_GLOBEX
from machines.connection import ConnectionState
from settings import SignalrSettings
from simulator.market import cme_is_open
from tests.realtime.harness import CONTRACT, MARKET_URL, MemoryConnector, Recorder, SimTokens, start

CHICAGO = ZoneInfo("America/Chicago")
STALE_S = 60.0


def chicago(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11, year: int = 2026) -> datetime:
    """A Chicago wall time (November 2026: the 22nd is a Sunday, the 28th a Saturday; CST)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=CHICAGO)


# ------------------------------------------------------------------------------------------------ the pure answer


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        (chicago(28, 12), False),  # Saturday
        (chicago(22, 16, 59), False),  # Sunday before the open
        (chicago(22, 17), True),  # Sunday 17:00 opens the week
        (chicago(23, 15, 59), True),  # Monday afternoon
        (chicago(23, 16), False),  # the daily halt starts at 16:00
        (chicago(23, 16, 59, 59), False),
        (chicago(23, 17), True),  # and ends at 17:00
        (chicago(27, 15, 59), True),  # Friday
        (chicago(27, 16), False),  # Friday 16:00 closes the week
        (chicago(27, 17), False),  # no Friday-evening session
        (chicago(8, 17, month=3), True),  # Sunday open on the spring-forward day (CDT)
        (chicago(1, 16, 30, month=11), False),  # Sunday 16:30 on the fall-back day (CST)
    ],
)
def test_cme_globex_open_at_known_instants(instant: datetime, is_open: bool) -> None:
    assert CME_GLOBEX.is_open(instant) is is_open


INSTANTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2031, 1, 1), timezones=st.just(UTC))


@given(INSTANTS)
def test_cme_globex_agrees_with_the_simulators_hours(instant: datetime) -> None:
    assert CME_GLOBEX.is_open(instant) is cme_is_open(instant)


@given(INSTANTS)
def test_next_open_is_the_first_open_instant_after_now(instant: datetime) -> None:
    opens = CME_GLOBEX.next_open(instant)
    assert opens > instant and CME_GLOBEX.is_open(opens)
    assert not CME_GLOBEX.is_open(opens - timedelta(microseconds=1))  # a halt or the weekend ends there
    if not CME_GLOBEX.is_open(instant):  # and nothing in between was open: it is the next open
        assert opens - instant <= timedelta(days=2, hours=1)
        assert not CME_GLOBEX.is_open(instant + (opens - instant) / 2)


# ------------------------------------------------------------------------------------------------ the watchdog


def _market(tokens: SimTokens, connector: MemoryConnector, now: datetime, recorder: Recorder,
            **kwargs: Any) -> tuple[HubManager, trio.MemoryReceiveChannel[HubEvents]]:
    """A market hub whose wall clock reads ``now`` at the start; the simulator publishes no market data, so the
    feed is silent throughout while the server's pings keep the socket alive."""
    send, receive = trio.open_memory_channel[HubEvents](100)
    cfg = SignalrSettings(health={"ping_interval": 30_000, "ping_timeout": 5_000,
                                  "stale_threshold": int(STALE_S * 1000)})
    kwargs.setdefault("market_hours", CME_GLOBEX)  # the Engine's choice
    manager = market_hub(MARKET_URL, tokens, send, connector=connector, signalr=cfg, listeners=[recorder],
                         wall_clock=WallClock(now), **kwargs)
    manager.set_market_contracts({CONTRACT})
    return manager, receive


async def test_a_closed_market_is_never_stale_for_hours(
        nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    manager, _ = _market(tokens, connector, chicago(27, 16, 30), recorder)  # Friday, just after the close
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(4 * 3600)  # 240 staleThresholds of silence (hours of virtual time cost real seconds: pings)
    assert manager.state is ConnectionState.CONNECTED
    assert manager.generation == 1 and manager.stale_reconnects == 0
    assert recorder.at("heartbeat_missed") == []


async def test_a_silent_feed_is_stale_only_after_the_market_opens(
        nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    manager, _ = _market(tokens, connector, chicago(22, 16), recorder)  # Sunday, an hour before the open
    await start(nursery, manager)
    await manager.wait_connected()
    t0 = trio.current_time()
    await manager.wait_state(ConnectionState.RECONNECTING)
    assert recorder.at("heartbeat_missed") == [t0 + 3600 + STALE_S]  # 17:00 + staleThreshold, not 16:01
    assert "stale feed" in recorder.causes("heartbeat_missed")[0]


async def test_the_daily_halt_postpones_a_due_stale_feed_until_after_the_reopen(
        nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    manager, _ = _market(tokens, connector, chicago(23, 15, 59, 30), recorder)  # Monday, 30 s before the halt
    await start(nursery, manager)
    await manager.wait_connected()
    t0 = trio.current_time()
    await manager.wait_state(ConnectionState.RECONNECTING)
    # the feed would have been stale at 16:00:30, inside the halt; it is at 17:01, staleThreshold after the reopen
    assert recorder.at("heartbeat_missed") == [t0 + 30 + 3600 + STALE_S]


async def test_an_open_market_with_a_silent_feed_reconnects_after_stale_threshold(
        nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    manager, _ = _market(tokens, connector, chicago(25, 10), recorder)  # Wednesday morning
    await start(nursery, manager)
    await manager.wait_connected()
    t0 = trio.current_time()
    await manager.wait_state(ConnectionState.RECONNECTING)
    assert recorder.at("heartbeat_missed") == [t0 + STALE_S]
    assert manager.stale_reconnects == 1


async def test_without_market_hours_the_feed_is_watched_around_the_clock(
        nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, autojump_clock: trio.testing.MockClock,
) -> None:
    recorder = Recorder()
    manager, _ = _market(tokens, connector, chicago(28, 12), recorder, market_hours=None)  # Saturday
    await start(nursery, manager)
    await manager.wait_connected()
    t0 = trio.current_time()
    await manager.wait_state(ConnectionState.RECONNECTING)
    assert recorder.at("heartbeat_missed") == [t0 + STALE_S]
