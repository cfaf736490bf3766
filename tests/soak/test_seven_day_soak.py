"""The 7-day soak: the whole Engine against the in-process simulator for a week of virtual time, with faults all
along and traffic from both sides, in well under two minutes of real time.

What runs (one ``trio.run``, ``MockClock(autojump_threshold=0)``, no socket anywhere):

- the simulated Gateway, tokens living ``TOKEN_TTL_S`` (4 h) so the engine renews ~100 times (refreshes, and logins
  after injected expiries), prices stepping every 2 minutes (the market hub's feed watchdog needs a quote within
  ``stale_threshold``, 5 min here);
- the Engine with its real REST client, hubs, mirror, order manager, risk driver and SQLite store (a file);
- a scripted trader (:class:`~simulator.trader.ScriptedTrader`) trading two accounts from "another front end" at a
  day pace and a slower night pace, breaking the max-contracts rule now and then (the engine flattens and locks out);
- the engine's own order flow: an intent every 20-60 min through the order manager (resting limits later cancelled,
  market orders later closed), so exactly-once placement is exercised under the same faults;
- a seeded fault schedule (:func:`tests.soak.support.fault_schedule`): every kind of the simulator's menu early,
  then one every ~30 min (socket drops and closes, stopped pings, 5xx bursts, injected 429s, expired and revoked
  tokens, lost responses, slow answers, dropped and duplicated events) and one outage of 3-7 minutes a day.

At the end the world is quiesced (traffic and faults stop, prices freeze), the engine reconciles once more, and:
no request or hub connect of the engine carried a token past its expiry and no 401 came from one; no
PermanentLoginError; the token manager renewed as often as the lifetime demands; no customTag became two orders and
no engine intent stayed unknown; the engine received no 429 from a real rate window (injected ones are faults it
must absorb); the mirror equals the simulator's truth (live and after the graceful stop); and memory: every engine
collection is censused at day 1 and day 7 (:func:`tests.soak.support.collection_census`): only the deliberately
capped memories (:func:`capped_memories`: trades, trade ids, terminal orders, recent entries...) may grow, each under
its cap, and everything else the engine's object graph holds stays within 25% (+0.5 MB) of day 1's bytes.

Real-time budget (2 cores): the simulator ticks every 2 minutes; the engine's risk tick is 5 min (events still trigger
evaluations at once), the state is saved every 10 min (to a SQLite file on ``/dev/shm`` when there is one), hub
heartbeats every 2 min, SignalR keep-alives every 150 s (ASP.NET's 15 s pings for a week would cost more than all the
trading); the trader takes ~1 step per 2 min by day and 1 per 20 min by night. About 40 s of CPU; coverage is paused
for it (``no_cover``), so ``--cov`` runs cost the same. The figures line it prints says how long it really took.
"""

from __future__ import annotations

import dataclasses
import os
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from engine.app import Engine, duplicate_orders, state_differences
from engine.app.enforcement import RECENT_ENTRIES
from engine.app.engine import RECENT_FINDINGS, RECENT_REPORTS
from engine.gateway.client import SNAPSHOT_CAPACITY
from engine.gateway.testing import SIM_EPOCH, sim_settings
from engine.orders.intents import IntentResult, PlaceIntent, ResultKind
from engine.orders.manager import _EARLY_TRADES_CAP
from engine.protocol.enums import OrderSide, OrderType
from engine.realtime.hub import HubTimings
from engine.state.mirror import (
    DEFAULT_RECENT_TERMINAL,
    DEFAULT_TERMINAL_MEMORY,
    DEFAULT_TRADE_ID_MEMORY,
    DEFAULT_TRADE_MEMORY,
)
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from simulator.trader import ScriptedTrader
from simulator.transport import SimulatorTransport
from tests.soak.support import (
    ENGINE_CLIENT,
    TRADER_CLIENT,
    Footprint,
    LeanConnector,
    Witness,
    collection_census,
    engine_components,
    engine_footprint,
    fault_schedule,
    spy_on_rate_windows,
)

