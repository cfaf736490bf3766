"""Build the dashboard's view model (:class:`engine.ui.DashboardModel`) from a running :class:`~engine.app.Engine`.

Why a builder function: the UI package is pure (a model in, a frame out) and must never reach into live components;
the run command calls :func:`dashboard_model` once per refresh, inside the Trio run, and hands the frozen value over.
Everything is read, nothing is changed. Rule rows show each rule's limit, whether it is on, its status over the
watched accounts (locked > breached > ok) and what it measures now, the worst value over the watched accounts: the
day's P&L of the loss rule is the one the enforcer's last evaluation computed (realized net of fees + unrealized);
open contracts and today's filled orders are measured from the mirror with the evaluator's own functions
(:func:`engine.risk.rules.measure`), so the table shows exactly what the rules compare with their limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.app.engine import Engine
from engine.risk import AccountSnapshot, Breach, Evaluation, LockedOut, Rule
from engine.risk.rules import measure
from engine.ui import (
    AccountRow,
    BreakerRow,
    DashboardModel,
    EnforcementRow,
    FindingRow,
    HubRow,
    Mode,
    PositionRow,
    RateLimitRow,
    RuleRow,
    RuleStatus,
    RunStats,
    TokenRow,
    recent,
)

RECENT = 10


def run_stats(engine: Engine, *, faults_injected: int = 0, duplicate_orders: int = 0,
              rate_limited_429: int | None = None) -> RunStats:
    """The run's counters; the simulator-side numbers (faults, duplicates) come from the caller."""
    enforcer = engine.enforcer
    return RunStats(
        uptime_s=engine.uptime_s,
        faults_injected=faults_injected,
        reconnects=engine.reconnects(),
        findings=engine.findings_total,
        enforcement_actions=enforcer.actions_sent if enforcer is not None else 0,
        duplicate_orders=duplicate_orders,
        rate_limited_429=engine.rate_limited_429() if rate_limited_429 is None else rate_limited_429,
    )


def _accounts(engine: Engine) -> tuple[AccountRow, ...]:
    mirror, enforcer = engine.mirror, engine.enforcer
    if mirror is None:
        return ()
    rows = []
    for account in mirror.accounts():
        evaluation = enforcer.last.get(account.id) if enforcer is not None else None
        pnl = evaluation.pnl if evaluation is not None else None
        lockout = evaluation.state.lockout if evaluation is not None else None
        positions = []
        for position in mirror.positions(account.id):
            quote = mirror.last_quote(position.contract_id)
            positions.append(PositionRow.from_model(position, quote.last_price if quote is not None else None))
        rows.append(AccountRow(
            account.id, account.name, account.balance,
            realized_pnl=pnl.realized if pnl is not None else 0.0,
            unrealized_pnl=(None if pnl.unpriced else pnl.unrealized) if pnl is not None else None,
            positions=tuple(positions),
            working_orders=len(mirror.working_orders(account.id)),
            lockout_until=lockout.until if lockout is not None else None,
        ))
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class Measured:
    """What each rule measures now, worst over the watched accounts (None: nothing to measure yet)."""

    daily_pnl: float | None = None
    """The lowest P&L of the trading day (realized net of fees + unrealized)."""
    contracts: int | None = None
    """The most open contracts on one account."""
    trades: int | None = None
    """The most filled orders of the trading day on one account."""
    session: str | None = None
    """``open``, ``closed`` or ``flatten`` (the flatten period before the close)."""


