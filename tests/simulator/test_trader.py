"""The scripted trader against the in-process simulator in virtual time: it trades (orders of every kind, trades,
modifications, cancels, closes), replays from its seed, rides through a fault storm, stays inside the rate windows
over 30 virtual minutes, breaks each risk rule on purpose, and stops quietly on wrong credentials. One short
real-socket run against a hypercorn-served simulator."""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import trio

from engine.protocol.enums import OrderStatus, OrderType
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.server import serve
from simulator.trader import BREACH_KINDS, RequestBudget, ScriptedTrader
from simulator.transport import SimulatorTransport

EPOCH = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday afternoon
USER, KEY = "sim", "sim-key"
ACCOUNTS = (1001, 1002)


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Passes every request to the simulator and notes (Trio time, path, status or exception name): an observer of
    the wire, not a stand-in for anything."""

    inner: httpx.AsyncBaseTransport
    seen: list[tuple[float, str, str]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.HTTPError as exc:
            self.seen.append((trio.current_time(), request.url.path, type(exc).__name__))
            raise
        self.seen.append((trio.current_time(), request.url.path, str(response.status_code)))
        return response


@asynccontextmanager
async def trading(config: SimConfig | None = None, **options: Any) -> AsyncIterator[
    tuple[ScriptedTrader, SimulatedGateway, Recorder]
]:
    """A running simulator with a running trader on it (cancelled on exit; an exception of the trader fails)."""
    gateway = SimulatedGateway(config or SimConfig(epoch=EPOCH))
    recorder = Recorder(SimulatorTransport(build_app(gateway)))
    options = {"username": USER, "api_key": KEY, "accounts": ACCOUNTS, "seed": 1, **options}
    trader = ScriptedTrader(recorder, **options)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        await nursery.start(trader.run)
        yield trader, gateway, recorder
        nursery.cancel_scope.cancel()


def trader_orders(gateway: SimulatedGateway) -> list[dict[str, Any]]:
    return [o for o in gateway.snapshot()["orders"] if str(o.get("customTag", "")).startswith("trader-")]


async def test_it_trades_every_kind_of_order(autojump_clock: Any) -> None:
    async with trading(breach_every=None) as (trader, gateway, _):
        await trio.sleep(600)
        snapshot = gateway.snapshot()
    orders = trader_orders(gateway)
    kinds = Counter((o["type"], o["status"]) for o in orders)
    assert kinds[(OrderType.MARKET, OrderStatus.FILLED)] > 20
    assert kinds[(OrderType.LIMIT, OrderStatus.CANCELLED)] + kinds[(OrderType.STOP, OrderStatus.CANCELLED)] > 0
    assert {o["type"] for o in orders} >= {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP}
    assert {o["accountId"] for o in orders} == set(ACCOUNTS)
    assert len(orders) == trader.stats.orders_placed
    trades = [t for t in snapshot["trades"] if t["accountId"] in ACCOUNTS]
    assert len(trades) > 20 and any(t.get("profitAndLoss") not in (None, 0) for t in trades)
    balances = {a["id"]: a["balance"] for a in snapshot["accounts"]}
    assert all(balances[a] != 50_000.0 for a in ACCOUNTS)  # fees and P&L moved the balances
    s = trader.stats
    assert min(s.modified, s.cancelled, s.closes) > 0
    assert (s.errors, s.rate_limited, s.relogins, s.breaches_attempted) == (0, 0, 0, 0)
    assert 150 <= s.steps <= 250  # 20 steps a minute on average over 10 minutes


async def test_same_seed_same_script(autojump_clock: Any) -> None:
    runs = []
    for _ in range(2):
        async with trading(seed=42, breach_every=10) as (_, gateway, _recorder):
            await trio.sleep(240)
        runs.append([(o["accountId"], o["contractId"], o["type"], o["side"], o["size"], o["customTag"])
                     for o in trader_orders(gateway)])
    assert runs[0] == runs[1] and len(runs[0]) > 30


async def test_it_rides_through_a_fault_storm(autojump_clock: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simulator.trader")
    async with trading(breach_every=8) as (trader, gateway, recorder):
        faults = gateway.faults
        faults.arm("http_5xx", count=None, probability=0.3)
        faults.arm("lose_response", count=None, probability=0.2)
        faults.arm("http_429", count=None, probability=0.05, params={"retry_after_s": 3})
        faults.arm("delay", count=None, probability=0.05, params={"seconds": 15.0})  # past the 10 s timeout
        await trio.sleep(300)
        faults.arm("expire_tokens")
        await trio.sleep(120)
        faults.arm("outage", duration_s=90.0)
        await trio.sleep(120)
        faults.arm("revoke_tokens")
        await trio.sleep(60)
        stormy = trader.stats.orders_placed
        faults.disarm()
        await trio.sleep(300)
        s = trader.stats
        assert s.orders_placed > stormy + 20  # still trading after the storm
        assert s.errors > 20 and s.rate_limited > 0 and s.relogins >= 2 and s.breaches_attempted > 0
        statuses = Counter(status for _, _, status in recorder.seen)
        assert statuses["500"] + statuses["502"] + statuses["503"] > 0
        assert statuses["RemoteProtocolError"] > 0 and statuses["ConnectError"] > 0 and statuses["401"] >= 2
        assert len(trader_orders(gateway)) > s.orders_placed  # lost responses: placed but never confirmed
    assert KEY not in caplog.text and "Bearer" not in caplog.text


async def test_it_stays_inside_the_rate_windows_for_30_minutes(autojump_clock: Any) -> None:
    async with trading(pace_per_min=40, breach_every=3, max_requests_per_min=60) as (trader, _, recorder):
        await trio.sleep(1800)
    times = [t for t, _, _ in recorder.seen]
    assert len(times) > 1500  # it did push against its own budget
    busiest = max(bisect.bisect_left(times, t + 60.0) - i for i, t in enumerate(times))
    assert busiest <= 60 < 200
    assert trader.stats.rate_limited == 0 and not any(status == "429" for _, _, status in recorder.seen)
    assert trader.stats.breaches_attempted > 50


async def breach_once(kind: str, **options: Any) -> tuple[ScriptedTrader, SimulatedGateway]:
    async with trading(breach_every=1, breach_kinds=(kind,), pace_per_min=1, **options) as (trader, gateway, _):
        await trio.sleep(20)  # the first step runs at once; the next one is at least 30 s away
    assert trader.stats.breaches == {kind: 1}
    return trader, gateway


async def test_breach_max_contracts(autojump_clock: Any) -> None:
    _, gateway = await breach_once("max_contracts", oversize=13)
    (order,) = trader_orders(gateway)
    assert (order["type"], order["size"], order["status"]) == (OrderType.MARKET, 13, OrderStatus.FILLED)
    (position,) = gateway.snapshot()["positions"]
    assert position["size"] == 13


async def test_breach_loss_streak(autojump_clock: Any) -> None:
    _, gateway = await breach_once("loss_streak", loss_usd=1200.0)
    snapshot = gateway.snapshot()
    pnl = sum(t.get("profitAndLoss") or 0.0 for t in snapshot["trades"])
    fees = sum(t.get("fees") or 0.0 for t in snapshot["trades"])
    assert pnl - fees <= -1200.0
    assert [t.get("profitAndLoss") is not None and t["profitAndLoss"] < 0 for t in snapshot["trades"]].count(True) == 3
    assert snapshot["positions"] == []  # each losing trip was closed


async def test_breach_trade_burst(autojump_clock: Any) -> None:
    _, gateway = await breach_once("trade_burst", burst_trades=14)
    orders = trader_orders(gateway)
    assert len(orders) == 14 and all(o["status"] == OrderStatus.FILLED and o["size"] == 1 for o in orders)
    assert len({(o["accountId"], o["contractId"]) for o in orders}) == 1
    assert gateway.snapshot()["positions"] == []  # alternating sides: flat again


async def test_off_session(autojump_clock: Any) -> None:
    async with trading(breach_every=None, session_open=lambda: False) as (trader, gateway, _):
        await trio.sleep(300)
    assert trader_orders(gateway) == [] and trader.stats.steps > 50  # a well-behaved trader waits for the session
    trader, gateway = await breach_once("off_session", session_open=lambda: False)
    assert [o["status"] for o in trader_orders(gateway)] == [OrderStatus.FILLED]


async def test_off_session_is_never_chosen_without_a_session(autojump_clock: Any) -> None:
    async with trading(breach_every=1, breach_kinds=("off_session",)) as (trader, _, _recorder):
        await trio.sleep(120)
    assert trader.stats.breaches_attempted == 0 and trader.stats.orders_placed > 0


async def test_wrong_credentials_stop_the_trader_quietly(autojump_clock: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    gateway = SimulatedGateway(SimConfig(epoch=EPOCH))
    trader = ScriptedTrader(SimulatorTransport(build_app(gateway)), username=USER, api_key="wrong-key-123",
                            accounts=ACCOUNTS)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        with trio.fail_after(5):
            await trader.run()  # returns instead of raising
        nursery.cancel_scope.cancel()
    assert trader.stats.orders_placed == 0
    assert "refused user 'sim'" in caplog.text and "wrong-key-123" not in caplog.text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"accounts": ()}, "accounts"),
        ({"contracts": ()}, "contracts"),
        ({"api_key": ""}, "api_key"),
        ({"pace_per_min": 0}, "pace_per_min"),
        ({"pace_per_min": 100, "max_requests_per_min": 60}, "must not exceed max_requests_per_min"),
        ({"breach_every": 0}, "breach_every"),
        ({"breach_kinds": ("max_contracts", "fat_finger")}, "unknown breach kind 'fat_finger'"),
        ({"oversize": 0}, "oversize"),
        ({"loss_usd": -5}, "loss_usd"),
    ],
)
def test_bad_parameters_are_named(options: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"username": USER, "api_key": KEY, "accounts": ACCOUNTS}
    with pytest.raises(ValueError, match=message):
        ScriptedTrader("http://127.0.0.1:1", **{**base, **options})
    assert set(BREACH_KINDS) == {"max_contracts", "loss_streak", "trade_burst", "off_session"}


async def test_request_budget_is_a_sliding_window(autojump_clock: Any) -> None:
    budget = RequestBudget(3, 10.0)
    granted: list[float] = []
    for _ in range(7):
        await budget.acquire()
        granted.append(trio.current_time())
    assert granted == [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 20.0]


@pytest.mark.system
async def test_over_a_real_socket() -> None:
    gateway = SimulatedGateway(SimConfig(epoch=EPOCH))
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(serve, gateway)
        trader = ScriptedTrader(url, username=USER, api_key=KEY, accounts=ACCOUNTS, pace_per_min=60,
                                breach_every=None, max_requests_per_min=120)
        await nursery.start(trader.run)
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    assert trader.stats.orders_placed >= 1 and trader.stats.errors == 0
    assert trader_orders(gateway)
