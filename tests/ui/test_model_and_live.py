"""Model rows built from the engine's real components, and the Trio drivers (live dashboard, status log) in virtual
time."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
import trio
from rich.console import Console

from engine.auth.manager import TokenManager
from engine.gateway.breaker import CircuitBreaker
from engine.gateway.errors import TransientError
from engine.gateway.ratelimit import RateLimiter, WindowLimit
from engine.protocol.enums import PositionType
from engine.protocol.models import PositionModel
from engine.protocol.timebase import WallClock
from engine.realtime.health import HubHealth
from engine.store.records import EnforcementEntry, ReconcileFinding
from engine.ui import (
    BreakerRow,
    DashboardModel,
    EnforcementRow,
    FindingRow,
    HubRow,
    PositionRow,
    RateLimitRow,
    TokenRow,
    is_interactive,
    run_dashboard,
    run_status_log,
)
from machines.connection import ConnectionState
from simulator.tokens import TokenService
from tests.ui.sample import sample_model

EPOCH = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def test_hub_row_from_health() -> None:
    health = HubHealth(
        hub="user", state=ConnectionState.RECONNECTING, generation=4, attempt=2, reconnects=3, connected_for_s=None,
        last_message_age_s=12.5, last_event_age_s=20.0, latency_s=0.0421, heartbeats_sent=10, heartbeats_missed=1,
        stale_reconnects=0, events_received=99, subscriptions=2, reconcile_runs=3, reconcile_failures=0,
        last_disconnect="ws_drop",
    )
    assert HubRow.from_health(health) == HubRow("user", "reconnecting", 12.5, 3, pytest.approx(42.1))


async def test_breaker_row_from_a_tripped_breaker(autojump_clock: Any) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=2, open_timeout_s=30.0, log_events=False)
    assert BreakerRow.from_breaker(breaker) == BreakerRow("rest", "closed", None)
    for _ in range(2):
        breaker.record(breaker.admit("/api/Order/place"), TransientError("boom", endpoint="x", breaker_failure=True))
    await trio.sleep(10)
    row = BreakerRow.from_breaker(breaker)
    assert (row.state, row.retry_in_s) == ("open", pytest.approx(20.0))


async def test_rate_limit_row_from_stats(autojump_clock: Any) -> None:
    limiter = RateLimiter(general=WindowLimit(10, 60.0), history=WindowLimit(5, 30.0), log_events=False)
    for _ in range(3):
        await limiter.acquire("/api/Order/place")
    await limiter.acquire("/api/History/retrieveBars")
    limiter.record_429("/api/Order/place", 2.0)
    row = RateLimitRow.from_stats(limiter.stats())
    assert [(w.name, w.used, w.limit, w.window_s) for w in row.windows] == [
        ("general", 3, 10, 60.0), ("history", 1, 5, 30.0)]
    assert (row.queue_depth, row.rate_limited_429) == (0, 1)
    assert row.paused_for_s == pytest.approx(2.0, abs=0.01)


class JwtAuth:
    """The two auth calls answered with real JWTs from the simulator's token service."""

    def __init__(self, service: TokenService) -> None:
        self.service = service

    async def auth_login(self, username: str, api_key: str) -> str:
        return self.service.issue(username)

    async def auth_validate(self, token: str) -> str:
        return self.service.issue("u")


async def test_token_row_from_manager(autojump_clock: Any) -> None:
    service = TokenService(WallClock(EPOCH), b"secret", ttl_s=8 * 3600.0)
    manager = TokenManager(JwtAuth(service), username="u", api_key="k", buffer_s=2 * 3600.0,
                           wall_clock=WallClock(EPOCH), log_events=False)
    assert TokenRow.from_manager(manager) == TokenRow("none", None, None, None)
    await manager.current()
    await trio.sleep(60)
    row = TokenRow.from_manager(manager)
    assert (row.state, row.revision) == ("valid", 1)
    assert row.expires_in_s == pytest.approx(8 * 3600 - 60, abs=1.0)
    assert row.refresh_in_s == pytest.approx(6 * 3600 - 60, abs=1.0)


def test_position_row_signs_and_names() -> None:
    def position(kind: PositionType) -> PositionModel:
        return PositionModel(id=1, account_id=1001, contract_id="CON.F.US.EP.Z26", creation_timestamp=EPOCH,
                             type=kind, size=3, average_price=6350.25)

    assert PositionRow.from_model(position(PositionType.LONG), 6351.0) == PositionRow(
        "CON.F.US.EP.Z26", 3, 6350.25, 6351.0)
    assert PositionRow.from_model(position(PositionType.SHORT), name="ESZ6") == PositionRow("ESZ6", -3, 6350.25)


def test_enforcement_and_finding_rows_from_records() -> None:
    entry = EnforcementEntry(rule="maxContracts", measured={"total": 12}, limit=10.0,
                             actions=["close CON.F.US.EP.Z26 long 12"], outcome="completed", triggered_at=EPOCH,
                             account_id=1001)
    assert EnforcementRow.from_entry(entry) == EnforcementRow(EPOCH, 1001, "maxContracts",
                                                              ("close CON.F.US.EP.Z26 long 12",), "completed")
    finding = ReconcileFinding(kind="missed_order_filled", details={"orderId": 9007, "status": 2}, at=EPOCH,
                               account_id=1002)
    assert FindingRow.from_finding(finding) == FindingRow(EPOCH, "missed_order_filled", 1002, "orderId=9007 status=2")


def test_is_interactive() -> None:
    assert not is_interactive(Console(file=io.StringIO()))
    assert is_interactive(Console(file=io.StringIO(), force_terminal=True))


async def test_live_dashboard_refreshes_on_the_trio_clock_and_stops_cleanly(autojump_clock: Any) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    calls: list[float] = []

    def get_model() -> DashboardModel:
        calls.append(trio.current_time())
        return sample_model()

    threads = threading.active_count()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(run_dashboard, get_model, refresh_s=0.5, console=console))
        await trio.sleep(3.1)
        assert threading.active_count() == threads  # rich started no refresh thread
        nursery.cancel_scope.cancel()
    assert len(calls) == 7  # the first frame, then one per 0.5 s for 3 s
    assert calls[1] - calls[0] == pytest.approx(0.5)
    text = out.getvalue()
    assert text.count("Connections") >= 7  # redrawn in place, frame after frame
    assert "dailyLossLimit" in text and "429s 0" in text
    assert not console.is_alt_screen and text.endswith("\x1b[?25h")  # stopped: the cursor is shown again


async def test_live_dashboard_survives_a_failing_model(autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    n = 0

    def get_model() -> DashboardModel:
        nonlocal n
        n += 1
        if n in (2, 3):
            raise KeyError("account 1009")
        return sample_model()

    with trio.move_on_after(2.1):
        await run_dashboard(get_model, refresh_s=0.5, console=console)
    assert n == 5
    assert [r.message for r in caplog.records].count("dashboard frame failed (showing the previous one)") == 1


async def test_live_dashboard_refuses_a_bad_refresh() -> None:
    with pytest.raises(ValueError, match="refresh_s"):
        await run_dashboard(sample_model, refresh_s=0)


async def test_status_log_emits_on_the_trio_clock(autojump_clock: Any) -> None:
    lines: list[str] = []
    with trio.move_on_after(25):
        await run_status_log(sample_model, interval_s=10, emit=lines.append)
    assert len(lines) == 3 and all(line.startswith("[chaos] up 1:02:05") for line in lines)
