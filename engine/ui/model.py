"""The dashboard's view model: frozen values holding exactly what the terminal dashboard shows, nothing more.

Why a separate, pure model: the renderer (:mod:`engine.ui.render`) is then a function of one value, testable by
rendering a hand-built model to text, and the live driver never touches engine components. Whoever builds the model
(the ``run`` command) reads the components once per refresh and hands over a consistent snapshot; the ``from_*``
helpers below turn each committed component's own snapshot into its row, so that builder is a few lines.

Times: durations are seconds on the Trio clock (``*_s``), instants shown to the user are wall-clock ``datetime``.
Helpers that read a live component (breaker, token manager) read the Trio clock and must run inside ``trio.run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from engine.auth.manager import TokenManager
    from engine.gateway.breaker import CircuitBreaker
    from engine.gateway.ratelimit import RateLimiterStats
    from engine.protocol.models import PositionModel
    from engine.realtime.health import HubHealth
    from engine.store.records import EnforcementEntry, ReconcileFinding


class Mode(StrEnum):
    """What the engine is connected to (the dashboard's first line)."""

    SIMULATED = "simulated"
    CHAOS = "chaos"
    REAL = "real gateway"


class RuleStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    LOCKED = "locked"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class HubRow:
    name: str
    state: str
    """A :class:`machines.connection.ConnectionState` value: connected, connecting, reconnecting, disconnected, ..."""
    last_message_age_s: float | None = None
    reconnects: int = 0
    latency_ms: float | None = None

    @classmethod
    def from_health(cls, health: HubHealth) -> HubRow:
        latency = None if health.latency_s is None else health.latency_s * 1000.0
        return cls(health.hub, str(health.state), health.last_message_age_s, health.reconnects, latency)


@dataclass(frozen=True, slots=True)
class BreakerRow:
    name: str
    state: str
    """A :class:`machines.breaker.BreakerState` value: closed, open, half_open, forced_open, disabled."""
    retry_in_s: float | None = None

    @classmethod
    def from_breaker(cls, breaker: CircuitBreaker) -> BreakerRow:
        """Reads the Trio clock (the time to the next probe)."""
        return cls(breaker.name, str(breaker.state), breaker.retry_in_s())


@dataclass(frozen=True, slots=True)
class TokenRow:
    state: str
    """A :class:`machines.token.TokenState` value: none, authenticating, valid, refreshing, expired, failed."""
    revision: int | None = None
    refresh_in_s: float | None = None
    expires_in_s: float | None = None

    @classmethod
    def from_manager(cls, manager: TokenManager) -> TokenRow:
        """Reads the Trio clock; never touches the token itself."""
        now = trio.current_time()
        lifecycle = manager.lifecycle
        due, expires = lifecycle.refresh_due_at, lifecycle.expires_at
        return cls(
            str(manager.state),
            manager.revision,
            None if due is None else max(0.0, due - now),
            None if expires is None else expires - now,
        )


@dataclass(frozen=True, slots=True)
class WindowUsage:
    name: str
    used: int
    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class RateLimitRow:
    windows: tuple[WindowUsage, ...] = ()
    queue_depth: int = 0
    rate_limited_429: int = 0
    paused_for_s: float = 0.0

    @classmethod
    def from_stats(cls, stats: RateLimiterStats) -> RateLimitRow:
        windows = tuple(
            WindowUsage(w.value, s.used, s.limit, s.window_seconds)
            for w, s in sorted(stats.windows.items(), key=lambda item: item[0].value)
        )
        return cls(windows, stats.queue_depth, stats.rate_limited_429_total, stats.paused_for_s)


@dataclass(frozen=True, slots=True)
class PositionRow:
    contract: str
    size: int
    """Signed: positive long, negative short."""
    avg_price: float
    mark: float | None = None

    @classmethod
    def from_model(cls, position: PositionModel, mark: float | None = None, *, name: str | None = None) -> PositionRow:
        """``name`` replaces the contract id (e.g. the contract's short name ``ESZ6``)."""
        from engine.protocol.enums import PositionType

        sign = -1 if position.type is PositionType.SHORT else 1
        label = name or position.contract_display_name or position.contract_id
        return cls(label, sign * position.size, position.average_price, mark)


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    name: str
    balance: float
    realized_pnl: float = 0.0
    unrealized_pnl: float | None = 0.0
    """``None`` when some position could not be priced (no quote or contract spec yet)."""
    positions: tuple[PositionRow, ...] = ()
    working_orders: int = 0
    lockout_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RuleRow:
    name: str
    enabled: bool
    status: RuleStatus
    measured: float | str | None = None
    limit: float | str | None = None


@dataclass(frozen=True, slots=True)
class EnforcementRow:
    at: datetime
    account_id: int | None
    rule: str
    actions: tuple[str, ...]
    outcome: str

    @classmethod
    def from_entry(cls, entry: EnforcementEntry) -> EnforcementRow:
        """From the store's enforcement record (what a risk decision's ``to_record()`` produces)."""
        return cls(entry.triggered_at, entry.account_id, entry.rule, tuple(entry.actions), entry.outcome)


@dataclass(frozen=True, slots=True)
class FindingRow:
    at: datetime
    kind: str
    account_id: int | None
    detail: str

    @classmethod
    def from_finding(cls, finding: ReconcileFinding) -> FindingRow:
        return cls(finding.at, finding.kind, finding.account_id, describe_details(finding.details))


def describe_details(details: Mapping[str, Any]) -> str:
    """``{"orderId": 9001, "status": 2}`` -> ``orderId=9001 status=2`` (compact, stable order)."""
    return " ".join(f"{key}={value}" for key, value in details.items())


@dataclass(frozen=True, slots=True)
class RunStats:
    uptime_s: float = 0.0
    faults_injected: int = 0
    reconnects: int = 0
    findings: int = 0
    enforcement_actions: int = 0
    duplicate_orders: int = 0
    rate_limited_429: int = 0


@dataclass(frozen=True, slots=True)
class DashboardModel:
    mode: Mode = Mode.SIMULATED
    mode_detail: str = ""
    """Free text after the mode, e.g. ``simulator seed 7`` or the gateway's host."""
    now: datetime | None = None
    hubs: tuple[HubRow, ...] = ()
    breakers: tuple[BreakerRow, ...] = ()
    token: TokenRow | None = None
    rate_limit: RateLimitRow | None = None
    accounts: tuple[AccountRow, ...] = ()
    rules: tuple[RuleRow, ...] = ()
    enforcement: tuple[EnforcementRow, ...] = ()
    """Most recent first; the renderer shows the first :data:`RECENT_ROWS`."""
    findings: tuple[FindingRow, ...] = ()
    """Most recent first."""
    stats: RunStats = field(default_factory=RunStats)


def recent(rows: Sequence[Any], n: int) -> tuple[Any, ...]:
    """The ``n`` most recent of rows appended oldest first, most recent first (what the model's lists hold)."""
    return tuple(reversed(rows[-n:])) if n > 0 else ()
