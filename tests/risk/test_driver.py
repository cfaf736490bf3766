"""The risk driver under virtual time: enforcement order, no resend storm, journal records, timer-driven resets.

The port below stands in for the order manager (the command path), not for the driver under test: it records the
calls and answers like the manager does (an IntentResult), optionally slowly or with a failure.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import trio

from engine.orders.intents import IntentResult, ResultKind
from engine.protocol.enums import OrderStatus
from engine.protocol.timebase import WallClock
from engine.risk import AccountSnapshot, DataMissing, Rule
from engine.risk.driver import RiskDriver
from engine.state.mirror import StateMirror
from engine.store.records import EnforcementEntry, PnlSnapshot, Record

from .builders import ACCOUNT, ES, MNQ, SPECS, T0, order, position, quote, rules, trade

LOSS = {"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500}


class RecordingPort:
    def __init__(self, delay_s: float = 0.0, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, object, float]] = []
        self.delay_s = delay_s
        self.fail = fail or set()

    async def cancel(self, account_id: int, order_id: int, *, priority: bool = False) -> IntentResult:
        assert priority
        self.calls.append(("cancel", order_id, trio.current_time()))
        await trio.sleep(self.delay_s)
        kind = ResultKind.UNKNOWN if f"cancel {order_id}" in self.fail else ResultKind.ACCEPTED
        return IntentResult("cancel", kind, account_id, order_id=order_id)

    async def close_position(
        self, account_id: int, contract_id: str, *, size: int | None = None, priority: bool = False
    ) -> IntentResult:
        assert priority and size is None
        self.calls.append(("close", contract_id, trio.current_time()))
        await trio.sleep(self.delay_s)
        if f"close {contract_id}" in self.fail:
            raise RuntimeError("gateway down")
        return IntentResult("close", ResultKind.ACCEPTED, account_id)


class ListJournal:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def journal(self, *records: Record) -> bool:
        self.records.extend(records)
        return True


def _snapshot(clock: WallClock, **kw: object) -> AccountSnapshot:
    return AccountSnapshot(ACCOUNT, clock.now(), contracts=SPECS, **kw)  # type: ignore[arg-type]


async def test_breach_cancels_all_before_any_close_and_journals_the_outcome(autojump_clock: trio.abc.Clock) -> None:
    clock, port, journal = WallClock(T0), RecordingPort(delay_s=0.5), ListJournal()
    driver = RiskDriver(rules(**LOSS), port, clock=clock, journal=journal)
    snap = _snapshot(
        clock,
        positions=(position(MNQ, 1), position(ES, 1)),
        orders=(order(1), order(2, status=OrderStatus.SUSPENDED)),
        trades=(trade(1, 9, pnl=-800.0),),
    )
    evaluation = await driver.check(snap)
    assert evaluation.breaches and driver.state(ACCOUNT).lockout is not None
    kinds = [c[0] for c in port.calls]
    assert kinds == ["cancel", "cancel", "close", "close"]
    cancel_times = {c[2] for c in port.calls if c[0] == "cancel"}
    close_times = {c[2] for c in port.calls if c[0] == "close"}
    assert len(cancel_times) == 1 and len(close_times) == 1  # each batch concurrently...
    assert min(close_times) >= max(cancel_times) + 0.5  # ...closes only after every cancel finished
    entries = [r for r in journal.records if isinstance(r, EnforcementEntry)]
    [entry] = entries
    assert (entry.rule, entry.outcome, len(entry.actions)) == ("dailyLossLimit", "completed", 4)
    assert entry.completed_at == T0 + timedelta(seconds=1)
    assert any(isinstance(r, PnlSnapshot) for r in journal.records)


async def test_no_resend_while_the_mirror_catches_up_then_ask_again(autojump_clock: trio.abc.Clock) -> None:
    clock, port = WallClock(T0), RecordingPort()
    driver = RiskDriver(rules(**LOSS), port, clock=clock, resend_after_s=5.0)
    held = {"positions": (position(MNQ, 1),), "trades": (trade(1, 9, pnl=-800.0),)}
    await driver.check(_snapshot(clock, **held))
    await trio.sleep(1)
    await driver.check(_snapshot(clock, **held))  # the mirror still shows the position: not re-sent yet
    assert [c[0] for c in port.calls] == ["close"]
    await trio.sleep(5)
    await driver.check(_snapshot(clock, **held))  # still there after 6 s: asked again
    assert [c[0] for c in port.calls] == ["close", "close"]


async def test_failures_are_reported_in_the_outcome(autojump_clock: trio.abc.Clock) -> None:
    clock, journal = WallClock(T0), ListJournal()
    port = RecordingPort(fail={"cancel 1", f"close {ES}"})
    driver = RiskDriver(rules(**LOSS), port, clock=clock, journal=journal)
    snap = _snapshot(
        clock, positions=(position(ES, 1),), orders=(order(1), order(2)), trades=(trade(1, 9, pnl=-800.0),)
    )
    await driver.check(snap)
    [entry] = [r for r in journal.records if isinstance(r, EnforcementEntry)]
    assert entry.outcome == "incomplete: 2 of 3 actions not confirmed"


async def test_run_reacts_to_mirror_changes_and_to_the_clock(autojump_clock: trio.abc.Clock) -> None:
    clock, port, journal = WallClock(T0), RecordingPort(), ListJournal()
    missing: list[DataMissing] = []
    driver = RiskDriver(rules(**LOSS), port, clock=clock, journal=journal, on_missing=missing.append)
    mirror = StateMirror()
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(driver.run, mirror, SPECS, interval_s=30.0))
        mirror.on_user_event("GatewayUserPosition", [position(MNQ, 4, True, 20_000.0).wire()])
        await trio.sleep(0.1)
        assert not port.calls and missing and missing[0].quotes == (MNQ,)
        # 4 MNQ long, 100 points down = -800: a breach as soon as the quote arrives.
        mirror.on_market_event("GatewayQuote", [MNQ, quote(last=19_900.0).wire(exclude_none=True)])
        await trio.sleep(0.1)
        assert [c[:2] for c in port.calls] == [("close", MNQ)]
        assert driver.state(ACCOUNT).lockout is not None
        # No event at all until the 17:00 CDT reset (8 hours later): the timer alone unlocks the account.
        mirror.close_position(ACCOUNT, MNQ, "stream")
        await trio.sleep(8 * 3600 + 60)
        assert driver.state(ACCOUNT).lockout is None
        nursery.cancel_scope.cancel()
    rules_logged = [r.rule for r in journal.records if isinstance(r, EnforcementEntry)]
    assert rules_logged == [Rule.DAILY_LOSS_LIMIT.value, "dailyReset", Rule.DAILY_LOSS_LIMIT.value]
    assert [r.outcome for r in journal.records if isinstance(r, EnforcementEntry)][-1] == "unlocked"