DAY = 86_400.0
DAYS = float(os.environ.get("SOAK_DAYS", "7"))
"""``SOAK_DAYS=30 pytest tests/soak -s`` soaks longer (the assertions scale with the days)."""
SEED = 20261125
TOKEN_TTL_S = 4 * 3600.0
REFRESH_BUFFER_S = 7200
TICK_S = 120.0
RISK_TICK_S = 300.0
"""The risk driver's periodic re-evaluation of every account (the engine's default is 1 s): only time-driven rules
(daily reset, lockout expiry) wait for it; every event still triggers an evaluation at once."""
KEEP_ALIVE_S, PEER_TIMEOUT_S = 150.0, 270.0
"""SignalR keep-alive and peer timeout of both ends (ASP.NET: 15 s / 30 s). A week of 15 s pings on two hubs costs
more real time than all the trading; the ping mechanics themselves are covered by the realtime tests. The keep-alive
is longer than the engine's 2-minute heartbeat, so a quiet hub carries one heartbeat and its answer every 2 minutes
instead of those plus a keep-alive each way (60 s keep-alives doubled the hub frames of the week for nothing); the
peer timeout stays under the 5-minute stale threshold, so a silent connection (``stop_pings``, 6 min) is still
ended by the engine's server timeout first."""
TRADER_KEY = "soak-trader-key"
"""The trader logs in as the engine's user with its own API key (another front end of the same person)."""
TRADER_ACCOUNTS = (1001, 1002)
ENGINE_ACCOUNT = 1003
TRADER_CONTRACTS = ("CON.F.US.MES.Z26", "CON.F.US.MNQ.Z26")
ENGINE_CONTRACT = "CON.F.US.MES.Z26"
DAY_PACE, NIGHT_PACE = 0.5, 0.05
"""Trader steps per minute: 10 h of 'day' then 14 h of 'night' in every 24 h (~2,400 steps a week)."""
TRADER_REQUESTS_PER_MIN = 30
MEMORY_SLACK = 1.25
MEMORY_FLOOR_BYTES = 512 * 1024
MEMORY_FLOOR_ENTRIES = 50
"""Day 7 may hold at most ``MEMORY_SLACK`` x day 1 + these (in-flight work differs between two instants)."""


def capped_memories(accounts: int) -> dict[str, int]:
    """Engine collections that grow by design up to a documented bound (census name -> most entries; nested
    collections count their leaves). Everything else must not grow over the week."""
    return {
        "mirror._trades": DEFAULT_TRADE_MEMORY * accounts,
        "mirror._trade_times": DEFAULT_TRADE_MEMORY * accounts,  # one time-index entry per trade held in full
        "mirror._trade_ids": 2 * DEFAULT_TRADE_ID_MEMORY * accounts,  # a set and a deque per account
        "mirror._terminal": DEFAULT_TERMINAL_MEMORY,
        "mirror._terminal_order": DEFAULT_TERMINAL_MEMORY,
        "mirror._terminal_full": DEFAULT_RECENT_TERMINAL,
        "orders._early_trades": _EARLY_TRADES_CAP,
        "client._snapshots": 2 * SNAPSHOT_CAPACITY,  # (answer, as of) per key
        "engine.findings": RECENT_FINDINGS,
        "engine.reports": RECENT_REPORTS,
        "enforcer.entries": RECENT_ENTRIES,
        "enforcer.outcomes": RECENT_ENTRIES,
        "breaker.transitions": 1000,  # CircuitBreaker keeps its last 1,000 transitions
    }


def soak_settings(config: SimConfig, database: Path) -> Any:
    return sim_settings(config, {
        "api": {"user_hub_url": "https://rtc.sim.invalid/hubs/user",
                "market_hub_url": "https://rtc.sim.invalid/hubs/market"},
        "authentication": {"token_refresh": {"buffer_seconds": REFRESH_BUFFER_S}},
        "database": {"url": f"sqlite:///{database}"},
        # an outage of up to 7 min must not exhaust the attempts (the default 10 cover about 6 min)
        "signalr": {"reconnection": {"delays": [0, 2000, 5000, 10000, 30000], "max_attempts": 40},
                    "health": {"ping_interval": 120_000, "stale_threshold": 300_000}},
        # the trader logs in as the same user and the simulator's windows are per user: leave it room
        "error_handling": {"rate_limit": {"general": {"requests": 200 - TRADER_REQUESTS_PER_MIN - 20}}},
        "risk_rules": {"max_contracts": {"enabled": True, "total": 10}},
    })


@dataclasses.dataclass
class EngineFlow:
    """The engine's own orders (through its order manager) and their outcomes."""

    results: Counter[str] = dataclasses.field(default_factory=Counter)
    unknown: list[IntentResult] = dataclasses.field(default_factory=list)

    def note(self, result: IntentResult) -> None:
        self.results[f"{result.intent}:{result.kind.value}"] += 1
        if result.kind is ResultKind.UNKNOWN:
            self.unknown.append(result)