def measured(engine: Engine) -> Measured:
    """The rules' current measurements (see :class:`Measured`); call inside the Trio run."""
    mirror, enforcer, rules = engine.mirror, engine.enforcer, engine.rules
    now = engine.clock.now()
    session = None
    if rules.session is not None:
        session = ("open" if rules.session.is_open(now)
                   else "flatten" if rules.session.in_flatten_period(now) else "closed")
    if mirror is None:
        return Measured(session=session)
    pnls: list[float] = []
    contracts: list[int] = []
    trades: list[int] = []
    day = rules.calendar.trading_day(now)
    specs = enforcer.specs if enforcer is not None else {}
    since = enforcer.day_start(now) if enforcer is not None else None  # the day's trades only, as the enforcer reads
    for account_id in sorted(mirror.account_ids):
        if engine.account_ids and account_id not in engine.account_ids:
            continue
        evaluation = enforcer.last.get(account_id) if enforcer is not None else None
        if evaluation is not None and evaluation.pnl is not None:
            pnls.append(evaluation.pnl.total)
        snapshot = AccountSnapshot.from_mirror(mirror, account_id, now=now, contracts=specs, since=since)
        _, _, day_trades = measure(snapshot, rules, day)
        contracts.append(sum(abs(p.size) for p in snapshot.open_positions))
        trades.append(len({t.order_id for t in day_trades if not t.voided}))
    return Measured(min(pnls) if pnls else None, max(contracts) if contracts else None,
                    max(trades) if trades else None, session)


def _rules(engine: Engine) -> tuple[RuleRow, ...]:
    rules = engine.rules
    now = measured(engine)
    evaluations: Iterable[Evaluation] = engine.enforcer.last.values() if engine.enforcer is not None else ()
    breached: set[str] = set()
    locked: set[str] = set()
    for evaluation in evaluations:
        for decision in evaluation.decisions:
            if isinstance(decision, Breach):
                breached.add(decision.rule.value)
            elif isinstance(decision, LockedOut):
                locked.add(decision.lockout.rule.value)

    def status(name: Rule, on: bool) -> RuleStatus:
        if not (on and rules.enabled):
            return RuleStatus.OFF
        if name.value in locked:
            return RuleStatus.LOCKED
        return RuleStatus.BREACHED if name.value in breached else RuleStatus.OK

    s = rules.settings
    return (
        RuleRow(Rule.DAILY_LOSS_LIMIT.value, rules.daily_loss is not None,
                status(Rule.DAILY_LOSS_LIMIT, rules.daily_loss is not None), now.daily_pnl,
                -s.daily_loss_limit.limit),
        RuleRow(Rule.MAX_CONTRACTS.value, rules.max_contracts is not None,
                status(Rule.MAX_CONTRACTS, rules.max_contracts is not None), now.contracts, s.max_contracts.total),
        RuleRow(Rule.MAX_TRADES_PER_DAY.value, rules.max_trades is not None,
                status(Rule.MAX_TRADES_PER_DAY, rules.max_trades is not None), now.trades,
                s.max_trades_per_day.limit),
        RuleRow(Rule.TRADING_SESSION.value, rules.session is not None,
                status(Rule.TRADING_SESSION, rules.session is not None), now.session,
                f"{s.trading_session.start}-{s.trading_session.end}"),
    )


def dashboard_model(engine: Engine, *, mode: Mode = Mode.REAL, mode_detail: str = "",
                    stats: RunStats | None = None) -> DashboardModel:
    """A consistent snapshot of ``engine`` for the renderer (call inside the Trio run)."""
    client = engine.client
    enforcer = engine.enforcer
    enforcement = [EnforcementRow.from_entry(e) for e in enforcer.entries] if enforcer is not None else []
    return DashboardModel(
        mode=mode,
        mode_detail=mode_detail,
        now=engine.clock.now(),
        hubs=tuple(HubRow.from_health(h.health()) for h in engine.hubs()),
        breakers=(BreakerRow.from_breaker(client.breaker),),
        token=TokenRow.from_manager(client.tokens),
        rate_limit=RateLimitRow.from_stats(client.limiter.stats()),
        accounts=_accounts(engine),
        rules=_rules(engine),
        enforcement=recent(enforcement, RECENT),
        findings=recent([FindingRow.from_finding(f) for f in engine.findings], RECENT),
        stats=stats if stats is not None else run_stats(engine),
    )
