"""``AccountSnapshot.from_mirror(since=...)`` hands on only the trades made since the trading day's start (what the
risk driver passes), and the evaluation is then exactly the one over every remembered trade, whatever the trades'
days and arrival order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.risk import AccountSnapshot, RiskState, evaluate
from engine.state.mirror import StateMirror

from .builders import ACCOUNT, MNQ, SPECS, T0, position, rules, trade

RULES = rules(**{"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500, "maxTradesPerDay.enabled": True,
                 "maxTradesPerDay.limit": 3})
DAY_START = RULES.calendar.day_bounds(RULES.calendar.trading_day(T0))[0]


def mirror_with(offsets_min: list[int], pnls: list[float]) -> StateMirror:
    mirror = StateMirror()
    mirror.on_user_event("GatewayUserPosition", [position(MNQ, 1, True, 20_000.0).wire()])
    for i, (offset, pnl) in enumerate(zip(offsets_min, pnls, strict=True)):
        made = trade(i + 1, 100 + i, pnl=pnl, fees=0.25, at=DAY_START + timedelta(minutes=offset))
        mirror.on_user_event("GatewayUserTrade", [made.wire()])
    return mirror


def test_only_the_trades_since_the_day_start_are_kept() -> None:
    mirror = mirror_with([-1, 0, 5, -3000, 60], [-10.0, -20.0, -30.0, -40.0, -50.0])
    snapshot = AccountSnapshot.from_mirror(mirror, ACCOUNT, now=T0, contracts=SPECS, since=DAY_START)
    assert [t.id for t in snapshot.trades] == [2, 3, 5]  # arrival order kept; the day start itself is included
    every = AccountSnapshot.from_mirror(mirror, ACCOUNT, now=T0, contracts=SPECS)
    assert [t.id for t in every.trades] == [1, 2, 3, 4, 5]


def test_a_naive_since_is_refused() -> None:
    with pytest.raises(ValueError, match="since"):
        AccountSnapshot.from_mirror(StateMirror(), ACCOUNT, now=T0, contracts=SPECS,
                                    since=DAY_START.replace(tzinfo=None))


@given(st.lists(st.tuples(st.integers(-3 * 1440, 2 * 1440), st.sampled_from([-400.0, -150.0, 0.0, 90.0])),
                max_size=12))
def test_the_evaluation_over_the_day_only_equals_the_one_over_every_trade(trades: list[tuple[int, float]]) -> None:
    mirror = mirror_with([t[0] for t in trades], [t[1] for t in trades])
    every = AccountSnapshot.from_mirror(mirror, ACCOUNT, now=T0, contracts=SPECS)
    day = AccountSnapshot.from_mirror(mirror, ACCOUNT, now=T0, contracts=SPECS, since=DAY_START)
    full, trimmed = evaluate(every, RiskState(), RULES), evaluate(day, RiskState(), RULES)
    assert trimmed.decisions == full.decisions
    assert trimmed.state == full.state
    assert trimmed.pnl == full.pnl