async def engine_orders(engine: Engine, gateway: SimulatedGateway, flow: EngineFlow) -> None:
    rng = random.Random(f"soak-engine-orders:{SEED}")
    orders = engine.orders
    assert orders is not None
    while True:
        await trio.sleep(rng.uniform(1200.0, 3600.0))
        price = gateway.markets[ENGINE_CONTRACT].quote.last
        if rng.random() < 0.5:
            intent = PlaceIntent(ENGINE_ACCOUNT, ENGINE_CONTRACT, OrderSide.BID, 1, OrderType.LIMIT,
                                 limit_price=round((price - 40.0) / 0.25) * 0.25)
            placed = await orders.place(intent)
            flow.note(placed)
            await trio.sleep(rng.uniform(300.0, 1800.0))
            if placed.order_id is not None:
                flow.note(await orders.cancel(ENGINE_ACCOUNT, placed.order_id))
        else:
            side = rng.choice((OrderSide.BID, OrderSide.ASK))
            flow.note(await orders.place(PlaceIntent(ENGINE_ACCOUNT, ENGINE_CONTRACT, side, 1)))
            await trio.sleep(rng.uniform(300.0, 1800.0))
            flow.note(await orders.close_position(ENGINE_ACCOUNT, ENGINE_CONTRACT))


async def day_and_night(trader: ScriptedTrader) -> None:
    while True:
        trader.pace_per_min = DAY_PACE
        await trio.sleep(10 * 3600.0)
        trader.pace_per_min = NIGHT_PACE
        await trio.sleep(14 * 3600.0)


def capped_objects(engine: Engine) -> list[object]:
    components = engine_components(engine)
    found = []
    for name in capped_memories(len(engine.account_ids)):
        component, attribute = name.split(".")
        value = getattr(components[component], attribute, None)
        if value is not None:
            found.append(value)
    return found


async def run_faults(gateway: SimulatedGateway, duration_s: float) -> None:
    start = trio.current_time()
    for at, kind, kwargs in fault_schedule(SEED, duration_s):
        await trio.sleep_until(start + at)
        gateway.faults.arm(kind, **kwargs)


@dataclasses.dataclass
class Soak:
    """Everything a soak run leaves for the assertions."""

    gateway: SimulatedGateway
    engine: Engine
    trader: ScriptedTrader
    witness: Witness
    window_429: Counter[str]
    flow: EngineFlow
    footprints: dict[int, Footprint]
    census: dict[int, dict[str, int]]
    """Entries per engine collection at day 1 and day 7."""
    live_differences: list[str]
    truth: dict[str, Any]
    """The simulator's state after the engine stopped."""
    outages: int
    reconciliations: int
    days: float
    real_s: float
    events: int
    """Hub events the engine's hub managers received (both hubs)."""


async def run_soak(duration: float, database: Path) -> Soak:
    """The soak's world for ``duration`` virtual seconds (see the module docstring); under a MockClock."""
    real_started = time.perf_counter()
    config = SimConfig(seed=SEED, epoch=SIM_EPOCH, token_ttl_s=TOKEN_TTL_S, tick_interval_s=TICK_S)
    user = next(iter(config.users))
    config.api_keys = {user: [TRADER_KEY]}
    gateway = SimulatedGateway(config)
    app = build_app(gateway, HubOptions(keep_alive_s=KEEP_ALIVE_S, client_timeout_s=PEER_TIMEOUT_S))
    witness = Witness(app, gateway)
    window_429 = spy_on_rate_windows(app.rest)
    settings = soak_settings(config, database)
    lines: list[str] = []
    engine = Engine(settings, transport=SimulatorTransport(witness, client=ENGINE_CLIENT),
                    connector=LeanConnector(witness), wall_clock=gateway.clock, store_threads=False,
                    status=lines.append, save_interval_s=600.0, risk_tick_s=RISK_TICK_S,
                    hub_timings=HubTimings(keep_alive_s=KEEP_ALIVE_S, server_timeout_s=PEER_TIMEOUT_S))
    trader = ScriptedTrader(SimulatorTransport(witness, client=TRADER_CLIENT), username=user, api_key=TRADER_KEY,
                            accounts=TRADER_ACCOUNTS, contracts=TRADER_CONTRACTS, seed=SEED, pace_per_min=DAY_PACE,
                            breach_every=500, breach_kinds=("max_contracts",), max_position=3, max_working=4,
                            oversize=12, steer_prices=False, max_requests_per_min=TRADER_REQUESTS_PER_MIN)
    flow = EngineFlow()
    footprints: dict[int, Footprint] = {}
    census: dict[int, dict[str, int]] = {}
    live_differences: list[str] = []

    async with trio.open_nursery() as outer:
        await outer.start(gateway.run)
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            traffic = trio.CancelScope()

            async def world() -> None:
                with traffic:
                    async with trio.open_nursery() as inner:
                        await inner.start(trader.run)
                        inner.start_soon(day_and_night, trader)
                        inner.start_soon(engine_orders, engine, gateway, flow)
                        inner.start_soon(run_faults, gateway, duration)

            nursery.start_soon(world)
            started = trio.current_time()
            await trio.sleep_until(started + min(DAY, duration / 7))
            census[1] = collection_census(engine_components(engine))
            footprints[1] = engine_footprint(engine, skip=capped_objects(engine))
            await trio.sleep_until(started + duration)
            census[7] = collection_census(engine_components(engine))
            footprints[7] = engine_footprint(engine, skip=capped_objects(engine))

            # quiesce: no traffic, no faults, frozen prices; then one more proof against the truth
            traffic.cancel()
            gateway.faults.disarm()
            gateway.config.tick_interval_s = 1e9
            await trio.sleep(2 * TICK_S)
            with trio.fail_after(900):
                for hub in engine.hubs():
                    await hub.wait_connected()
                assert engine.reconciler is not None
                await engine.reconciler.reconcile("manual")
                await trio.sleep(5)
            truth = gateway.snapshot()
            live_differences = state_differences(engine.snapshot(), truth, engine.account_ids)
            engine.stop()
        outer.cancel_scope.cancel()

    return Soak(gateway, engine, trader, witness, window_429, flow, footprints, census, live_differences,
                gateway.snapshot(), sum(1 for _, kind, _ in fault_schedule(SEED, duration) if kind == "outage"),
                engine.reconciler.counters.requests if engine.reconciler else 0, duration / DAY,
                time.perf_counter() - real_started, sum(hub.events_received for hub in engine.hubs()))


