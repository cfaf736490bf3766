"""The evaluator, rule by rule and through a lockout's life: breach -> flatten -> locked out -> daily reset."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from engine.protocol.enums import OrderStatus, PositionType
from engine.risk import (
    AccountSnapshot,
    Allow,
    Breach,
    CancelOrder,
    ClosePosition,
    DailyReset,
    DataMissing,
    LockedOut,
    LockoutEnded,
    RiskState,
    Rule,
    evaluate,
)
from engine.store.records import EnforcementEntry, PnlSnapshot

from .builders import ACCOUNT, ES, MNQ, SPECS, T0, order, position, quote, rules, trade

NEXT_RESET = datetime(2025, 7, 15, 22, 0, tzinfo=UTC)  # 17:00 CDT on T0's day


def snap(now: datetime = T0, **kw: Any) -> AccountSnapshot:
    kw.setdefault("contracts", SPECS)
    for key in ("positions", "orders", "trades"):
        kw[key] = tuple(kw.get(key, ()))
    return AccountSnapshot(ACCOUNT, now, **kw)


LOSS = {"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500}


def test_nothing_enabled_allows_everything() -> None:
    result = evaluate(snap(positions=[position(size=99)], trades=[trade(1, 1, pnl=-1e6)]), RiskState(), rules())
    assert [type(d) for d in result.decisions] == [Allow]
    assert result.allowed and not result.actions and result.state.lockout is None
    assert result.pnl is None and not result.snapshot_due


@pytest.mark.parametrize(
    ("trades", "positions", "quotes", "breached", "total"),
    [
        # Realized: -480 P&L and 20 x 1.00 fees = -500: the limit itself is a breach.
        ([trade(i, i, pnl=-24.0, fees=1.0) for i in range(20)], [], {}, True, -500.0),
        ([trade(i, i, pnl=-24.0, fees=0.95) for i in range(20)], [], {}, False, -499.0),
        # Unrealized only: long 10 MNQ, 100 points down = 400 ticks * 0.5 * 10 = -2000.
        ([], [position(MNQ, 10, True, 20_000.0)], {MNQ: quote(last=19_900.0)}, True, -2_000.0),
        # A gain on one position offsets realized losses.
        ([trade(1, 1, pnl=-600.0)], [position(ES, 1, True, 6_000.0)], {ES: quote(last=6_002.25)}, False, -487.5),
        # Mixed: -300 realized, short ES 1 tick against = -12.5, long MNQ 800 ticks against = -400.
        (
            [trade(1, 1, pnl=-300.0)],
            [position(ES, 1, False, 6_000.0), position(MNQ, 1, True, 20_000.0)],
            {ES: quote(last=6_000.25), MNQ: quote(last=19_800.0)},
            True,
            -300.0 - 12.5 - 400.0,
        ),
    ],
)
def test_daily_loss_limit(
    trades: list[Any], positions: list[Any], quotes: dict[str, Any], breached: bool, total: float
) -> None:
    result = evaluate(snap(trades=trades, positions=positions, quotes=quotes), RiskState(), rules(**LOSS))
    assert result.pnl is not None and result.pnl.total == pytest.approx(total)
    assert bool(result.breaches) is breached
    if breached:
        [breach] = result.breaches
        assert breach.rule is Rule.DAILY_LOSS_LIMIT and breach.limit == 500
        assert breach.measured["total"] == pytest.approx(total)
        assert breach.lockout_until == NEXT_RESET
        assert result.state.lockout is not None and result.state.lockout.until == NEXT_RESET
        assert not result.allowed


def test_loss_rule_without_unrealized_ignores_open_positions() -> None:
    s = snap(positions=[position(MNQ, 10, True, 20_000.0)], quotes={MNQ: quote(last=19_000.0)})
    assert evaluate(s, RiskState(), rules(**LOSS, **{"dailyLossLimit.includeUnrealized": False})).allowed


def test_trades_of_the_previous_trading_day_do_not_count() -> None:
    yesterday = T0 - timedelta(days=1)
    day_start = NEXT_RESET - timedelta(days=1)
    old = [trade(1, 1, pnl=-10_000.0, at=yesterday), trade(2, 2, pnl=-10_000.0, at=day_start - timedelta(seconds=1))]
    assert evaluate(snap(trades=old), RiskState(), rules(**LOSS)).allowed
    # ...but a trade at the previous reset instant opens today's trading day.
    recent = [trade(3, 3, pnl=-10_000.0, at=day_start)]
    assert evaluate(snap(trades=recent), RiskState(), rules(**LOSS)).breaches


def test_unpriced_positions_are_reported_and_do_not_hide_a_realized_breach() -> None:
    s = snap(positions=[position(MNQ, 1), position("CON.F.US.GCE.Z25", 1)], trades=[trade(1, 1, pnl=-700.0)])
    result = evaluate(s, RiskState(), rules(**LOSS))
    missing = [d for d in result.decisions if isinstance(d, DataMissing)]
    assert missing == [DataMissing(ACCOUNT, T0, ("CON.F.US.GCE.Z25", MNQ), ("CON.F.US.GCE.Z25",), ())]
    assert [b.rule for b in result.breaches] == [Rule.DAILY_LOSS_LIMIT]
    assert result.breaches[0].measured["unpriced"] == ["CON.F.US.GCE.Z25", MNQ]


@pytest.mark.parametrize(
    ("positions", "scopes"),
    [
        ([position(MNQ, 3), position(ES, 2, long=False)], []),  # 5 of 5 total, MNQ 3 of 3
        ([position(MNQ, 4), position(ES, 1)], ["MNQ"]),
        ([position(MNQ, 3), position(ES, 3, long=False)], ["total", "F.US.EP"]),
        ([position(ES, 6)], ["total", "F.US.EP"]),
    ],
)
def test_max_contracts(positions: list[Any], scopes: list[str]) -> None:
    r = rules(per_symbol={"MNQ": 3, "F.US.EP": 2}, **{"maxContracts.enabled": True, "maxContracts.total": 5})
    result = evaluate(snap(positions=positions), RiskState(), r)
    assert [b.measured["scope"] for b in result.breaches] == scopes
    assert all(b.rule is Rule.MAX_CONTRACTS for b in result.breaches)


def test_per_symbol_keys_match_contract_id_symbol_id_and_product() -> None:
    for key in (MNQ, "F.US.MNQ", "MNQ"):
        r = rules(per_symbol={key: 1}, **{"maxContracts.enabled": True})
        assert evaluate(snap(positions=[position(MNQ, 2)]), RiskState(), r).breaches, key
        assert evaluate(snap(positions=[position(ES, 2)]), RiskState(), r).allowed, key


def test_max_trades_counts_filled_orders_not_fills() -> None:
    r = rules(**{"maxTradesPerDay.enabled": True, "maxTradesPerDay.limit": 2})
    # Order 1 filled in three pieces, order 2 once: two trades.
    two = [trade(1, 1), trade(2, 1), trade(3, 1), trade(4, 2)]
    assert evaluate(snap(trades=two), RiskState(), r).allowed
    three = [*two, trade(5, 3)]
    [breach] = evaluate(snap(trades=three), RiskState(), r).breaches
    assert (breach.rule, breach.measured, breach.limit) == (Rule.MAX_TRADES_PER_DAY, {"trades": 3, "fills": 5}, 2)
    assert evaluate(snap(trades=[*two, trade(5, 3, voided=True)]), RiskState(), r).allowed


SESSION = {"tradingSession.enabled": True, "tradingSession.start": "08:30", "tradingSession.end": "15:10",
           "tradingSession.flattenAt": "15:05", "tradingSession.days": ["Mon", "Tue", "Wed", "Thu", "Fri"]}


@pytest.mark.parametrize(
    ("now", "holding", "breached", "detail"),
    [
        (T0, True, False, ""),  # 09:00
        (datetime(2025, 7, 15, 20, 4, tzinfo=UTC), True, False, ""),  # 15:04
        (datetime(2025, 7, 15, 20, 5, tzinfo=UTC), True, True, "flatten time reached"),  # 15:05
        (datetime(2025, 7, 15, 20, 30, tzinfo=UTC), True, True, "outside the trading session"),
        (datetime(2025, 7, 15, 20, 30, tzinfo=UTC), False, False, ""),  # flat outside the window: fine
        (datetime(2025, 7, 19, 15, 0, tzinfo=UTC), True, True, "outside the trading session"),  # Saturday
    ],
)
def test_trading_session(now: datetime, holding: bool, breached: bool, detail: str) -> None:
    s = snap(now, positions=[position()] if holding else [])
    result = evaluate(s, RiskState(), rules(**SESSION))
    assert bool(result.breaches) is breached
    if breached:
        [breach] = result.breaches
        assert breach.detail.startswith(detail)
        # The session lockout lasts until the window opens again, not until the daily reset.
        assert breach.lockout_until > now
        assert breach.lockout_until.astimezone(result.breaches[0].at.tzinfo) == _next_open_after(now)


def _next_open_after(now: datetime) -> datetime:
    candidate = datetime(2025, 7, 15, 13, 30, tzinfo=UTC)
    while candidate <= now or candidate.weekday() >= 5:
        candidate += timedelta(days=1)
    return candidate


def test_a_working_order_outside_the_session_is_a_breach_too() -> None:
    s = snap(datetime(2025, 7, 15, 21, 0, tzinfo=UTC), orders=[order(5)])
    [breach] = evaluate(s, RiskState(), rules(**SESSION)).breaches
    assert breach.actions == (CancelOrder(ACCOUNT, 5, MNQ, OrderStatus.OPEN),)


def test_a_breach_cancels_every_working_order_then_closes_every_position() -> None:
    orders = [
        order(30, ES, OrderStatus.SUSPENDED, parent_order_id=10),  # a staged bracket child
        order(10, ES, OrderStatus.OPEN),
        order(20, MNQ, OrderStatus.PENDING),
        order(40, MNQ, OrderStatus.FILLED),  # not working: nothing to cancel
    ]
    positions = [position(MNQ, 2), position(ES, 1, long=False)]
    s = snap(orders=orders, positions=positions, trades=[trade(1, 1, pnl=-1_000.0)])
    result = evaluate(s, RiskState(), rules(**LOSS))
    assert result.actions == (
        CancelOrder(ACCOUNT, 10, ES, OrderStatus.OPEN),
        CancelOrder(ACCOUNT, 20, MNQ, OrderStatus.PENDING),
        CancelOrder(ACCOUNT, 30, ES, OrderStatus.SUSPENDED),
        ClosePosition(ACCOUNT, ES, 1, PositionType.SHORT),
        ClosePosition(ACCOUNT, MNQ, 2, PositionType.LONG),
    )


def test_two_rules_breached_at_once_share_one_set_of_actions_and_the_later_lockout() -> None:
    r = rules(**LOSS, **SESSION)
    now = datetime(2025, 7, 15, 20, 30, tzinfo=UTC)  # 15:30: outside the session, before the 17:00 reset
    result = evaluate(snap(now, positions=[position()], trades=[trade(1, 1, pnl=-900.0)]), RiskState(), r)
    assert [b.rule for b in result.breaches] == [Rule.DAILY_LOSS_LIMIT, Rule.TRADING_SESSION]
    assert result.breaches[0].actions == result.breaches[1].actions == result.actions
    assert len(result.actions) == 1
    # Loss lockout until the 17:00 reset; session lockout until the next 08:30: the later one wins.
    assert result.state.lockout is not None
    assert result.state.lockout.until == datetime(2025, 7, 16, 13, 30, tzinfo=UTC)
    assert result.state.lockout.rule is Rule.DAILY_LOSS_LIMIT


def test_lockout_life_cycle() -> None:
    r = rules(**LOSS)
    first = evaluate(snap(positions=[position()], trades=[trade(1, 1, pnl=-600.0)]), RiskState(), r)
    assert first.breaches and first.state.lockout is not None

    # Flat and locked: nothing to do, and still not allowed.
    later = T0 + timedelta(minutes=5)
    quiet = evaluate(snap(later, trades=[trade(1, 1, pnl=-600.0)]), first.state, r)
    assert [type(d) for d in quiet.decisions] == [LockedOut]
    assert not quiet.allowed and not quiet.actions and not quiet.records()

    # A new order and a new position while locked out: removed at once, no new breach.
    busy = snap(later, orders=[order(99)], positions=[position(ES, 1)])
    locked = evaluate(busy, quiet.state, r)
    [decision] = [d for d in locked.decisions if not isinstance(d, DataMissing)]
    assert isinstance(decision, LockedOut)
    assert locked.actions == (
        CancelOrder(ACCOUNT, 99, MNQ, OrderStatus.OPEN),
        ClosePosition(ACCOUNT, ES, 1, PositionType.LONG),
    )
    assert locked.state.lockout == first.state.lockout

    # One second before the reset: still locked. At the reset: unlocked, new trading day, yesterday's loss gone.
    assert not evaluate(snap(NEXT_RESET - timedelta(seconds=1)), locked.state, r).allowed
    after = evaluate(snap(NEXT_RESET, trades=[trade(1, 1, pnl=-600.0)]), locked.state, r)
    kinds = [type(d) for d in after.decisions]
    assert kinds == [DailyReset, LockoutEnded, Allow]
    assert after.decisions[0] == DailyReset(ACCOUNT, date(2025, 7, 16), date(2025, 7, 15), NEXT_RESET)
    assert after.state.lockout is None and after.allowed


def test_a_lockout_outlives_the_master_switch() -> None:
    first = evaluate(snap(trades=[trade(1, 1, pnl=-600.0)]), RiskState(), rules(**LOSS))
    off = rules(**LOSS, enabled=False)
    assert not evaluate(snap(T0 + timedelta(minutes=1), positions=[position()]), first.state, off).allowed
    assert evaluate(snap(T0 + timedelta(minutes=1), positions=[position()]), RiskState(), off).allowed


def test_pnl_snapshots_are_due_every_interval_and_on_a_new_day() -> None:
    r = rules(**LOSS, **{"dailyLossLimit.snapshotInterval": 60_000})
    s = snap(positions=[position(MNQ, 1, True, 20_000.0)], quotes={MNQ: quote(last=20_001.0)})
    first = evaluate(s, RiskState(), r)
    assert first.snapshot_due and first.pnl is not None
    assert first.pnl.to_record() == PnlSnapshot(ACCOUNT, date(2025, 7, 15), pytest.approx(2.0), T0)  # type: ignore[arg-type]
    soon = evaluate(replace(s, now=T0 + timedelta(seconds=59)), first.state, r)
    assert not soon.snapshot_due and soon.state.last_snapshot_at == T0
    due = evaluate(replace(s, now=T0 + timedelta(seconds=60)), soon.state, r)
    assert due.snapshot_due and due.state.last_snapshot_at == T0 + timedelta(seconds=60)
    new_day = evaluate(replace(s, now=NEXT_RESET), replace(due.state, last_snapshot_at=NEXT_RESET), r)
    assert new_day.snapshot_due


def test_breach_record_for_the_enforcement_log() -> None:
    s = snap(positions=[position(MNQ, 2)], orders=[order(5)], trades=[trade(1, 1, pnl=-650.0, fees=1.5)])
    result = evaluate(s, RiskState(), rules(**LOSS))
    [breach] = result.breaches
    assert isinstance(breach, Breach)
    done = T0 + timedelta(seconds=2)
    record = breach.to_record(outcome="flat", completed_at=done)
    assert record == EnforcementEntry(
        rule="dailyLossLimit",
        measured={
            "realized": -651.5,
            "unrealized": 0.0,
            "total": -651.5,
            "unpriced": [MNQ],
            "detail": "daily P&L -651.50 reached the loss limit -500.00",
            "lockoutUntil": NEXT_RESET.isoformat(),
        },
        limit=500,
        actions=[f"cancel order 5 ({MNQ}, open)", f"close {MNQ} (long 2)"],
        outcome="flat",
        triggered_at=T0,
        completed_at=done,
        account_id=ACCOUNT,
    )
    assert [e.rule for e in result.records()] == ["dailyLossLimit"]


def test_lockout_and_reset_records() -> None:
    first = evaluate(snap(trades=[trade(1, 1, pnl=-600.0)]), RiskState(), rules(**LOSS))
    locked = evaluate(snap(T0 + timedelta(minutes=1), orders=[order(8)]), first.state, rules(**LOSS))
    [record] = locked.records()
    assert (record.rule, record.actions) == ("lockout", [f"cancel order 8 ({MNQ}, open)"])
    assert record.measured["lockedOutBy"] == "dailyLossLimit"
    assert record.measured["until"] == NEXT_RESET.isoformat()
    after = evaluate(snap(NEXT_RESET), locked.state, rules(**LOSS))
    assert [(e.rule, e.outcome) for e in after.records()] == [("dailyReset", "reset"), ("dailyLossLimit", "unlocked")]


def test_a_snapshot_refuses_other_accounts_and_naive_times() -> None:
    with pytest.raises(ValueError, match="position of account 8 in the snapshot of account 7"):
        snap(positions=[position(account_id=8)])
    with pytest.raises(ValueError, match="timezone-aware"):
        AccountSnapshot(ACCOUNT, datetime(2025, 7, 15, 12))


def test_evaluation_is_deterministic() -> None:
    s = snap(positions=[position(MNQ, 4)], orders=[order(1), order(2)], trades=[trade(1, 1, pnl=-800.0)])
    r = rules(**LOSS, **{"maxContracts.enabled": True, "maxContracts.total": 3})
    assert evaluate(s, RiskState(), r) == evaluate(s, RiskState(), r)
