"""The risk evaluator: one account's snapshot + what was remembered -> typed decisions + what to remember next.

Pure and deterministic (no I/O, no clock: ``snapshot.now`` is the time), so every rule and every lockout path is a
table test. The order of business in one evaluation:

1. a new trading day (the daily reset passed) resets the daily counters; a lockout whose time is up ends;
2. while a lockout is in force, whatever the account holds is removed (cancel every working order, close every
   position) and nothing is ever "allowed";
3. otherwise each enabled rule is checked; any breach flattens the account and starts a lockout until the latest
   end among the breaches (the next daily reset; for the trading session, the next opening of the window);
4. with no breach: ``Allow``.

The P&L of the day is measured whenever the loss rule is on and reported for the unrealized P&L table every
``snapshotInterval`` (and at the first evaluation of each trading day).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from engine.protocol.models import HalfTradeModel
from engine.risk.decisions import (
    Allow,
    Breach,
    CancelOrder,
    ClosePosition,
    DailyReset,
    DataMissing,
    Decision,
    EnforcementAction,
    Evaluation,
    LockedOut,
    Lockout,
    LockoutEnded,
    PnlMeasure,
    RiskState,
)
from engine.risk.inputs import AccountSnapshot
from engine.risk.pnl import Unrealized
from engine.risk.rules import (
    Finding,
    RiskRules,
    check_daily_loss,
    check_max_contracts,
    check_max_trades,
    check_session,
    measure,
)


def flatten_actions(snapshot: AccountSnapshot) -> tuple[EnforcementAction, ...]:
    """Cancel every working order (Suspended bracket children included), then close every open position."""
    cancels = [
        CancelOrder(snapshot.account_id, o.id, o.contract_id, o.status)
        for o in sorted(snapshot.working_orders, key=lambda o: o.id)
    ]
    closes = [
        ClosePosition(snapshot.account_id, p.contract_id, abs(p.size), p.type)
        for p in sorted(snapshot.open_positions, key=lambda p: p.contract_id)
    ]
    return (*cancels, *closes)


def evaluate(snapshot: AccountSnapshot, state: RiskState, rules: RiskRules) -> Evaluation:
    now, account = snapshot.now, snapshot.account_id
    decisions: list[Decision] = []
    day = rules.calendar.trading_day(now)
    if state.trading_day is not None and day != state.trading_day:
        decisions.append(DailyReset(account, day, state.trading_day, now))

    lockout = state.lockout
    if lockout is not None and now >= lockout.until:
        decisions.append(LockoutEnded(account, lockout, now))
        lockout = None

    realized, unrealized, day_trades = measure(snapshot, rules, day)
    pnl: PnlMeasure | None = None
    snapshot_due = False
    last_snapshot = state.last_snapshot_at
    if rules.enabled and rules.daily_loss is not None:
        pnl = PnlMeasure(account, day, realized, unrealized.total, now, unrealized.unpriced)
        interval = timedelta(milliseconds=rules.daily_loss.snapshot_interval)
        snapshot_due = last_snapshot is None or now - last_snapshot >= interval or day != state.trading_day
        if snapshot_due:
            last_snapshot = now
        undefined = tuple(
            c for c in unrealized.unpriced if c not in unrealized.missing_quotes and c not in unrealized.missing_specs
        )
        if unrealized.unpriced:
            decisions.append(
                DataMissing(account, now, unrealized.missing_quotes, unrealized.missing_specs, undefined)
            )

    if lockout is not None:
        decisions.append(LockedOut(account, lockout, now, flatten_actions(snapshot)))
    else:
        findings = _findings(snapshot, rules, realized, unrealized, day_trades) if rules.enabled else []
        if findings:
            actions = flatten_actions(snapshot)
            until = max(f.lockout_until for f in findings)
            lockout = Lockout(findings[0].rule, now, until, findings[0].detail)
            decisions.extend(
                Breach(account, f.rule, f.measured, f.limit, now, actions, until, f.detail) for f in findings
            )
        else:
            decisions.append(Allow(account, now))

    next_state = RiskState(lockout=lockout, trading_day=day, last_snapshot_at=last_snapshot)
    return Evaluation(account, tuple(decisions), next_state, pnl, snapshot_due)


def _findings(
    snapshot: AccountSnapshot,
    rules: RiskRules,
    realized: float,
    unrealized: Unrealized,
    day_trades: Sequence[HalfTradeModel],
) -> list[Finding]:
    findings: list[Finding] = []
    if rules.daily_loss is not None:
        found = check_daily_loss(rules.daily_loss, realized, unrealized, snapshot, rules.calendar)
        if found is not None:
            findings.append(found)
    if rules.max_contracts is not None:
        findings.extend(check_max_contracts(rules.max_contracts, snapshot, rules.calendar))
    if rules.max_trades is not None:
        found = check_max_trades(rules.max_trades, day_trades, snapshot, rules.calendar)
        if found is not None:
            findings.append(found)
    if rules.session is not None:
        found = check_session(rules.session, snapshot)
        if found is not None:
            findings.append(found)
    return findings
