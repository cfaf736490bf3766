"""The typed output of the risk evaluator: breaches, enforcement actions, lockouts, resets, P&L measurements.

Why typed values instead of side effects: the evaluator decides, a driver acts. A decision says everything the
enforcement log needs (rule, what was measured, the limit, the actions, when), so ``to_record()`` turns any decision
into the store's :class:`~engine.store.records.EnforcementEntry` (or, for a P&L measurement, a
:class:`~engine.store.records.PnlSnapshot`) without the driver re-deriving anything. The driver fills in the
``outcome`` and ``completed_at`` once it has carried the actions out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from engine.protocol.enums import OrderStatus, PositionType
from engine.store.records import AccountLockout, EnforcementEntry, PnlSnapshot


class Rule(StrEnum):
    """Rule names as in the ``riskRules:`` section (and in the enforcement log's ``rule`` column)."""

    DAILY_LOSS_LIMIT = "dailyLossLimit"
    MAX_CONTRACTS = "maxContracts"
    MAX_TRADES_PER_DAY = "maxTradesPerDay"
    TRADING_SESSION = "tradingSession"
    LOCKOUT = "lockout"
    """Not a limit: the enforcement of an existing lockout (a new order or position while locked out)."""
    DAILY_RESET = "dailyReset"


# --- actions ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelOrder:
    account_id: int
    order_id: int
    contract_id: str
    status: OrderStatus
    """The status the order had when the decision was made (Suspended = a staged bracket child)."""

    def describe(self) -> str:
        return f"cancel order {self.order_id} ({self.contract_id}, {self.status.name.lower()})"


@dataclass(frozen=True, slots=True)
class ClosePosition:
    """Close the whole position in ``contract_id`` (Position/closeContract)."""

    account_id: int
    contract_id: str
    size: int
    type: PositionType

    def describe(self) -> str:
        return f"close {self.contract_id} ({self.type.name.lower()} {self.size})"


EnforcementAction = CancelOrder | ClosePosition
"""Every action the evaluator can ask for. Cancels come before closes: a working order left alone could re-open
the position just closed."""


@dataclass(frozen=True, slots=True)
class Lockout:
    """The account may hold nothing until ``until``; set by the breach of ``rule`` at ``since``."""

    rule: Rule
    since: datetime
    until: datetime
    reason: str

    def to_record(self, account_id: int, at: datetime) -> AccountLockout:
        """The store's durable form (what a restarted engine restores)."""
        return AccountLockout(account_id, self.rule.value, self.since, self.until, self.reason, at)

    @classmethod
    def from_record(cls, record: AccountLockout) -> Lockout:
        """Back from the store. A rule name this code does not know (a newer engine wrote it) still locks: the
        lockout is kept under :attr:`Rule.LOCKOUT` rather than dropped, which would lift it."""
        try:
            rule = Rule(record.rule)
        except ValueError:
            rule = Rule.LOCKOUT
        return cls(rule, record.since, record.until, record.reason)


def _iso(instant: datetime | None) -> str | None:
    return instant.isoformat() if instant is not None else None


def _descriptions(actions: tuple[EnforcementAction, ...]) -> list[str]:
    return [action.describe() for action in actions]


# --- decisions -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    """A rule's limit was crossed: cancel everything, close everything, lock out until ``lockout_until``."""

    account_id: int
    rule: Rule
    measured: Mapping[str, Any]
    limit: float | None
    at: datetime
    actions: tuple[EnforcementAction, ...]
    lockout_until: datetime
    detail: str

    notable = True

    def to_record(self, outcome: str = "decided", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule=self.rule.value,
            measured={**self.measured, "detail": self.detail, "lockoutUntil": _iso(self.lockout_until)},
            limit=self.limit,
            actions=_descriptions(self.actions),
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at,
            account_id=self.account_id,
        )


@dataclass(frozen=True, slots=True)
class LockedOut:
    """The account is locked out: whatever it holds now (a new order, a new position) is to be removed at once.
    With no actions it simply says "locked, nothing to do" (a locked-out account is never allowed)."""

    account_id: int
    lockout: Lockout
    at: datetime
    actions: tuple[EnforcementAction, ...] = ()

    @property
    def notable(self) -> bool:
        return bool(self.actions)

    def to_record(self, outcome: str = "decided", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule=Rule.LOCKOUT.value,
            measured={
                "lockedOutBy": self.lockout.rule.value,
                "since": _iso(self.lockout.since),
                "until": _iso(self.lockout.until),
                "reason": self.lockout.reason,
            },
            limit=None,
            actions=_descriptions(self.actions),
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at,
            account_id=self.account_id,
        )


@dataclass(frozen=True, slots=True)
class LockoutEnded:
    account_id: int
    lockout: Lockout
    at: datetime

    notable = True

    def to_record(self, outcome: str = "unlocked", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule=self.lockout.rule.value,
            measured={"since": _iso(self.lockout.since), "until": _iso(self.lockout.until)},
            limit=None,
            actions=[],
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at if completed_at is not None else self.at,
            account_id=self.account_id,
        )


@dataclass(frozen=True, slots=True)
class DailyReset:
    """A new trading day began: the daily counters (realized P&L, trades) start again from zero."""

    account_id: int
    trading_day: date
    previous: date
    at: datetime

    notable = True

    def to_record(self, outcome: str = "reset", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule=Rule.DAILY_RESET.value,
            measured={"tradingDay": self.trading_day.isoformat(), "previous": self.previous.isoformat()},
            limit=None,
            actions=[],
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at if completed_at is not None else self.at,
            account_id=self.account_id,
        )


@dataclass(frozen=True, slots=True)
class DataMissing:
    """Open positions the evaluator could not value: the driver should fetch the contract spec (Contract/searchById)
    or make sure the market hub is subscribed. The loss rule still runs on what it could value."""

    account_id: int
    at: datetime
    quotes: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    undefined_positions: tuple[str, ...] = ()

    notable = False

    def to_record(self, outcome: str = "data missing", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule=Rule.DAILY_LOSS_LIMIT.value,
            measured={
                "missingQuotes": list(self.quotes),
                "missingContracts": list(self.contracts),
                "undefinedPositions": list(self.undefined_positions),
            },
            limit=None,
            actions=[],
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at,
            account_id=self.account_id,
        )


@dataclass(frozen=True, slots=True)
class Allow:
    """Nothing to do: no rule breached and no lockout in force."""

    account_id: int
    at: datetime

    notable = False

    def to_record(self, outcome: str = "allowed", completed_at: datetime | None = None) -> EnforcementEntry:
        return EnforcementEntry(
            rule="none",
            measured={},
            limit=None,
            actions=[],
            outcome=outcome,
            triggered_at=self.at,
            completed_at=completed_at,
            account_id=self.account_id,
        )


Decision = Breach | LockedOut | LockoutEnded | DailyReset | DataMissing | Allow


# --- measurements and state ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PnlMeasure:
    """The account's P&L of the trading day at ``at`` (realized already net of fees)."""

    account_id: int
    trading_day: date
    realized: float
    unrealized: float
    at: datetime
    unpriced: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return self.realized + self.unrealized

    def to_record(self) -> PnlSnapshot:
        return PnlSnapshot(
            account_id=self.account_id, trading_day=self.trading_day, unrealized_pnl=self.unrealized, at=self.at
        )


@dataclass(frozen=True, slots=True)
class RiskState:
    """What the evaluator remembers about an account between two evaluations (the driver keeps it; pure value)."""

    lockout: Lockout | None = None
    trading_day: date | None = None
    last_snapshot_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one evaluation: decisions in order, the next state, the P&L measured (when the loss rule is on)
    and whether that measurement is due for the daily unrealized P&L table."""

    account_id: int
    decisions: tuple[Decision, ...]
    state: RiskState
    pnl: PnlMeasure | None = None
    snapshot_due: bool = False
    breaches: tuple[Breach, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "breaches", tuple(d for d in self.decisions if isinstance(d, Breach)))

    @property
    def actions(self) -> tuple[EnforcementAction, ...]:
        """Every action to carry out, each once, cancels first, in decision order."""
        seen: dict[EnforcementAction, None] = {}
        for decision in self.decisions:
            if isinstance(decision, Breach | LockedOut):
                for action in decision.actions:
                    seen.setdefault(action, None)
        ordered = list(seen)
        cancels = [a for a in ordered if isinstance(a, CancelOrder)]
        return (*cancels, *(a for a in ordered if isinstance(a, ClosePosition)))

    @property
    def allowed(self) -> bool:
        return any(isinstance(d, Allow) for d in self.decisions)

    @property
    def locked_out(self) -> bool:
        return self.state.lockout is not None

    def records(self) -> list[EnforcementEntry]:
        """The enforcement-log entries of the notable decisions (breaches, lockout enforcement, unlocks, resets)."""
        return [d.to_record() for d in self.decisions if d.notable]