def peak_rss_mb() -> float:
    """The test process's peak resident set (Linux reports ``ru_maxrss`` in KiB): pytest and earlier tests included,
    so an upper bound of what the soak needed; the engine's own share is the census below."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def figures(soak: Soak) -> str:
    """The soak's headline figures, one line, shown in the CI log even without ``-s``."""
    faults = dict(sorted(Counter(r.kind for r in soak.gateway.faults.log).items()))
    return (f"soak figures: {soak.days:g} virtual days, {soak.events} hub events to the engine, "
            f"{soak.trader.stats.orders_placed + sum(soak.flow.results.values())} order operations, "
            f"faults injected {faults} ({sum(faults.values())} in all), {soak.real_s:.1f} s real, "
            f"peak RSS {peak_rss_mb():.0f} MB")


def describe(soak: Soak) -> str:
    """The soak in a few lines (printed with ``-s`` and carried by every assertion message)."""
    engine, trader, witness, footprints = soak.engine, soak.trader, soak.witness, soak.footprints
    tokens, enforcer = engine.client.tokens, engine.enforcer
    hubs = ", ".join(f"{h.name}: {h.planned_reconnects} planned, {h.stale_reconnects} stale, {h.generation} attempts"
                     for h in engine.hubs())
    faults = dict(sorted(Counter(r.kind for r in soak.gateway.faults.log).items()))
    grew = [f"{k} {soak.census[1].get(k, 0)} -> {n}" for k, n in sorted(soak.census[7].items(), key=lambda kv: -kv[1])
            if n > soak.census[1].get(k, 0) and n >= MEMORY_FLOOR_ENTRIES]
    engine_5xx = sum(n for (who, status), n in witness.statuses.items() if who == "engine" and status >= 500)
    return "\n".join([
        f"soak: {soak.days:g} virtual days in {soak.real_s:.1f} s real",
        f"faults taken (by kind): {faults}; outages scheduled: {soak.outages}",
        f"reconnects: {engine.reconnects()} ({hubs}); reconciliations {soak.reconciliations}, "
        f"findings {engine.findings_total}",
        f"tokens: {tokens.logins} login(s), {tokens.refreshes} refresh(es), {tokens.renewals} renewal flight(s); "
        f"401s from faults {dict(witness.fault_401)}; tokens sent past their expiry "
        f"{dict(Counter(e[1] for e in witness.expired_sent))}",
        f"hub connects {dict(witness.hub_connects)}, refused {dict(witness.hub_refused)}",
        f"orders: {len(soak.truth['orders'])} in the simulator; trader {trader.stats.orders_placed} placed, "
        f"{trader.stats.cancelled} cancelled, {trader.stats.closes} closes, {trader.stats.errors} errors, breaches "
        f"{trader.stats.breaches}; engine intents {dict(sorted(soak.flow.results.items()))}",
        f"enforcement: {enforcer.breaches if enforcer else 0} breach(es), "
        f"{enforcer.actions_sent if enforcer else 0} action(s)",
        f"429s: engine {witness.count('engine', 429)} (from a rate window {soak.window_429['engine']}, counted by "
        f"its limiter {engine.rate_limited_429()}), trader {witness.count('trader', 429)}; 5xx to the engine "
        f"{engine_5xx}",
        f"memory held by the engine outside its capped memories: day 1 {footprints[1].objects} objects / "
        f"{footprints[1].bytes / 1e6:.2f} MB, day 7 {footprints[7].objects} objects / "
        f"{footprints[7].bytes / 1e6:.2f} MB",
        "collections that grew (day 1 -> day 7): " + ", ".join(grew),
    ])


