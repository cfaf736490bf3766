"""The risk rules: each a pure check of an account snapshot against one limit of the ``riskRules:`` section.

Why one function per rule, each returning "breached, with what measurements" or nothing: the rules are independent,
so they can be switched on and off one by one and tested one by one; the evaluator (:mod:`engine.risk.evaluator`)
owns what every breach has in common (flatten, lock out). :class:`RiskRules` is the configuration compiled once
(time zone, parsed times) from :class:`settings.models.RiskRulesSettings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.protocol.models import HalfTradeModel, PositionModel
from engine.risk.calendar import SessionWindow, TradingCalendar, parse_time_of_day
from engine.risk.decisions import Rule
from engine.risk.inputs import AccountSnapshot
from engine.risk.pnl import ContractSpec, Unrealized, realized_pnl, unrealized_pnl
from settings.models import (
    DailyLossLimitSettings,
    MaxContractsSettings,
    MaxTradesPerDaySettings,
    RiskRulesSettings,
    TradingSessionSettings,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A breached rule before the evaluator attaches actions: what was measured against which limit, and until
    when the account is to stay locked out."""

    rule: Rule
    measured: dict[str, Any]
    limit: float | None
    lockout_until: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class RiskRules:
    """The ``riskRules:`` section, compiled. A rule that is switched off is ``None``."""

    calendar: TradingCalendar
    enabled: bool = True
    daily_loss: DailyLossLimitSettings | None = None
    max_contracts: MaxContractsSettings | None = None
    max_trades: MaxTradesPerDaySettings | None = None
    session: SessionWindow | None = None
    settings: RiskRulesSettings = field(default_factory=RiskRulesSettings)

    @classmethod
    def from_settings(cls, settings: RiskRulesSettings) -> RiskRules:
        zone = ZoneInfo(settings.time_zone)
        session: SessionWindow | None = None
        s: TradingSessionSettings = settings.trading_session
        if s.enabled:
            flatten = parse_time_of_day(s.flatten_at) if s.flatten_at is not None else None
            session = SessionWindow.build(
                zone, parse_time_of_day(s.start), parse_time_of_day(s.end), flatten, s.days
            )
        return cls(
            calendar=TradingCalendar(zone, parse_time_of_day(settings.daily_reset)),
            enabled=settings.enabled,
            daily_loss=settings.daily_loss_limit if settings.daily_loss_limit.enabled else None,
            max_contracts=settings.max_contracts if settings.max_contracts.enabled else None,
            max_trades=settings.max_trades_per_day if settings.max_trades_per_day.enabled else None,
            session=session,
            settings=settings,
        )


# --- helpers ---------------------------------------------------------------------------------------------------------


def trades_of_day(trades: Iterable[HalfTradeModel], calendar: TradingCalendar, day: date) -> list[HalfTradeModel]:
    # No require_aware per trade: the wire models' Timestamp validator makes every timestamp aware (naive is read as
    # UTC), and a naive one slipping through would still fail loudly on the comparison with the aware bounds.
    start, end = calendar.day_bounds(day)
    return [t for t in trades if start <= t.creation_timestamp < end]


def symbol_keys(contract_id: str, spec: ContractSpec | None = None) -> frozenset[str]:
    """Every name a ``perSymbol`` key may use for a contract: the contract id (``CON.F.US.MNQ.U25``), its symbol id
    (``F.US.MNQ``, from the spec or from the id) and the product code (``MNQ``)."""
    keys = {contract_id}
    parts = contract_id.split(".")
    if len(parts) >= 5 and parts[0] == "CON":
        keys.add(".".join(parts[1:4]))
        keys.add(parts[3])
    if spec is not None and spec.symbol_id:
        keys.add(spec.symbol_id)
        keys.add(spec.symbol_id.rsplit(".", 1)[-1])
    return frozenset(keys)


# --- the rules -------------------------------------------------------------------------------------------------------


def check_daily_loss(
    limits: DailyLossLimitSettings,
    realized: float,
    unrealized: Unrealized,
    snapshot: AccountSnapshot,
    calendar: TradingCalendar,
) -> Finding | None:
    counted = unrealized.total if limits.include_unrealized else 0.0
    total = realized + counted
    if total > -limits.limit:
        return None
    return Finding(
        Rule.DAILY_LOSS_LIMIT,
        {"realized": realized, "unrealized": counted, "total": total, "unpriced": list(unrealized.unpriced)},
        limits.limit,
        calendar.next_reset(snapshot.now),
        f"daily P&L {total:.2f} reached the loss limit -{limits.limit:.2f}",
    )


def check_max_contracts(
    limits: MaxContractsSettings, snapshot: AccountSnapshot, calendar: TradingCalendar
) -> list[Finding]:
    positions: Sequence[PositionModel] = snapshot.open_positions
    findings: list[Finding] = []
    total = sum(abs(p.size) for p in positions)
    until = calendar.next_reset(snapshot.now)
    if total > limits.total:
        findings.append(
            Finding(
                Rule.MAX_CONTRACTS,
                {"contracts": total, "scope": "total"},
                limits.total,
                until,
                f"{total} open contracts, limit {limits.total}",
            )
        )
    for key, limit in sorted(limits.per_symbol.items()):
        held = sum(
            abs(p.size) for p in positions if key in symbol_keys(p.contract_id, snapshot.contracts.get(p.contract_id))
        )
        if held > limit:
            findings.append(
                Finding(
                    Rule.MAX_CONTRACTS,
                    {"contracts": held, "scope": key},
                    limit,
                    until,
                    f"{held} open contracts of {key}, limit {limit}",
                )
            )
    return findings


def check_max_trades(
    limits: MaxTradesPerDaySettings, day_trades: Sequence[HalfTradeModel], snapshot: AccountSnapshot,
    calendar: TradingCalendar,
) -> Finding | None:
    orders = {t.order_id for t in day_trades if not t.voided}
    if len(orders) <= limits.limit:
        return None
    return Finding(
        Rule.MAX_TRADES_PER_DAY,
        {"trades": len(orders), "fills": sum(1 for t in day_trades if not t.voided)},
        limits.limit,
        calendar.next_reset(snapshot.now),
        f"{len(orders)} filled orders today, limit {limits.limit}",
    )


def check_session(session: SessionWindow, snapshot: AccountSnapshot) -> Finding | None:
    if snapshot.is_flat or session.is_open(snapshot.now):
        return None
    local = snapshot.now.astimezone(session.zone)
    why = "flatten time reached" if session.in_flatten_period(snapshot.now) else "outside the trading session"
    return Finding(
        Rule.TRADING_SESSION,
        {
            "localTime": local.strftime("%a %H:%M %Z"),
            "positions": len(snapshot.open_positions),
            "workingOrders": len(snapshot.working_orders),
        },
        None,
        session.next_open(snapshot.now),
        f"{why} ({local.strftime('%H:%M %Z')}; window {session.start:%H:%M}-{session.close:%H:%M})",
    )


def measure(snapshot: AccountSnapshot, rules: RiskRules, day: date) -> tuple[float, Unrealized, list[HalfTradeModel]]:
    """Realized P&L and trades of the trading day ``day`` and the unrealized P&L of the open positions."""
    day_trades = trades_of_day(snapshot.trades, rules.calendar, day)
    mode = rules.daily_loss.mark_price if rules.daily_loss is not None else rules.settings.daily_loss_limit.mark_price
    unrealized = unrealized_pnl(snapshot.open_positions, snapshot.quotes, snapshot.contracts, mode)
    return realized_pnl(day_trades), unrealized, day_trades
