"""Risk rules: a pure evaluator (snapshot + remembered state -> typed decisions) and the configuration it reads.

``evaluate(AccountSnapshot, RiskState, RiskRules) -> Evaluation``; see :mod:`engine.risk.evaluator`. The driver
that carries decisions out (order manager priority lane, enforcement log, P&L snapshots) is
:mod:`engine.app.enforcement`.
"""

from engine.risk.calendar import SessionWindow, TradingCalendar
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
    Rule,
)
from engine.risk.evaluator import evaluate, flatten_actions
from engine.risk.inputs import AccountSnapshot, DayTrades, MirrorView
from engine.risk.pnl import ContractSpec, position_pnl, realized_pnl, unrealized_pnl
from engine.risk.rules import RiskRules, symbol_keys

__all__ = [
    "AccountSnapshot",
    "Allow",
    "Breach",
    "CancelOrder",
    "ClosePosition",
    "ContractSpec",
    "DailyReset",
    "DataMissing",
    "DayTrades",
    "Decision",
    "EnforcementAction",
    "Evaluation",
    "LockedOut",
    "Lockout",
    "LockoutEnded",
    "MirrorView",
    "PnlMeasure",
    "RiskRules",
    "RiskState",
    "Rule",
    "SessionWindow",
    "TradingCalendar",
    "evaluate",
    "flatten_actions",
    "position_pnl",
    "realized_pnl",
    "symbol_keys",
    "unrealized_pnl",
]