MEMORY_BACKED_DIR = Path("/dev/shm")


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    """The store's SQLite file, on a memory-backed file system when the machine has one (``/dev/shm``), else under
    ``tmp_path``. Why: every periodic state save is a durable commit (``synchronous=FULL``: an fsync), ~1,000 of
    them in a week; on a disk shared with a busy CI box each fsync costs 5-50 ms of real time, seconds in all, and
    varying from run to run. The soak asserts nothing about power-loss durability (the store's own tests do); the
    engine still writes a real SQLite file in WAL mode through the same code."""
    if MEMORY_BACKED_DIR.is_dir() and os.access(MEMORY_BACKED_DIR, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="soak-", dir=MEMORY_BACKED_DIR) as directory:
            yield Path(directory) / "engine.db"
    else:
        yield tmp_path / "engine.db"


@pytest.mark.slow
@pytest.mark.no_cover
async def test_seven_day_soak(autojump_clock: trio.abc.Clock, database: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """``no_cover`` (pytest-cov): coverage is paused for this test only. Line tracing a week of engine and simulator
    work cost 2.5x the soak's CPU time (its 150 s under ``--cov`` were most of CI's budget); what the soak proves is
    behaviour over time, its assertions run the same, and every line it runs is a unit test's to cover."""
    soak = await run_soak(DAYS * DAY, database)
    engine, witness, truth = soak.engine, soak.witness, soak.truth
    summary = describe(soak)
    with capsys.disabled():  # the figures go to the CI log whatever the capture mode
        print(f"\n{figures(soak)}\n{summary}")

    # the mirror equals the truth: live after a final reconciliation, and as saved by the graceful stop
    assert soak.live_differences == [], summary + "\n" + "\n".join(soak.live_differences[:20])
    assert engine.final_state is not None
    final_differences = state_differences(engine.final_state, truth, engine.account_ids)
    assert final_differences == [], summary + "\n" + "\n".join(final_differences[:20])
    # tokens: none sent past its expiry, renewed through every injected expiry / revocation, never failed for good
    tokens = engine.client.tokens
    assert [e for e in witness.expired_sent if e[1] == "engine"] == [], summary
    assert [e for e in witness.natural_401 if e[1] == "engine"] == [], summary
    assert tokens.failure is None, summary
    assert tokens.refreshes >= soak.days and tokens.logins + tokens.refreshes > soak.days * DAY / TOKEN_TTL_S, summary
    assert witness.fault_401["engine"] >= 1, summary  # injected expiries did reach the engine and were survived
    # exactly once
    assert duplicate_orders(truth["orders"]) == 0, summary
    assert soak.flow.unknown == [], summary
    # rate limits: no 429 from a real rate window reached the engine (injected ones are faults it absorbs)
    assert soak.window_429["engine"] == 0, summary
    # memory: only the engine's deliberately capped memories grow (and stay under their caps); nothing else does
    caps = capped_memories(len(engine.account_ids))
    for name, entries in soak.census[7].items():
        before = soak.census[1].get(name, 0)
        if name in caps:
            assert entries <= caps[name], f"{name}: {entries} entries over its cap {caps[name]}\n{summary}"
        else:
            assert entries <= before * MEMORY_SLACK + MEMORY_FLOOR_ENTRIES, f"{name}: {before} -> {entries}\n{summary}"
    assert soak.footprints[7].bytes <= soak.footprints[1].bytes * MEMORY_SLACK + MEMORY_FLOOR_BYTES, summary
    # and it really was a soak
    assert soak.trader.stats.orders_placed > 1000 * soak.days / 7 and sum(soak.flow.results.values()) > 10, summary
    assert soak.outages >= soak.days - 1 and engine.reconnects() > 40 * soak.days, summary
