"""Reconciler tests in virtual time against the in-process simulator (GatewayClient over SimulatorTransport).

"Away" is modelled by the bus feed dropping events, exactly what a dead hub socket does; the reconciler must then
find, report and apply what the stream missed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
import trio

from engine.protocol.enums import OrderSide, OrderStatus, OrderType
from engine.protocol.models import HalfTradeModel, PositionModel
from engine.state.changes import FillInferred, OrderChanged, PositionChanged
from engine.state.reconciler import ReconcilerConfig
from engine.state.source import SnapshotSource, SnapshotUnavailable
from engine.store import open_store
from tests.state.simfeed import ACCOUNT, ES, NQ, World, quiet_config, world

FAR_BELOW = 6000.0  # a buy limit that does not fill at the start price 6350


async def started(w: World) -> None:
    report = await w.reconciler.reconcile("startup")
    assert report.complete, report
    await w.settle()


async def away(w: World) -> None:
    await w.settle()
    w.feed.connected = False


async def back(w: World) -> Any:
    await w.settle()
    w.feed.connected = True
    report = await w.reconciler.reconcile("reconnect")
    await w.settle()
    return report


# --- initial sync --------------------------------------------------------------------------------------------------
async def test_initial_sync_loads_state_with_no_findings(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        w.feed.connected = False  # nothing from the stream: the snapshot alone must build the mirror
        working = await w.place(limit=FAR_BELOW)
        entry = await w.bracket(limit=FAR_BELOW - 10)
        await w.place(type=OrderType.MARKET, size=2)
        cancelled = await w.place(limit=FAR_BELOW)
        await w.sim.client.cancel_order(ACCOUNT, cancelled)
        await started(w)
        assert w.mirrored() == w.truth()
        statuses = {o["id"]: o["status"] for o in w.mirrored()["orders"]}
        assert statuses[working] == OrderStatus.OPEN and statuses[entry] == OrderStatus.OPEN
        assert sorted(statuses.values()).count(OrderStatus.SUSPENDED) == 2  # bracket children come along
        assert {t.id for t in w.mirror.trades(ACCOUNT)} == w.truth_trade_ids()
        assert w.mirror.is_terminal(cancelled)
        assert w.findings == []
        assert w.mirror.contracts_of(ACCOUNT) == {ES}


# --- missed orders -------------------------------------------------------------------------------------------------
async def test_order_created_while_away(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        await away(w)
        order_id = await w.place(limit=FAR_BELOW, tag="placed-elsewhere")
        report = await back(w)
        assert w.kinds() == ["missed_order_created"]
        assert report.findings[0].details["orderId"] == order_id
        assert report.findings[0].details["customTag"] == "placed-elsewhere"
        assert report.findings[0].account_id == ACCOUNT
        assert [o.id for o in w.mirror.working_orders()] == [order_id]
        created = [c for c in w.changes if isinstance(c, OrderChanged) and c.source == "reconcile"]
        assert [(c.before, c.order_id) for c in created] == [(None, order_id)]
        assert w.mirrored() == w.truth()


async def test_order_filled_while_away_with_inferred_fill_trade_and_position(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        order_id = await w.place(limit=6340.0, size=2)
        await w.settle()
        assert [o.id for o in w.mirror.working_orders()] == [order_id]
        await away(w)
        w.gateway.set_price(ES, 6330.0)
        await back(w)
        kinds = w.kinds()
        assert kinds.count("missed_order_filled") == 1 and kinds.count("inferred_fill") == 1
        assert "missed_trade" in kinds and "missed_position_opened" in kinds and "missed_account_update" in kinds
        filled = next(f for f in w.findings if f.kind == "missed_order_filled")
        assert filled.details["seenWorking"] is True and filled.details["fillVolume"] == 2
        fills = [c for c in w.changes if isinstance(c, FillInferred)]
        assert [(f.order_id, f.quantity) for f in fills] == [(order_id, 2)]
        assert w.mirror.working_orders() == [] and w.mirror.is_terminal(order_id)
        position = w.mirror.position(ACCOUNT, ES)
        assert position is not None and position.size == 2
        assert w.mirrored() == w.truth()
        assert {t.id for t in w.mirror.trades(ACCOUNT)} == w.truth_trade_ids()


async def test_order_cancelled_while_away(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        order_id = await w.place(limit=FAR_BELOW)
        await away(w)
        await w.sim.client.cancel_order(ACCOUNT, order_id)
        await back(w)
        assert w.kinds() == ["missed_order_cancelled"]
        assert w.mirror.working_orders() == [] and w.mirror.is_terminal(order_id)
        assert w.mirrored() == w.truth()


async def test_order_created_and_filled_while_away(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        await away(w)
        order_id = await w.place(type=OrderType.MARKET, size=1)
        await back(w)
        filled = [f for f in w.findings if f.kind == "missed_order_filled"]
        assert len(filled) == 1 and filled[0].details["seenWorking"] is False
        assert filled[0].details["orderId"] == order_id
        assert "inferred_fill" in w.kinds() and "missed_position_opened" in w.kinds()
        assert w.mirror.is_terminal(order_id)
        assert w.mirrored() == w.truth()


async def test_old_working_order_outside_the_window_is_settled_by_id(autojump_clock: trio.abc.Clock) -> None:
    config = ReconcilerConfig(window_margin_s=1.0, min_interval_s=1.0)
    async with world(reconciler_config=config) as w:
        await started(w)
        order_id = await w.place(limit=FAR_BELOW)
        await w.settle()
        await trio.sleep(3600)
        await w.reconciler.reconcile()  # moves the window past the order's creation
        await away(w)
        await w.sim.client.cancel_order(ACCOUNT, order_id)
        await back(w)
        assert w.kinds() == ["missed_order_cancelled"]
        assert w.mirror.is_terminal(order_id)


async def test_partial_fill_while_away_is_an_inferred_fill(autojump_clock: trio.abc.Clock) -> None:
    async with world(quiet_config(partial_fill_parts=3, partial_fill_interval_s=10.0)) as w:
        await started(w)
        order_id = await w.place(limit=6340.0, size=3)
        await w.settle()
        await away(w)
        w.gateway.set_price(ES, 6330.0)  # first of three partial fills now, the rest 10 s apart
        await back(w)
        assert "missed_order_update" in w.kinds()
        inferred = [f for f in w.findings if f.kind == "inferred_fill"]
        assert [(f.details["orderId"], f.details["quantity"]) for f in inferred] == [(order_id, 1)]
        held = w.mirror.order(order_id)
        assert held is not None and held.fill_volume == 1 and held.status is OrderStatus.OPEN
        await trio.sleep(30)  # the stream delivers the rest
        await w.settle()
        assert w.mirror.is_terminal(order_id)
        assert w.mirrored() == w.truth()


# --- missed positions ----------------------------------------------------------------------------------------------
async def test_position_opened_and_closed_while_away(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        await w.place(type=OrderType.MARKET, size=1, contract=NQ)
        await w.settle()
        assert w.mirror.position(ACCOUNT, NQ) is not None
        await away(w)
        await w.sim.client.close_position(ACCOUNT, NQ)
        await w.place(type=OrderType.MARKET, size=3, side=OrderSide.ASK, contract=ES)
        await back(w)
        assert "missed_position_closed" in w.kinds() and "missed_position_opened" in w.kinds()
        closes = [c for c in w.changes if isinstance(c, PositionChanged) and c.closed and c.source == "reconcile"]
        assert [c.contract_id for c in closes] == [NQ]
        assert w.mirror.position(ACCOUNT, NQ) is None
        short = w.mirror.position(ACCOUNT, ES)
        assert short is not None and short.size == 3
        assert w.mirror.contracts_of(ACCOUNT) == {ES}
        assert w.mirrored() == w.truth()


async def test_nothing_missed_means_no_findings(autojump_clock: trio.abc.Clock) -> None:
    async with world() as w:
        await started(w)
        await w.place(limit=FAR_BELOW)
        await w.place(type=OrderType.MARKET)
        await w.bracket(limit=FAR_BELOW)
        await w.settle()
        report = await back(w)
        assert report.complete and report.findings == ()
        assert w.mirrored() == w.truth()


# --- buffering during a reconciliation -----------------------------------------------------------------------------
class ChangesDuringFetch:
    """A source that lets the market move while the reconciler is between its fetches (after positions and orders,
    before trades): the snapshot it returns is then older than the stream events that arrive meanwhile."""

    def __init__(self, inner: SnapshotSource, w_ref: list[World]) -> None:
        self.inner = inner
        self.w_ref = w_ref
        self.armed = False
        self.held_during_fetch: bool | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def trades_since(self, account_id: int, start: datetime) -> Sequence[HalfTradeModel]:
        if self.armed:
            self.armed = False
            w = self.w_ref[0]
            await w.place(type=OrderType.MARKET, size=1)  # grows the position and fills a new order
            await w.settle()
            self.held_during_fetch = w.mirror.held
        return await self.inner.trades_since(account_id, start)


async def test_stream_events_newer_than_the_snapshot_win(autojump_clock: trio.abc.Clock) -> None:
    ref: list[World] = []
    wrapper: list[ChangesDuringFetch] = []

    def make(inner: SnapshotSource) -> ChangesDuringFetch:
        wrapper.append(ChangesDuringFetch(inner, ref))
        return wrapper[0]

    async with world(source=make) as w:
        ref.append(w)
        await started(w)
        await w.place(type=OrderType.MARKET, size=1)
        await w.settle()
        held = w.mirror.position(ACCOUNT, ES)
        assert held is not None and held.size == 1
        buffered_before = w.mirror.counters.buffered
        wrapper[0].armed = True
        report = await w.reconciler.reconcile()
        await w.settle()
        assert wrapper[0].held_during_fetch is True
        assert w.mirror.counters.buffered > buffered_before
        # the snapshot said size 1 (positions were read before the fill); the buffered event (size 2) came after it
        position = w.mirror.position(ACCOUNT, ES)
        assert position is not None and position.size == 2
        assert "missed_position_changed" not in [f.kind for f in report.findings]
        assert w.mirrored() == w.truth()


async def test_cancelled_midway_leaves_the_mirror_untouched_and_applies_buffered_events(
        autojump_clock: trio.abc.Clock) -> None:
    class Stalls:
        def __init__(self, inner: SnapshotSource) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def trades_since(self, account_id: int, start: datetime) -> Sequence[HalfTradeModel]:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

    async with world(source=Stalls) as w:
        w.reconciler.config = ReconcilerConfig()
        await away(w)
        await w.place(limit=FAR_BELOW)  # missed: only a reconciliation could bring it
        await w.settle()
        w.feed.connected = True
        with trio.move_on_after(10):
            await w.reconciler.reconcile("reconnect")
            raise AssertionError("should have been cancelled")
        assert w.mirrored() == {"accounts": [], "positions": [], "orders": []}
        assert w.findings == [] and not w.mirror.held
        # an event that arrived during the cancelled run is not lost
        live = 0
        with trio.move_on_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(w.reconciler.reconcile, "reconnect")
                await trio.sleep(1)
                assert w.mirror.held
                live = await w.place(limit=FAR_BELOW - 1)
                await w.settle()
                assert w.mirror.order(live) is None  # buffered
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
        assert [o.id for o in w.mirror.working_orders()] == [live]


# --- failures: a missing list is not an empty one ------------------------------------------------------------------
class FailingPositions:
    def __init__(self, inner: SnapshotSource, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def open_positions(self, account_id: int) -> Sequence[PositionModel]:
        self.calls += 1
        if self.calls <= self.failures:
            raise SnapshotUnavailable("Position/searchOpen answered success=false")
        return await self.inner.open_positions(account_id)


async def test_a_failed_fetch_is_skipped_not_taken_as_empty_then_retried(autojump_clock: trio.abc.Clock) -> None:
    holder: list[FailingPositions] = []

    def make(inner: SnapshotSource) -> FailingPositions:
        holder.append(FailingPositions(inner, failures=0))
        return holder[0]

    async with world(source=make, reconciler_config=ReconcilerConfig(min_interval_s=5.0, retry_delay_s=2.0)) as w:
        await started(w)
        await w.place(type=OrderType.MARKET, size=1)
        await w.settle()
        await away(w)
        await w.sim.client.close_position(ACCOUNT, ES)
        holder[0].failures = holder[0].calls + 1
        closed_while_failing: list[bool] = []
        w.mirror.subscribe(lambda c: closed_while_failing.append(holder[0].calls <= holder[0].failures)
                           if isinstance(c, PositionChanged) and c.closed else None)
        report = await back(w)
        assert report.complete and report.attempts == 2
        assert closed_while_failing == [False]  # closed only by the retry that read the list
        assert w.kinds().count("missed_position_closed") == 1
        assert w.mirrored() == w.truth()


async def test_failed_parts_are_reported_when_attempts_run_out(autojump_clock: trio.abc.Clock) -> None:
    def make(inner: SnapshotSource) -> FailingPositions:
        return FailingPositions(inner, failures=10)

    async with world(source=make, reconciler_config=ReconcilerConfig(max_attempts=2)) as w:
        w.feed.connected = False
        await w.place(type=OrderType.MARKET, size=1)
        report = await w.reconciler.reconcile("startup")
        assert not report.complete and report.failed == (("positions", ACCOUNT),) and report.attempts == 2
        assert w.mirror.positions() == []  # unknown, not "flat"
        assert w.mirror.trades(ACCOUNT) != []  # the other parts were applied
        assert w.reconciler.counters.fetch_failures == 2


async def test_a_rest_outage_fails_every_part_and_changes_nothing(autojump_clock: trio.abc.Clock) -> None:
    async with world(reconciler_config=ReconcilerConfig(max_attempts=1)) as w:
        await started(w)
        await w.place(type=OrderType.MARKET, size=1)
        await w.place(limit=FAR_BELOW)
        await w.settle()
        before = w.mirrored()
        w.gateway.faults.arm("outage", duration_s=3600)
        report = await w.reconciler.reconcile("reconnect")
        assert not report.complete and ("accounts", None) in report.failed
        assert w.mirrored() == before and w.findings == []


# --- spacing ---------------------------------------------------------------------------------------------------------
async def test_min_interval_spaces_runs_and_a_request_inside_it_waits(autojump_clock: trio.abc.Clock) -> None:
    async with world(reconciler_config=ReconcilerConfig(min_interval_s=5.0)) as w:
        first = await w.reconciler.reconcile("startup")
        second = await w.reconciler.reconcile("reconnect")
        assert not second.skipped and second.started_at - first.started_at >= 5.0
        assert w.reconciler.counters.runs == 2


async def test_requests_waiting_for_a_run_are_answered_by_one_later_run(autojump_clock: trio.abc.Clock) -> None:
    async with world(reconciler_config=ReconcilerConfig(min_interval_s=5.0)) as w:
        await w.reconciler.reconcile("startup")
        reports: list[Any] = []

        async def ask() -> None:
            reports.append(await w.reconciler.reconcile("reconnect"))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(ask)
        assert w.reconciler.counters.runs == 2  # the startup run and ONE run for the three waiting requests
        assert w.reconciler.counters.coalesced == 2
        assert len({id(r) for r in reports}) == 1


async def test_disabled_and_on_reconnect_off(autojump_clock: trio.abc.Clock) -> None:
    async with world(reconciler_config=ReconcilerConfig(on_reconnect=False)) as w:
        assert (await w.reconciler.reconcile("reconnect")).skipped == "stateReconciliation.onReconnect is off"
        assert (await w.reconciler.reconcile("startup")).complete
    async with world(reconciler_config=ReconcilerConfig(enabled=False)) as w:
        report = await w.reconciler.reconcile("startup")
        assert report.skipped and not report.complete and w.reconciler.counters.runs == 0


def test_config_from_settings_and_bad_values() -> None:
    from settings import load_settings

    settings = load_settings(env={}, overrides={"state_reconciliation": {"min_interval": 2500,
                                                                         "compare_account": False}})
    config = ReconcilerConfig.from_settings(settings.state_reconciliation, max_attempts=3)
    assert config.min_interval_s == 2.5 and not config.compare_account and config.max_attempts == 3
    with pytest.raises(ValueError, match="min_interval_s"):
        ReconcilerConfig(min_interval_s=-1)
    with pytest.raises(ValueError, match="max_attempts"):
        ReconcilerConfig(max_attempts=0)


# --- the findings sink: the store journal --------------------------------------------------------------------------
async def test_findings_reach_the_store_journal(autojump_clock: trio.abc.Clock) -> None:
    async with open_store("sqlite://", threads=False) as store, world() as w:
        w.reconciler._sink = store.journal
        await started(w)
        await away(w)
        order_id = await w.place(limit=FAR_BELOW)
        await back(w)
        await store.flush()
        rows = await store.history("reconcile")
        assert [r["kind"] for r in rows] == ["missed_order_created"]
        assert rows[0]["account_id"] == ACCOUNT
        assert str(order_id) in str(rows[0])
