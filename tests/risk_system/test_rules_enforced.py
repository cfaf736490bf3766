"""Each risk rule enforced by the whole Engine against the in-process simulator, in virtual time: a breach ends
with a flat account in the simulator's own state (no position, no working order, Suspended bracket children
included), the day stays locked (an order placed afterwards through another REST client is cancelled, a position
it opens is closed at once), the lockout ends at the daily reset (for the session rule: at the next opening), and
every decision is in the store's enforcement log. The last test breaches while the network is down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from engine.app import state_differences
from engine.protocol.enums import OrderSide, OrderStatus
from machines.connection import ConnectionState
from simulator.gateway import SimulatedGateway
from tests.app.harness import ACCOUNT, ES, Running, place, quiet_config, running_engine
from tests.risk_system.harness import (
    account_state,
    bracketed_limit,
    enforcement_log,
    is_flat,
    market,
    risk_settings,
    until,
)

MES = "CON.F.US.MES.Z26"
QUIET = {"save_interval_s": 3600.0}


def order_status(gateway: SimulatedGateway, order_id: int) -> OrderStatus:
    return OrderStatus(next(o for o in gateway.snapshot()["orders"] if o["id"] == order_id)["status"])


async def prepare(run: Running) -> list[int]:
    """A resting bracketed entry (parent Open, two Suspended children) on the account before the breach."""
    parent = await bracketed_limit(run.sim, "bracket-before")
    await until(lambda: len(account_state(run.sim.gateway)[1]) == 3)
    statuses = sorted(o["status"] for o in account_state(run.sim.gateway)[1])
    assert statuses == [OrderStatus.OPEN, OrderStatus.SUSPENDED, OrderStatus.SUSPENDED]
    return [o["id"] for o in account_state(run.sim.gateway)[1] if o["id"] == parent or o["parentOrderId"] == parent]


async def locked_day_then_reset(run: Running, unlock_at_utc: Any) -> None:
    """After the breach: new orders are removed at once; after ``unlock_at_utc`` they stay."""
    gateway = run.sim.gateway
    resting = await place(run.sim, "while-locked-limit")
    await until(lambda: order_status(gateway, resting) is OrderStatus.CANCELLED, timeout_s=10)
    await market(run.sim, "while-locked-market", size=1)
    await until(lambda: is_flat(gateway), timeout_s=10)
    enforcer = run.engine.enforcer
    assert enforcer is not None and enforcer.states[ACCOUNT].lockout is not None
    # the lockout ends at its time; the account may trade again
    wait = (unlock_at_utc - gateway.clock.now()).total_seconds()
    assert wait > 0
    await trio.sleep(wait + 2)
    assert enforcer.states[ACCOUNT].lockout is None
    kept = await place(run.sim, "after-unlock")
    await market(run.sim, "after-unlock-market", size=1)
    await trio.sleep(10)
    positions, orders = account_state(gateway)
    assert [o["id"] for o in orders] == [kept] and [p["size"] for p in positions] == [1]
    assert state_differences(run.engine.snapshot(), gateway.snapshot(), run.engine.account_ids) == []


def assert_logged(rows: list[dict[str, Any]], rule: str) -> None:
    mine = [r for r in rows if r["account_id"] == ACCOUNT]
    breach = [r for r in mine if r["rule"] == rule and "actions" in r and r["outcome"].startswith("enforced")]
    assert breach, mine
    assert any(a.startswith("close ") for a in breach[0]["actions"])
    assert any(a.startswith("cancel ") and "suspended" in a for a in breach[0]["actions"])
    assert breach[0]["completed_at"] is not None
    assert breach[0]["limit_value"] is not None or rule == "tradingSession"  # a session has a window, no number
    lockouts = [r for r in mine if r["rule"] == "lockout"]
    assert lockouts and all(r["measured"]["lockedOutBy"] == rule for r in lockouts)
    assert any(r["outcome"].startswith("enforced") for r in lockouts)
    assert any(r["rule"] == rule and r["outcome"] == "unlocked" for r in mine), [(r["rule"], r["outcome"])
                                                                                 for r in mine]


def next_reset_utc(run: Running) -> Any:
    return run.engine.rules.calendar.next_reset(run.sim.gateway.clock.now())


async def test_daily_loss_limit(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, daily_loss_limit={"enabled": True, "limit": 500.0})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        gateway = run.sim.gateway
        bracket = await prepare(run)
        await market(run.sim, "long-two", size=2)
        await trio.sleep(3)
        assert not is_flat(gateway)  # nothing breached yet
        entry = account_state(gateway)[0][0]["averagePrice"]
        gateway.set_price(ES, entry - 25.0)  # 2 x 100 ticks x 12.50 = -2500 unrealized
        await until(lambda: is_flat(gateway))
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        await locked_day_then_reset(run, next_reset_utc(run))
    assert_logged(await enforcement_log(db), "dailyLossLimit")


async def test_max_contracts_total(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, max_contracts={"enabled": True, "total": 2})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        gateway = run.sim.gateway
        bracket = await prepare(run)
        await market(run.sim, "two-is-fine", size=2)
        await trio.sleep(3)
        assert not is_flat(gateway)
        await market(run.sim, "one-too-many", size=1)
        await until(lambda: is_flat(gateway))
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        await locked_day_then_reset(run, next_reset_utc(run))
    rows = await enforcement_log(db)
    assert_logged(rows, "maxContracts")
    assert any(r["measured"].get("scope") == "total" and r["measured"].get("contracts") == 3 for r in rows)


async def test_max_contracts_per_symbol(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, max_contracts={"enabled": True, "total": 10, "per_symbol": {"EP": 1}})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        gateway = run.sim.gateway
        bracket = await prepare(run)
        await market(run.sim, "other-symbol", size=3, contract=MES)  # MES is not EP: within the limits
        await market(run.sim, "one-es", size=1)
        await trio.sleep(3)
        assert sorted(p["size"] for p in account_state(gateway)[0]) == [1, 3]
        await market(run.sim, "second-es", size=1)
        await until(lambda: is_flat(gateway))  # every position closes, the MES one included
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        await locked_day_then_reset(run, next_reset_utc(run))
    rows = await enforcement_log(db)
    assert_logged(rows, "maxContracts")
    assert any(r["measured"].get("scope") == "EP" and r["measured"].get("contracts") == 2 for r in rows)


async def test_max_trades_per_day(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, max_trades_per_day={"enabled": True, "limit": 3})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        gateway = run.sim.gateway
        bracket = await prepare(run)
        for n, side in enumerate((OrderSide.BID, OrderSide.ASK, OrderSide.BID)):
            await market(run.sim, f"trade-{n}", side=side)
        await trio.sleep(3)
        assert [p["size"] for p in account_state(gateway)[0]] == [1]  # three trades: at the limit, not over
        await market(run.sim, "fourth-trade", side=OrderSide.BID)
        await until(lambda: is_flat(gateway))
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        await locked_day_then_reset(run, next_reset_utc(run))
    rows = await enforcement_log(db)
    assert_logged(rows, "maxTradesPerDay")
    assert any(r["rule"] == "maxTradesPerDay" and r["measured"].get("trades") == 4 for r in rows)


async def test_trading_session_flatten_time(autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()  # the epoch is Wed 09:00 Chicago: inside Tuesday's overnight window (09:25 -> 09:10)
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, trading_session={"enabled": True, "start": "09:25", "end": "09:10",
                                                          "flatten_at": "09:05"})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        gateway = run.sim.gateway
        zone = run.engine.rules.calendar.zone
        bracket = await prepare(run)
        await market(run.sim, "in-session", size=1)
        await trio.sleep(4 * 60)  # 09:04: still inside the window
        assert not is_flat(gateway)
        await until(lambda: is_flat(gateway), timeout_s=120)  # 09:05: flatten time
        assert gateway.clock.now().astimezone(zone).strftime("%H:%M") == "09:05"
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        session = run.engine.rules.session
        assert session is not None
        next_open = session.next_open(gateway.clock.now())
        assert next_open.astimezone(zone).strftime("%a %H:%M") == "Wed 09:25"  # the lockout lasts until then
        await locked_day_then_reset(run, next_open)
    rows = await enforcement_log(db)
    assert_logged(rows, "tradingSession")
    assert any(r["rule"] == "tradingSession" and "flatten time" in r["measured"].get("detail", "") for r in rows)


async def test_a_breach_while_the_network_is_down_is_held_and_completed_once_it_is_back(
        autojump_clock: trio.abc.Clock, tmp_path: Path) -> None:
    config = quiet_config()
    db = tmp_path / "engine.db"
    settings = risk_settings(config, db, daily_loss_limit={"enabled": True, "limit": 500.0})
    async with running_engine(tmp_path, config, settings=settings, **QUIET) as run:
        engine, gateway = run.engine, run.sim.gateway
        assert engine.user_hub is not None and engine.enforcer is not None
        bracket = await prepare(run)
        await market(run.sim, "long-two", size=2)
        await trio.sleep(3)
        entry = account_state(gateway)[0][0]["averagePrice"]
        # the network goes: the user hub is dropped and every REST call and new connection is refused for 45 s
        gateway.faults.arm("outage", duration_s=45.0)
        gateway.faults.arm("ws_drop", params={"hub": "user"})
        await engine.user_hub.wait_state(ConnectionState.RECONNECTING)
        down_at = trio.current_time()
        gateway.set_price(ES, entry - 25.0)  # the breach (seen through the market hub's quotes)
        await until(lambda: engine.enforcer is not None and engine.enforcer.breaches >= 1, timeout_s=10)
        await trio.sleep(20)
        assert trio.current_time() - down_at < 45.0
        positions, orders = account_state(gateway)
        assert [p["size"] for p in positions] == [2] and len(orders) == 3  # held: nothing got through yet
        await until(lambda: is_flat(gateway), timeout_s=240)
        assert trio.current_time() - down_at >= 45.0  # completed once the network was back
        assert all(order_status(gateway, i) is OrderStatus.CANCELLED for i in bracket)
        await until(lambda: engine.user_hub is not None and engine.user_hub.state is ConnectionState.CONNECTED,
                    timeout_s=120)
        await trio.sleep(5)
        assert state_differences(engine.snapshot(), gateway.snapshot(), engine.account_ids) == []
        await locked_day_then_reset(run, next_reset_utc(run))
    rows = await enforcement_log(db)
    assert_logged(rows, "dailyLossLimit")
    breach = next(r for r in rows if r["rule"] == "dailyLossLimit" and r["outcome"].startswith("enforced"))
    assert (breach["completed_at"] - breach["triggered_at"]).total_seconds() >= 20
