"""The risk driver's side of durable lockouts: a lockout that begins is stored once (not again on every
re-evaluation while it holds), a failing store is retried until the lockout is stored, and ``restore`` brings back
only what is still in force on the watched accounts, logged and journalled, enforced at the next evaluation like a
fresh lockout. A real mirror, real rules, the real order manager and store against the in-process simulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio
from trio.testing import MockClock

from engine.app.enforcement import RiskEnforcer
from engine.state.mirror import StateMirror
from engine.store import AccountLockout, Record, Store, StoreError
from engine.store.records import EnforcementEntry
from tests.app.test_enforcer_journal import breach
from tests.orders.harness import ACCOUNT, Harness, limit, order_harness
from tests.risk.builders import rules


class FlakyStore:
    """The real store behind a number of failed writes (a database that is briefly unwritable)."""

    def __init__(self, store: Store, failures: int) -> None:
        self.store = store
        self.failures = failures
        self.attempts = 0

    async def save_lockout(self, lockout: AccountLockout) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreError("database write failed: disk I/O error")
        await self.store.save_lockout(lockout)


async def test_a_new_lockout_is_stored_once(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        flaky = FlakyStore(h.store, failures=0)
        enforcer, _ = await breach(h, lockouts=flaky)
        await h.nursery.start(enforcer.run)
        enforcer.evaluate_account(ACCOUNT)
        await trio.sleep(5)  # ticks re-evaluate the locked account: the lockout is not stored again
        lockout = enforcer.states[ACCOUNT].lockout
        assert lockout is not None and enforcer.evaluations > 3
        assert flaky.attempts == 1
        stored = await h.store.active_lockouts(h.gateway.clock.now())
        assert stored == [AccountLockout(ACCOUNT, "maxContracts", lockout.since, lockout.until, lockout.reason,
                                         stored[0].at)]


async def test_a_failing_store_is_retried_until_the_lockout_is_stored(autojump_clock: MockClock,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    async with order_harness() as h:
        flaky = FlakyStore(h.store, failures=3)
        enforcer, _ = await breach(h, lockouts=flaky)
        await h.nursery.start(enforcer.run)
        enforcer.evaluate_account(ACCOUNT)
        await trio.sleep(10)  # 0.5 + 1 + 2 s of back-off
        assert flaky.attempts == 4
        assert [s.account_id for s in await h.store.active_lockouts(h.gateway.clock.now())] == [ACCOUNT]
    assert sum("storing the lockout of account" in r.getMessage() for r in caplog.records) == 3


async def watching(h: Harness, account_ids: list[int]) -> tuple[RiskEnforcer, list[EnforcementEntry]]:
    """A driver over a mirror loaded from the simulator (accounts, positions, working orders), ``maxContracts`` 1."""
    mirror = StateMirror()
    for account in await h.client.search_accounts():
        mirror.apply_account(account, "reconcile")
    for position in await h.client.search_open_positions(ACCOUNT):
        mirror.apply_position(position, "reconcile")
    for order in await h.client.search_open_orders(ACCOUNT):
        mirror.apply_order(order, "reconcile")
    journal: list[EnforcementEntry] = []

    def record(entry: Record) -> None:
        if isinstance(entry, EnforcementEntry):
            journal.append(entry)

    enforcer = RiskEnforcer(mirror, h.manager, rules(**{"maxContracts.enabled": True, "maxContracts.total": 1}),
                            clock=h.gateway.clock, journal=record, account_ids=account_ids, lockouts=h.store)
    return enforcer, journal


async def test_restore_brings_back_what_is_in_force_on_watched_accounts(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        enforcer, journal = await watching(h, [ACCOUNT, 2002])
        now = h.gateway.clock.now()
        records = [
            AccountLockout(ACCOUNT, "dailyLossLimit", now - timedelta(hours=1), now + timedelta(hours=2), "loss", now),
            AccountLockout(2002, "maxContracts", now - timedelta(hours=3), now, "expired just now", now),
            AccountLockout(3003, "maxContracts", now, now + timedelta(hours=2), "not watched here", now),
            AccountLockout(2002, "somethingNewer", now, now + timedelta(hours=1), "unknown rule", now),
        ]
        restored = enforcer.restore(records)
        assert restored == [records[0], records[3]]
        assert set(enforcer.states) == {ACCOUNT, 2002}
        first, unknown = enforcer.states[ACCOUNT].lockout, enforcer.states[2002].lockout
        assert first is not None and (first.rule.value, first.until) == ("dailyLossLimit", records[0].until)
        assert unknown is not None and unknown.rule.value == "lockout"  # kept, never dropped
        assert [(e.account_id, e.outcome, e.measured["until"]) for e in journal] == [
            (ACCOUNT, "restored", records[0].until.isoformat()), (2002, "restored", records[3].until.isoformat())]


async def test_a_restored_lockout_removes_a_new_order_and_ends_at_its_time(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        placed = await h.manager.place(limit(1000.0))  # far below the market: it rests
        assert placed.order_id is not None
        enforcer, journal = await watching(h, [ACCOUNT])
        now = h.gateway.clock.now()
        until = now + timedelta(minutes=10)
        enforcer.restore([AccountLockout(ACCOUNT, "maxContracts", now, until, "restart", now)])
        await h.nursery.start(enforcer.run)
        await trio.sleep(3)
        assert await h.client.search_open_orders(ACCOUNT) == []  # no rule is breached: only the lockout removes it
        assert any(e.rule == "lockout" and e.outcome.startswith("enforced") for e in journal)
        assert await h.store.active_lockouts(h.gateway.clock.now()) == []  # restored, not stored a second time
        await trio.sleep(600)
        assert enforcer.states[ACCOUNT].lockout is None
        assert any(e.outcome == "unlocked" for e in journal)
