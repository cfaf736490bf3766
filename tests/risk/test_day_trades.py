"""The enforcement driver's cached trading-day trades (:class:`engine.risk.DayTrades` over the mirror's time index and
trade version) equal the computation they replace, a filter of every trade the mirror remembers, after any sequence
of new trades, quiet replacements (voided, re-timed), evictions, removed accounts and day rollovers either way; and
the evaluation built on them is the same one: same realized P&L, trade counts, decisions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.models import HalfTradeModel
from engine.risk import AccountSnapshot, DayTrades, RiskState, evaluate
from engine.state.mirror import StateMirror

from .builders import MNQ, SPECS, T0, position, rules, trade

RULES = rules(**{"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500, "maxTradesPerDay.enabled": True,
                 "maxTradesPerDay.limit": 3})
TODAY = RULES.calendar.trading_day(T0)
DAY_STARTS = [RULES.calendar.day_bounds(TODAY + timedelta(days=k))[0] for k in range(-2, 3)]
ACCOUNTS = (7, 8)

Op = tuple[str, int, int, int, int]
"""(kind, account, trade id, minutes from today's start, a number: order id / P&L choice / day index)."""

ops = st.lists(st.tuples(st.sampled_from(["trade", "trade", "trade", "void", "retime", "remove", "check"]),
                         st.sampled_from(ACCOUNTS), st.integers(1, 14), st.integers(-3 * 1440, 3 * 1440),
                         st.integers(0, 4)), max_size=60)


def uncached(mirror: StateMirror, account: int, start: datetime) -> tuple[HalfTradeModel, ...]:
    """What the driver computed before: every remembered trade, filtered to those made since the day start."""
    return tuple(t for t in mirror.trades(account) if t.creation_timestamp >= start)


def resend(mirror: StateMirror, account: int, trade_id: int, **update: object) -> None:
    held = {t.id: t for t in mirror.trades(account)}.get(trade_id)
    if held is not None:
        mirror.apply_trade(held.model_copy(update=update), "stream")


def check(mirror: StateMirror, cache: DayTrades, account: int, start: datetime) -> None:
    cached = cache.since(mirror, account, start)
    assert cached == uncached(mirror, account, start)
    assert [t.id for t in cached] == [t.id for t in mirror.trades_since(account, start)]
    now = start + timedelta(hours=20)  # inside the trading day that begins at ``start``
    fast = AccountSnapshot.from_mirror(mirror, account, now=now, contracts=SPECS, since=start, day_trades=cache)
    slow = dataclasses.replace(fast, trades=uncached(mirror, account, start))
    assert fast.trades == slow.trades
    a, b = evaluate(fast, RiskState(), RULES), evaluate(slow, RiskState(), RULES)
    assert (a.decisions, a.state, a.pnl) == (b.decisions, b.state, b.pnl)


@given(ops)
def test_cached_day_trades_equal_the_filter_of_every_remembered_trade(steps: list[Op]) -> None:
    mirror = StateMirror(trade_memory=6, trade_id_memory=9)  # small: evictions (and forgotten ids) happen often
    mirror.apply_quote(MNQ, {"lastPrice": 19_990.0})
    cache = DayTrades()
    day = 2
    for kind, account, trade_id, minutes, n in steps:
        at = DAY_STARTS[2] + timedelta(minutes=minutes)
        if kind == "trade":  # new, a duplicate, or a known id with new content (replaced quietly)
            pnl = (None, -300.0, -120.0, 0.0, 80.0)[n]
            mirror.apply_trade(trade(trade_id, 100 + trade_id % 5, pnl=pnl, fees=0.5, at=at, account_id=account),
                               "stream")
            if n == 0:
                mirror.apply_position(position(MNQ, 1, account_id=account), "stream")
        elif kind == "void":
            resend(mirror, account, trade_id, voided=True)
        elif kind == "retime":
            resend(mirror, account, trade_id, creation_timestamp=at)
        elif kind == "remove":
            mirror.remove_account(account, "reconcile")
            if n % 2:  # the driver forgets a removed account; without it the version alone must do
                cache.forget(account)
        else:
            day = n  # a rollover, forward or (a clock stepped back) backward
        for checked in ACCOUNTS:
            check(mirror, cache, checked, DAY_STARTS[day])


def test_readings_come_from_the_cache_until_a_trade_or_the_day_changes() -> None:
    mirror, cache, start = StateMirror(), DayTrades(), DAY_STARTS[2]
    for i in range(50):
        mirror.apply_trade(trade(i + 1, i + 1, pnl=-1.0, at=start + timedelta(minutes=i - 25)), "stream")
    first = cache.since(mirror, 7, start)
    assert [t.id for t in first] == list(range(26, 51))
    assert all(cache.since(mirror, 7, start) is first for _ in range(10))
    assert (cache.reads, cache.hits) == (1, 10)
    mirror.apply_trade(trade(30, 30, pnl=-1.0, at=start + timedelta(minutes=4), voided=True), "stream")  # quiet
    assert [t.voided for t in cache.since(mirror, 7, start) if t.id == 30] == [True]
    assert cache.since(mirror, 7, DAY_STARTS[3]) == ()
    assert (cache.reads, cache.hits) == (3, 10)
