"""The reconciler (seed: State Reconciliation): re-prove the mirror from REST after start-up and every reconnect.

Why it works this way
---------------------
* **The stream has no replay.** Events missed while a hub was down are gone (docs/projectx-gateway.md §7.6), so after
  every transport gap a REST snapshot re-proves the state: accounts, open positions, working orders (Suspended
  bracket children included), orders created since the last synchronisation (to learn how missing working orders
  ended) and trades since then.
* **Atomic or not at all.** Everything is fetched first; the comparison is applied by one synchronous call
  (:func:`engine.state.compare.apply_snapshot`). The connection manager runs :meth:`Reconciler.reconcile` in a child
  nursery that is cancelled when the socket dies again; a cancellation during the fetch leaves the mirror exactly as
  it was.
* **Newer stream events win.** The mirror is put on hold (:meth:`StateMirror.holding`) *before* the first fetch: stream
  events arriving during the reconciliation are buffered and applied, in order, after the snapshot. A snapshot older
  than a stream event therefore never undoes it. The caller must re-subscribe the user hub *before* reconciling, so
  every change after the snapshot reaches the mirror as an event.
* **A missing list is not an empty list.** A failed fetch (an exception, an error envelope) skips that part of the
  comparison; the part is retried after a delay, until it succeeds or the caller's scope is cancelled.
* **Spaced, never lost.** Runs start at least ``stateReconciliation.minInterval`` apart; a request inside the
  interval waits for it. Requests that were waiting while a full run started are answered by that run.
* **Findings are journalled.** Each difference is a missed event: logged, handed to the findings sink (the store's
  ``journal``) as a :class:`~engine.store.records.ReconcileFinding`, and applied as a synthetic event that the mirror's
  listeners see with ``source="reconcile"``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

import trio

from engine.protocol.timebase import WallClock
from engine.state.compare import AccountFetch, CompareOptions, Fetched, absent_working_orders, apply_snapshot
from engine.state.mirror import StateMirror
from engine.state.source import SnapshotSource
from engine.store.records import ReconcileFinding
from settings import StateReconciliationSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

Reason = Literal["startup", "reconnect", "manual", "retry"]
PartKind = Literal["accounts", "positions", "orders", "trades"]
Part = tuple[PartKind, int | None]
"""A piece of a reconciliation that can fail on its own: ``("accounts", None)`` or ``("orders", 1001)`` etc."""
FindingSink = Callable[[ReconcileFinding], object]


class ReconnectInfo(Protocol):
    """What :meth:`Reconciler.on_reconnected` reads of the manager's ``ReconnectContext``."""

    @property
    def initial(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    enabled: bool = True
    on_reconnect: bool = True
    min_interval_s: float = 5.0
    compare_positions: bool = True
    compare_orders: bool = True
    compare_account: bool = True
    initial_lookback_s: float = 24 * 3600.0
    """How far back the first synchronisation reads orders and trades (the mirror starts with today's history)."""
    window_margin_s: float = 300.0
    """Later windows start this long before the previous synchronisation (clock skew, in-flight requests)."""
    retry_delay_s: float | None = None
    """First delay before retrying failed parts (default: ``min_interval_s``, at least 1 s); doubles per attempt."""
    max_retry_delay_s: float = 60.0
    max_attempts: int | None = None
    """None: retry failed parts until they succeed or the caller cancels."""

    def __post_init__(self) -> None:
        for name in ("min_interval_s", "initial_lookback_s", "window_margin_s", "max_retry_delay_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"ReconcilerConfig.{name} must not be negative, got {getattr(self, name)}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"ReconcilerConfig.max_attempts must be at least 1, got {self.max_attempts}")

    @classmethod
    def from_settings(cls, settings: StateReconciliationSettings, **overrides: Any) -> ReconcilerConfig:
        base: dict[str, Any] = {
            "enabled": settings.enabled,
            "on_reconnect": settings.on_reconnect,
            "min_interval_s": settings.min_interval_s,
            "compare_positions": settings.compare_positions,
            "compare_orders": settings.compare_orders,
            "compare_account": settings.compare_account,
        }
        base.update(overrides)
        return cls(**base)

    @property
    def first_retry_delay_s(self) -> float:
        return self.retry_delay_s if self.retry_delay_s is not None else max(1.0, self.min_interval_s)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    reason: Reason
    started_at: float
    """Trio time the (first) run started."""
    finished_at: float
    attempts: int
    findings: tuple[ReconcileFinding, ...]
    failed: tuple[Part, ...]
    """Parts still missing after the last attempt (empty when complete)."""
    skipped: str | None = None
    """Why nothing ran (``disabled``, ``onReconnect is off``), else None."""

    @property
    def complete(self) -> bool:
        return self.skipped is None and not self.failed


@dataclass
class ReconcilerCounters:
    runs: int = 0
    """Fetch-and-apply passes (a retry of failed parts is a pass too)."""
    requests: int = 0
    coalesced: int = 0
    """Requests answered by a full run that started while they waited."""
    fetch_failures: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    sink_errors: int = 0


class Reconciler:
    """Compares the mirror with the Gateway's REST state; see the module docstring."""

    def __init__(
        self,
        mirror: StateMirror,
        source: SnapshotSource,
        *,
        config: ReconcilerConfig | None = None,
        wall_clock: WallClock | Callable[[], datetime] | None = None,
        findings: FindingSink | None = None,
        account_ids: Collection[int] | None = None,
    ) -> None:
        self.mirror = mirror
        self.source = source
        self.config = config if config is not None else ReconcilerConfig()
        clock = wall_clock if wall_clock is not None else WallClock()
        self._now: Callable[[], datetime] = clock.now if isinstance(clock, WallClock) else clock
        self._sink = findings
        self._account_ids = frozenset(account_ids) if account_ids is not None else None
        self._lock = trio.Lock()
        self._last_started: float | None = None
        self._requests = 0
        self._last_full: tuple[int, ReconcileReport] | None = None
        """(number of requests made when the last complete run started, its report)."""
        self._synced: dict[tuple[PartKind, int], datetime] = {}
        """(orders|trades, account) -> wall time the last successful fetch of that part started."""
        self._ever_synced: set[int] = set()
        self._accounts_synced = False
        self.counters = ReconcilerCounters()
        self.last_report: ReconcileReport | None = None

    # ------------------------------------------------------------------------------------------------ public
    async def reconcile(self, reason: Reason = "manual") -> ReconcileReport:
        """Run one reconciliation (waiting for ``minInterval`` since the last one) and retry its failed parts.

        Cancel-safe: cancelled at any point, the mirror holds either the whole comparison or none of it."""
        self.counters.requests += 1
        now = trio.current_time()
        if not self.config.enabled:
            return self._skip(reason, now, "stateReconciliation is disabled")
        if reason == "reconnect" and not self.config.on_reconnect:
            return self._skip(reason, now, "stateReconciliation.onReconnect is off")
        ticket = self._requests
        self._requests += 1
        async with self._lock:
            if self._last_full is not None and self._last_full[0] > ticket:
                self.counters.coalesced += 1
                return self._last_full[1]
            report = await self._run_until_complete(reason)
        self.last_report = report
        return report

    async def on_reconnected(self, context: ReconnectInfo) -> None:
        """The connection manager's hook (``HubManager(on_reconnected=reconciler.on_reconnected)``): reconcile as the
        initial sync after the first connect (``context.initial``), else as a reconnect."""
        report = await self.reconcile("startup" if context.initial else "reconnect")
        if not report.complete and report.skipped is None:
            log.warning("reconcile after %s left %s unsettled", "start-up" if context.initial else "a reconnect",
                        _parts(report.failed))

    # ------------------------------------------------------------------------------------------------ runs
    async def _wait_interval(self) -> None:
        if self._last_started is not None:
            await trio.sleep_until(self._last_started + self.config.min_interval_s)

    async def _run_until_complete(self, reason: Reason) -> ReconcileReport:
        await self._wait_interval()
        started = self._last_started = trio.current_time()
        covers = self._requests
        """Every request made so far is answered by this run's fetch, which starts now."""
        findings: list[ReconcileFinding] = []
        failed = await self._pass(None, findings)
        attempts = 1
        delay = self.config.first_retry_delay_s
        while failed and (self.config.max_attempts is None or attempts < self.config.max_attempts):
            log.info("reconcile: %d part(s) missing (%s); retrying in %.1f s", len(failed), _parts(failed), delay)
            await trio.sleep(delay)
            await self._wait_interval()
            self._last_started = trio.current_time()
            attempts += 1
            failed = await self._pass(failed, findings)
            delay = min(delay * 2, self.config.max_retry_delay_s)
        report = self._report(reason, started, attempts, findings, failed)
        if report.complete:
            self._last_full = (covers, report)
        return report

    def _report(self, reason: Reason, started: float, attempts: int, findings: list[ReconcileFinding],
                failed: set[Part]) -> ReconcileReport:
        return ReconcileReport(reason, started, trio.current_time(), attempts, tuple(findings),
                               tuple(sorted(failed, key=lambda p: (p[0], p[1] or 0))))

    def _skip(self, reason: Reason, now: float, why: str) -> ReconcileReport:
        log.debug("reconcile (%s) skipped: %s", reason, why)
        report = ReconcileReport(reason, now, now, 0, (), (), skipped=why)
        self.last_report = report
        return report

    async def _pass(self, only: set[Part] | None, findings: list[ReconcileFinding]) -> set[Part]:
        """One fetch-and-apply pass over every part (``only=None``) or the given ones; returns the parts that failed."""
        self.counters.runs += 1
        config = self.config
        failed: set[Part] = set()

        def wanted(part: Part) -> bool:
            return only is None or part in only or (part[0] != "accounts" and ("accounts", None) in only)

        with self.mirror.holding():
            wall_start = self._now()
            accounts = None
            first_accounts = not self._accounts_synced
            if wanted(("accounts", None)):
                accounts = await self._fetch(("accounts", None), failed, self.source.accounts)
            account_ids = self._targets(accounts)
            per_account: list[AccountFetch] = []
            for account_id in account_ids:
                fetch = AccountFetch(account_id, initial=account_id not in self._ever_synced)
                if config.compare_positions and wanted(("positions", account_id)):
                    fetch.positions = await self._fetch(("positions", account_id), failed,
                                                        self.source.open_positions, account_id)
                if config.compare_orders and wanted(("orders", account_id)):
                    await self._fetch_orders(fetch, wall_start, failed)
                if wanted(("trades", account_id)):
                    fetch.trades = await self._fetch(("trades", account_id), failed, self.source.trades_since,
                                                     account_id, self._window(("trades", account_id), wall_start))
                per_account.append(fetch)
            # ---- no await below this line until the hold ends: the comparison is applied atomically ----
            options = CompareOptions(positions=config.compare_positions, orders=config.compare_orders,
                                     accounts=config.compare_account or first_accounts)
            outcome = apply_snapshot(self.mirror, Fetched(accounts, per_account), options, self._now(),
                                     first_sync=first_accounts)
            for account_id in outcome.unresolved:
                failed.add(("orders", account_id))
            self._mark_synced(accounts, per_account, failed, wall_start)
            self._publish(outcome.findings)
            findings.extend(outcome.findings)
        return failed

    def _targets(self, accounts: Any) -> list[int]:
        ids = {a.id for a in accounts} if accounts is not None else set(self.mirror.account_ids)
        if self._account_ids is not None:
            ids &= self._account_ids
        return sorted(ids)

    async def _fetch_orders(self, fetch: AccountFetch, wall_start: datetime, failed: set[Part]) -> None:
        account_id = fetch.account_id
        part: Part = ("orders", account_id)
        fetch.working = await self._fetch(part, failed, self.source.working_orders, account_id)
        fetch.recent = await self._fetch(part, failed, self.source.orders_since, account_id,
                                         self._window(("orders", account_id), wall_start))
        if fetch.working is None:
            return
        for order_id in absent_working_orders(self.mirror, account_id, fetch.working, fetch.recent):
            try:
                fetch.lookups[order_id] = await self.source.order_by_id(account_id, order_id)
            except Exception as exc:
                self._fetch_failed(part, exc)
                fetch.lookup_failed.add(order_id)
                failed.add(part)

    def _window(self, key: tuple[PartKind, int], wall_start: datetime) -> datetime:
        synced = self._synced.get(key)
        if synced is None:
            return wall_start - timedelta(seconds=self.config.initial_lookback_s)
        return synced - timedelta(seconds=self.config.window_margin_s)

    async def _fetch(self, part: Part, failed: set[Part], fn: Callable[..., Awaitable[T]], *args: Any) -> T | None:
        try:
            value = await fn(*args)
        except Exception as exc:
            self._fetch_failed(part, exc)
            failed.add(part)
            return None
        if not isinstance(value, list | tuple) and part[0] != "accounts":
            self._fetch_failed(part, TypeError(f"expected a list, got {type(value).__name__}"))
            failed.add(part)
            return None
        return value

    def _fetch_failed(self, part: Part, exc: BaseException) -> None:
        self.counters.fetch_failures += 1
        log.warning("reconcile: %s fetch failed, skipped (not taken as empty): %s: %s", _parts({part}),
                    type(exc).__name__, exc)

    def _mark_synced(self, accounts: Any, per_account: list[AccountFetch], failed: set[Part],
                     wall_start: datetime) -> None:
        if accounts is not None:
            self._accounts_synced = True
        for fetch in per_account:
            account_id = fetch.account_id
            if ("orders", account_id) not in failed and fetch.working is not None:
                self._synced[("orders", account_id)] = wall_start
            if ("trades", account_id) not in failed and fetch.trades is not None:
                self._synced[("trades", account_id)] = wall_start
            if not any(p[1] == account_id for p in failed):
                self._ever_synced.add(account_id)

    def _publish(self, findings: list[ReconcileFinding]) -> None:
        for finding in findings:
            self.counters.findings[finding.kind] += 1
            log.info("reconcile: missed event %s account=%s %s", finding.kind, finding.account_id,
                     _details(finding.details))
            if self._sink is None:
                continue
            try:
                self._sink(finding)
            except Exception:
                self.counters.sink_errors += 1
                log.exception("reconcile: the findings sink failed on %s", finding.kind)


def _parts(parts: Collection[Part]) -> str:
    return ", ".join(kind if account is None else f"{kind}[{account}]" for kind, account in sorted(
        parts, key=lambda p: (p[0], p[1] or 0)))


def _details(details: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in details.items() if v is not None and k != "changed")
