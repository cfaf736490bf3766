"""Retention deletes exactly what is older than each window, and the periodic task runs on the Trio clock."""

from __future__ import annotations

from datetime import date, timedelta
from functools import partial

import pytest
import trio

from engine.protocol.timebase import WallClock
from engine.store import (
    ComponentEvent,
    EnforcementEntry,
    Fill,
    OrderUpdate,
    PnlSnapshot,
    ReconcileFinding,
    RetentionPolicy,
    open_store,
    run_retention,
)
from tests.store.helpers import T0, days, intent, transition

NOW = T0 + days(200)
TICK = timedelta(microseconds=1)


async def test_each_window_deletes_exactly_what_is_older(db_url: str) -> None:
    policy = RetentionPolicy(daily_unrealized_pnl=7, enforcement_logs=30, order_history=90)
    # For each window: one row a microsecond past the edge (deleted), one exactly on it and one inside (kept).
    ages = {
        "old": lambda d: NOW - days(d) - TICK,
        "edge": lambda d: NOW - days(d),
        "young": lambda d: NOW - days(d) + TICK,
    }
    async with open_store(db_url, retention=policy) as store:
        for n, (label, at_age) in enumerate(ages.items()):
            store.journal(
                PnlSnapshot(1001, date(2025, 1, 1), 1.0, at_age(7)),
                EnforcementEntry("r", {"label": label}, None, [], label, at_age(30)),
                ReconcileFinding(label, {}, at_age(30)),
                ComponentEvent("user_hub", "a", "b", label, at_age(30)),
                Fill(n, 1001, 1, "C", 0, 1.0, 1, 0.0, at_age(90)),
                transition(n, "a", "b", at=at_age(90), cause=label),
            )
            await store.record_intent(intent(n, at=at_age(90) - days(1)))
            await store.update_order(OrderUpdate(f"intent-{n}", at_age(90), status="filled"))
        # an intent whose outcome is unknown is kept whatever its age, and so are its transitions
        ancient = NOW - days(400)
        await store.record_intent(intent(99, at=ancient), transition(99, "new", "submitted", at=ancient))
        deleted = await store.apply_retention(NOW)
        remaining = {kind: await store.history(kind) for kind in ("pnl", "enforcement", "reconcile", "connection")}
        fills = await store.history("fills")
        transitions = await store.history("transitions")
        orders = await store.history("orders")
    assert deleted == {
        "daily_unrealized_pnl": 1, "enforcement_log": 1, "reconcile_findings": 1, "component_events": 1,
        "order_intents": 1, "order_transitions": 1, "fills": 1,
    }
    assert [r["at"] for r in remaining["pnl"]] == [NOW - days(7), NOW - days(7) + TICK]
    assert [r["outcome"] for r in remaining["enforcement"]] == ["edge", "young"]
    assert [r["kind"] for r in remaining["reconcile"]] == ["edge", "young"]
    assert [r["cause"] for r in remaining["connection"]] == ["edge", "young"]
    assert [r["trade_id"] for r in fills] == [1, 2]  # fill 0 was the "old" one
    assert sorted(r["cause"] for r in transitions) == ["edge", "test", "young"]
    assert sorted(r["intent_id"] for r in orders) == ["intent-1", "intent-2", "intent-99"]


def test_retention_windows_are_validated() -> None:
    with pytest.raises(ValueError, match=r"database.retention.order_history must be a whole number of days >= 1"):
        RetentionPolicy(order_history=0)


async def test_periodic_task_applies_retention_on_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    clock = WallClock(epoch=T0)
    hour = 3600.0
    policy = RetentionPolicy(daily_unrealized_pnl=7)
    async with open_store("sqlite://", retention=policy, threads=False) as store:  # inline: see store.blocking
        # snapshots that cross the 7-day edge 12 h, 36 h and 60 h after the task starts
        for hours_left in (12, 36, 60):
            await store.commit_now(PnlSnapshot(1, date(2025, 3, 1), float(hours_left),
                                               T0 - days(7) + timedelta(hours=hours_left)))
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(store.run_retention, clock, interval=hour))
            await trio.sleep(24 * hour + 1)
            after_one_day = [r["unrealized_pnl"] for r in await store.history("pnl")]
            await trio.sleep(24 * hour)
            after_two_days = [r["unrealized_pnl"] for r in await store.history("pnl")]
            nursery.cancel_scope.cancel()
    assert after_one_day == [36.0, 60.0]
    assert after_two_days == [60.0]


async def test_a_failing_retention_pass_does_not_stop_the_task(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[float] = []

    async def flaky(now: object) -> None:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise OSError("database went away")

    async with trio.open_nursery() as nursery:
        await nursery.start(run_retention, flaky, WallClock(epoch=T0))
        await trio.sleep(7200.5)
        nursery.cancel_scope.cancel()
    assert len(calls) == 3
