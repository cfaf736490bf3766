"""Properties of the evaluator over random accounts, rules, lockouts and instants.

- A breach or a lockout yields actions that leave the account flat (no position, no working order).
- A locked-out account is never allowed, and stays locked until its time is up.
- Exactly one verdict per evaluation: Allow, or Breach(es), or LockedOut.
- Once flattened, re-evaluating at the same instant asks for nothing more (enforcement converges).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.enums import OrderStatus
from engine.risk import (
    AccountSnapshot,
    Allow,
    Breach,
    CancelOrder,
    ClosePosition,
    Evaluation,
    LockedOut,
    Lockout,
    RiskRules,
    RiskState,
    Rule,
    evaluate,
)

from .builders import ACCOUNT, ES, MNQ, SPECS, order, position, quote, rules, trade

CONTRACTS = [MNQ, ES, "CON.F.US.GCE.Z25"]
START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday; the range below crosses the spring-forward change


@cache
def _rules(loss: bool, contracts: bool, trades: bool, session: bool, limit: int, enabled: bool) -> RiskRules:
    return rules(
        enabled=enabled,
        per_symbol={"MNQ": 1},
        **{
            "dailyLossLimit.enabled": loss,
            "dailyLossLimit.limit": limit * 50,
            "maxContracts.enabled": contracts,
            "maxContracts.total": limit,
            "maxTradesPerDay.enabled": trades,
            "maxTradesPerDay.limit": limit,
            "tradingSession.enabled": session,
            "tradingSession.start": "08:30",
            "tradingSession.end": "15:10",
            "tradingSession.days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
        },
    )


rule_sets = st.builds(
    _rules, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.integers(1, 6), st.booleans()
)
instants = st.integers(0, 14 * 24 * 3600).map(lambda s: START + timedelta(seconds=s))


@st.composite
def snapshots(draw: st.DrawFn) -> AccountSnapshot:
    now = draw(instants)
    held = draw(st.lists(st.sampled_from(CONTRACTS), unique=True, max_size=3))
    positions = [
        position(c, draw(st.integers(1, 5)), draw(st.booleans()), draw(st.sampled_from([100.0, 6_000.0, 20_000.0])))
        for c in held
    ]
    order_ids = draw(st.lists(st.integers(1, 500), unique=True, max_size=5))
    orders = [order(i, draw(st.sampled_from(CONTRACTS)), draw(st.sampled_from(list(OrderStatus)))) for i in order_ids]
    trades = [
        trade(
            i,
            draw(st.integers(1, 8)),
            pnl=draw(st.one_of(st.none(), st.floats(-400, 400))),
            fees=draw(st.sampled_from([0.0, 0.37, 1.24])),
            at=now - timedelta(seconds=draw(st.integers(0, 36 * 3600))),
            voided=draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 8)))
    ]
    quotes = {c: quote(last=draw(st.floats(50, 25_000))) for c in held if draw(st.booleans())}
    return AccountSnapshot(
        ACCOUNT, now, tuple(positions), tuple(orders), tuple(trades), quotes, {k: v for k, v in SPECS.items()}
    )


@st.composite
def states(draw: st.DrawFn, now: datetime) -> RiskState:
    lockout = None
    if draw(st.booleans()):
        since = now - timedelta(seconds=draw(st.integers(0, 48 * 3600)))
        until = now + timedelta(seconds=draw(st.integers(-3600, 48 * 3600)))
        lockout = Lockout(draw(st.sampled_from([Rule.DAILY_LOSS_LIMIT, Rule.TRADING_SESSION])), since, until, "test")
    day = draw(st.one_of(st.none(), st.just((now - timedelta(days=1)).date()), st.just(now.date())))
    return RiskState(lockout=lockout, trading_day=day)


def apply(snapshot: AccountSnapshot, evaluation: Evaluation) -> AccountSnapshot:
    cancelled = {a.order_id for a in evaluation.actions if isinstance(a, CancelOrder)}
    closed = {a.contract_id for a in evaluation.actions if isinstance(a, ClosePosition)}
    return replace(
        snapshot,
        orders=tuple(o for o in snapshot.orders if o.id not in cancelled),
        positions=tuple(p for p in snapshot.positions if p.contract_id not in closed),
    )


@given(data=st.data(), snapshot=snapshots(), r=rule_sets)
def test_enforcement_leaves_the_account_flat_and_a_lockout_never_allows(
    data: st.DataObject, snapshot: AccountSnapshot, r: RiskRules
) -> None:
    state = data.draw(states(snapshot.now))
    result = evaluate(snapshot, state, r)
    verdicts = [type(d) for d in result.decisions if isinstance(d, Allow | Breach | LockedOut)]
    assert verdicts in ([Allow], [LockedOut]) or (verdicts and set(verdicts) == {Breach}), verdicts

    locked_before = state.lockout is not None and snapshot.now < state.lockout.until
    if locked_before:
        assert not result.allowed and verdicts == [LockedOut]
        assert result.state.lockout == state.lockout
    if result.breaches or verdicts == [LockedOut]:
        flat = apply(snapshot, result)
        assert flat.is_flat
        assert result.state.lockout is not None and result.state.lockout.until > snapshot.now
        again = evaluate(flat, result.state, r)
        assert not again.allowed and not again.actions and not again.breaches
    else:
        assert result.allowed and not result.actions and result.state.lockout is None


@given(snapshot=snapshots(), r=rule_sets)
def test_evaluation_is_pure(snapshot: AccountSnapshot, r: RiskRules) -> None:
    before: Any = (snapshot.positions, snapshot.orders, snapshot.trades, dict(snapshot.quotes))
    first = evaluate(snapshot, RiskState(), r)
    assert evaluate(snapshot, RiskState(), r) == first
    assert (snapshot.positions, snapshot.orders, snapshot.trades, dict(snapshot.quotes)) == before
