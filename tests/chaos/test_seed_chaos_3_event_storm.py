"""Seed chaos test 3: an event storm (60+ user-hub events per virtual second) with random disconnects; events
published while disconnected are lost, every reconnect runs the reconciler in a per-connection scope (cancelled if
the connection drops again), and at the end the mirror equals the simulator's truth. Many seeds, virtual time.

The link is modelled on the bus feed (events dropped while "disconnected", exactly what a dead socket loses) rather
than on real sockets, so each seed runs in a fraction of a second; the real hub path is covered by seed integration
test 2. The trader acts on the simulator's book directly: a separate channel the engine never sees.
"""

from __future__ import annotations

import os
import random

import pytest
import trio

from engine.protocol.enums import OrderSide, OrderStatus, OrderType
from engine.protocol.models import BracketModel, PlaceOrderRequest
from engine.state.reconciler import ReconcilerConfig
from tests.state.simfeed import ES, NQ, World, quiet_config, world

ACCOUNTS = (1001, 1002)
STORM_S = 20.0
SEEDS = list(range(int(os.environ.get("CHAOS_SEEDS", "8"))))
"""``CHAOS_SEEDS=200 pytest tests/chaos/test_seed_chaos_3_event_storm.py`` for a long run."""


def _act(w: World, rng: random.Random) -> None:
    """One random trading action on the simulator's book (never through the engine)."""
    book = w.gateway.book
    account = rng.choice(ACCOUNTS)
    contract = rng.choice((ES, NQ))
    tick = 0.25
    last = round(w.gateway.markets[contract].quote.last / tick) * tick
    side = rng.choice((OrderSide.BID, OrderSide.ASK))
    roll = rng.random()
    if roll < 0.4:
        offset = rng.randint(0, 4) * tick * (-1 if side is OrderSide.BID else 1)
        book.place(PlaceOrderRequest(account_id=account, contract_id=contract, type=int(OrderType.LIMIT),
                                     side=int(side), size=rng.randint(1, 3), limit_price=last + offset), None)
    elif roll < 0.5:
        book.place(PlaceOrderRequest(account_id=account, contract_id=contract, type=int(OrderType.MARKET),
                                     side=int(side), size=rng.randint(1, 2)), None)
    elif roll < 0.6:
        long = side is OrderSide.BID
        book.place(PlaceOrderRequest(
            account_id=account, contract_id=contract, type=int(OrderType.LIMIT), side=int(side), size=1,
            limit_price=last + (-tick if long else tick),
            stop_loss_bracket=BracketModel(ticks=-6 if long else 6, type=OrderType.STOP),
            take_profit_bracket=BracketModel(ticks=6 if long else -6, type=OrderType.LIMIT)), None)
    elif roll < 0.92:
        working = [o for o in book.orders_of(account) if not o.status.is_terminal]
        if working:
            book.cancel(account, rng.choice(working).id, None)
    elif book.positions_of(account):
        book.close(account, rng.choice(book.positions_of(account)).contract.id, None, None)


async def _trader(w: World, rng: random.Random, stop: trio.Event) -> None:
    while not stop.is_set():
        _act(w, rng)
        await trio.sleep(rng.uniform(0.005, 0.045))


async def _flaky_link(w: World, rng: random.Random, until: float) -> int:
    """Connected / disconnected phases until ``until``; each connection reconciles in its own scope. Ends connected
    with a finished reconciliation. Returns the number of disconnects."""
    drops = 0
    while trio.current_time() < until:
        async with trio.open_nursery() as connection:
            connection.start_soon(w.reconciler.reconcile, "reconnect")
            await trio.sleep(rng.uniform(0.5, 6.0))
            connection.cancel_scope.cancel()  # the socket died: an unfinished reconciliation is cancelled
        w.feed.connected = False
        drops += 1
        await trio.sleep(rng.uniform(0.1, 4.0))
        await w.settle()  # what was in flight is lost with the socket
        w.feed.connected = True
    report = await w.reconciler.reconcile("reconnect")
    assert report.complete, report
    return drops


@pytest.mark.parametrize("seed", SEEDS)
async def test_mirror_converges_to_the_truth_under_an_event_storm_with_disconnects(
        seed: int, autojump_clock: trio.abc.Clock) -> None:
    rng = random.Random(seed)
    config = quiet_config(seed=seed, tick_interval_s=0.2, partial_fill_parts=2, partial_fill_interval_s=0.3)
    async with world(config, reconciler_config=ReconcilerConfig(min_interval_s=1.0, retry_delay_s=0.5),
                     accounts=ACCOUNTS) as w:
        start = await w.reconciler.reconcile("startup")
        assert start.complete
        # REST answers take virtual time (half of them 50-250 ms late), so the storm goes on during every
        # reconciliation: stream events are buffered and some arrive older than the snapshot.
        w.gateway.faults.arm("delay", count=None, probability=0.5, params={"seconds": rng.uniform(0.05, 0.25)})
        stop = trio.Event()
        began = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_trader, w, rng, stop)
            drops = await _flaky_link(w, rng, began + STORM_S)
            await trio.sleep(1.0)  # the storm goes on over the final reconciliation and after it
            stop.set()
        elapsed = trio.current_time() - began
        await trio.sleep(2.0)  # pending partial fills finish
        await w.settle()

        events = w.feed.delivered + w.feed.dropped
        assert events / elapsed >= 60, f"only {events / elapsed:.0f} events/s"
        assert drops >= 3 and w.feed.dropped > 0
        assert w.reconciler.counters.findings, "disconnects must have hidden something"

        truth = w.gateway.snapshot()
        mirrored = w.mirror.snapshot()
        working = (OrderStatus.OPEN, OrderStatus.PENDING, OrderStatus.PENDING_CANCELLATION, OrderStatus.SUSPENDED)
        assert mirrored["accounts"] == [a for a in truth["accounts"] if a["id"] in ACCOUNTS]
        assert mirrored["positions"] == sorted(
            (p for p in truth["positions"] if p["accountId"] in ACCOUNTS), key=lambda p: (p["accountId"],
                                                                                        p["contractId"]))
        assert mirrored["orders"] == sorted(
            (o for o in truth["orders"] if o["accountId"] in ACCOUNTS and o["status"] in working),
            key=lambda o: (o["accountId"], o["id"]))
        for account in ACCOUNTS:
            assert {t.id for t in w.mirror.trades(account)} == w.truth_trade_ids(account)
            assert w.mirror.contracts_of(account) == (
                {p["contractId"] for p in mirrored["positions"] if p["accountId"] == account}
                | {o["contractId"] for o in mirrored["orders"] if o["accountId"] == account})
        assert w.mirror.counters.malformed == 0
        assert w.mirror.counters.buffered > 0
