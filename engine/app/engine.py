"""The Engine: the nursery tree of a running engine and its start-up and shutdown sequences.

Why it is one object with one ``run``: structured concurrency makes the process's shape the code's shape. Every
long-lived task is started here, inside one nursery, in the order the architecture needs, and none outlives it::

    Engine.run
    └── store (open_store: the single writer + hourly retention)        <- outermost: the last thing to stop
        └── engine nursery                                            <- Engine.stop() / cancellation ends it
            ├── token manager            (proactive refresh; announces new tokens to the hubs)
            ├── order manager            (FIRST resolves the store's unresolved intents, then verification tasks)
            ├── event dispatcher         (hub events -> mirror; mirror changes -> order manager + risk driver)
            ├── risk enforcement driver  (evaluate -> cancel / close with enforcement priority)
            ├── user hub manager         (reconciler as on_reconnected hook, also the initial sync)
            ├── market hub manager       (quotes follow the contracts the mirror says are held or worked)
            └── state saver              (the mirrored state to the store every ``save_interval_s``)

Start-up (the seed's sequence, each step reported through ``status``): open the store -> log in (a permanent
refusal stops here) -> recover unresolved order intents -> decide the accounts (``accounts`` or every active one) ->
restore the risk lockouts still in force -> connect the user hub, subscribe, reconcile (the initial sync) -> connect
the market hub -> **ready** (``task_status.started()``).

Shutdown (:meth:`Engine.stop` or cancelling the caller): the hubs are closed, the engine nursery is cancelled (a
mutation already sent finishes inside the order manager's shield or is recorded ambiguous), then, shielded, the
final mirrored state is saved (:attr:`Engine.final_state`) and everything queued is committed before the store closes.

Connection, breaker and token transitions and reconciliation findings are journalled to the store.
The engine never imports the simulator: tests and ``run --simulate`` pass an httpx ``transport`` and a hub
``connector`` (or real URLs in the settings).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
import trio

from engine.app.enforcement import RiskEnforcer
from engine.app.journal import transition_journal
from engine.auth.storage import TokenStore, open_token_store
from engine.gateway.client import GatewayClient
from engine.gateway.errors import GatewayError, PermanentLoginError
from engine.orders import OrderManager
from engine.orders.manager import Handoff
from engine.protocol.timebase import WallClock
from engine.realtime import (
    HubEvents,
    HubManager,
    ReconnectContext,
    TokenManagerProvider,
    hub_from_settings,
    tune_gc_for_event_path,
)
from engine.realtime.hub import HubTimings
from engine.realtime.transport import Connector, socket_connector
from engine.risk import RiskRules
from engine.risk.calendar import CME_GLOBEX
from engine.state.changes import Change, OrderChanged, TradeAdded
from engine.state.dispatch import feed_mirror, follow_watched_contracts
from engine.state.gateway_source import GatewayClientSource
from engine.state.mirror import StateMirror
from engine.state.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from engine.store import ReconcileFinding, StateSnapshot, Store, StoreError, open_store
from engine.store.store import settings_values
from machines.observe import Transition
from settings import EngineSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
Status = Callable[[str], None]

RECENT_FINDINGS = 200
RECENT_REPORTS = 200
EVENT_BUFFER = 1_000
"""Batches of hub events (one websocket frame's events each, see :data:`engine.realtime.HubEvents`) queued between
the hubs and the dispatcher (the user hub waits when it is full: never a drop). Counted in frames: a live hub sends
an event or a few per frame, a burst up to a few hundred; 1,000 frames is ample slack for a dispatcher that never
blocks, and bounds what waits without holding up to 1,000 maximum-size frames' worth of decoded events."""


def _log_status(line: str) -> None:
    log.info("%s", line)


class Engine:
    """One running engine (see the module docstring). Single ``trio.run`` only; :meth:`run` once."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        connector: Connector = socket_connector,
        wall_clock: WallClock | None = None,
        token_store: TokenStore | None = None,
        store_threads: bool = True,
        status: Status | None = None,
        save_interval_s: float = 60.0,
        risk_tick_s: float = 1.0,
        hub_timings: HubTimings | None = None,
    ) -> None:
        if not save_interval_s > 0:
            raise ValueError(f"save_interval_s must be > 0, got {save_interval_s}")
        self.settings = settings
        self.clock = wall_clock if wall_clock is not None else WallClock()
        self.status: Status = status if status is not None else _log_status
        self.save_interval_s = save_interval_s
        self._store_threads = store_threads
        self._connector = connector
        store = token_store if token_store is not None else open_token_store(settings)
        self.client = GatewayClient.from_settings(settings, transport=transport, token_store=store,
                                                  wall_clock=self.clock)
        self.rules = RiskRules.from_settings(settings.risk_rules)
        self._risk_tick_s = risk_tick_s
        self._hub_options: dict[str, Any] = {} if hub_timings is None else {"timings": hub_timings}
        """Protocol timers of both hubs (keep-alive, server timeout); the ASP.NET defaults unless given."""

        self.store: Store | None = None
        self.orders: OrderManager | None = None
        self.mirror: StateMirror | None = None
        self.reconciler: Reconciler | None = None
        self.enforcer: RiskEnforcer | None = None
        self.user_hub: HubManager | None = None
        self.market_hub: HubManager | None = None
        self.account_ids: tuple[int, ...] = ()
        self.findings: deque[ReconcileFinding] = deque(maxlen=RECENT_FINDINGS)
        self.findings_total = 0
        self.reports: deque[ReconcileReport] = deque(maxlen=RECENT_REPORTS)
        """The latest reconciliation reports (one per reconnect: a list would grow for as long as the engine runs)."""
        self.handoffs: list[Handoff] = []
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.final_state: dict[str, list[dict[str, Any]]] | None = None
        self.states_saved = 0
        self.ready_event = trio.Event()
        """Set once the engine is ready (after the initial sync)."""
        self._synced = trio.Event()
        self._stop = trio.CancelScope()
        self._ran = False

    # ------------------------------------------------------------------------------------------------ control
    def stop(self) -> None:
        """Begin the graceful shutdown: :meth:`run` returns once the final state is saved."""
        for hub in (self.user_hub, self.market_hub):
            if hub is not None:
                hub.close("engine stopping")
        self._stop.cancel()

    @property
    def ready(self) -> bool:
        return self.ready_at is not None

    @property
    def uptime_s(self) -> float:
        return 0.0 if self.started_at is None else trio.current_time() - self.started_at

    def hubs(self) -> list[HubManager]:
        return [h for h in (self.user_hub, self.market_hub) if h is not None]

    # ------------------------------------------------------------------------------------------------ run
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything, report ready (``task_status.started()``), run until :meth:`stop` or cancellation,
        then shut down gracefully. Start-up failures raise (``PermanentLoginError``, ``HubClosed``, ``StoreError``).
        """
        if self._ran:
            raise RuntimeError("an Engine runs once; build a new one")
        self._ran = True
        tune_gc_for_event_path()  # hub frames make many short-lived objects: see engine/realtime/gcpolicy.py
        self.started_at = trio.current_time()
        url, version, retention = settings_values(self.settings)
        self.status(f"opening the store (schema v{version})")
        async with self.client, open_store(url, version, retention=retention, wall_clock=self.clock,
                                           threads=self._store_threads) as store:
            self.store = store
            self.client.breaker.add_listener(transition_journal(store.journal, self.clock, "breaker:rest"))
            self.client.tokens.lifecycle.add_listener(transition_journal(store.journal, self.clock, "token"))
            try:
                with self._stop:
                    async with trio.open_nursery() as nursery:
                        await self._start(nursery)
                        self.ready_at = trio.current_time()
                        self.ready_event.set()
                        self.status(f"ready: watching account(s) {', '.join(map(str, self.account_ids))}")
                        task_status.started()
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(30):
                    await self._save_final()

    async def _start(self, nursery: trio.Nursery) -> None:
        client = self.client
        assert self.store is not None
        store = self.store

        # 1. token (a permanent refusal raises here: nothing else is worth starting)
        self.status(f"logging in to {self.settings.api.base_url}")
        await client.start()
        token = await self._until_ok("login", lambda: client.tokens.current())
        self.status(f"logged in (token revision {token.revision})")
        await nursery.start(client.tokens.run)

        # 2. order manager: unresolved intents of an earlier run are verified before anything else acts
        self.orders = OrderManager.from_settings(self.settings, client, store, wall_clock=self.clock,
                                                 on_handoff=self.handoffs.append)
        unresolved = len(await store.unresolved_intents())
        if unresolved:
            self.status(f"recovering {unresolved} unresolved order intent(s) from the store")
        await nursery.start(self.orders.run)
        if unresolved:
            self.status("order recovery done")

        # 3. accounts
        if self.settings.accounts:
            self.account_ids = tuple(sorted(self.settings.accounts))
        else:
            accounts = await self._until_ok("Account/search", lambda: client.search_accounts(True))
            self.account_ids = tuple(sorted(a.id for a in accounts))
        if not self.account_ids:
            self.status("no active account to watch: the mirror stays empty until one appears")
        mirror = self.mirror = StateMirror(watch_accounts=self.account_ids)
        self.reconciler = Reconciler(
            mirror, GatewayClientSource(client), config=ReconcilerConfig.from_settings(
                self.settings.state_reconciliation),
            wall_clock=self.clock, findings=self._on_finding, account_ids=self.account_ids)

        # 4. event path: hubs -> dispatcher -> mirror -> order manager + risk driver
        mirror.subscribe(self._to_order_manager)
        self.enforcer = RiskEnforcer(mirror, self.orders, self.rules, clock=self.clock, journal=store.journal,
                                     contracts=client.contract_by_id, account_ids=self.account_ids,
                                     lockouts=store, tick_s=self._risk_tick_s)
        # lockouts of an earlier run that are still in force come back before anything is evaluated
        for lockout in self.enforcer.restore(await store.active_lockouts(self.clock.now(), self.account_ids)):
            self.status(f"account {lockout.account_id} stays locked out until {lockout.until.isoformat()} "
                        f"({lockout.rule}; restored from the store)")
        await nursery.start(self.enforcer.run)
        send, receive = trio.open_memory_channel[HubEvents](EVENT_BUFFER)
        nursery.start_soon(self._dispatch, receive)

        # 5. user hub: connect, subscribe, initial reconciliation (the manager's hook)
        self.status(f"connecting the user hub ({self.settings.api.user_hub_url})")
        user = self.user_hub = hub_from_settings(
            self.settings, "user", TokenManagerProvider(client.tokens), send.clone(), connector=self._connector,
            on_reconnected=self._reconcile, reconcile_initial=True, listeners=[self._hub_listener("user")],
            **self._hub_options)
        user.set_accounts(self.account_ids)
        await nursery.start(user.run)

        # 6. market hub: subscriptions follow the contracts held or worked
        market = self.market_hub = hub_from_settings(
            self.settings, "market", TokenManagerProvider(client.tokens), send, connector=self._connector,
            listeners=[self._hub_listener("market")], market_hours=CME_GLOBEX, wall_clock=self.clock,
            **self._hub_options)
        follow_watched_contracts(mirror, market.set_market_contracts)
        await nursery.start(market.run)

        with trio.fail_after(self._sync_deadline_s()):
            await self._synced.wait()
        await market.wait_connected()
        nursery.start_soon(self._save_loop)

    def _sync_deadline_s(self) -> float:
        reconnection = self.settings.signalr.reconnection
        return max(600.0, reconnection.max_delay_s * reconnection.max_attempts * 2)

    async def _until_ok(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Start-up reads wait out a Gateway that is unreachable for now; a permanent refusal raises at once."""
        delay = 1.0
        while True:
            try:
                return await call()
            except PermanentLoginError:
                raise
            except GatewayError as exc:
                self.status(f"{what} failed ({type(exc).__name__}: {exc}); retrying in {delay:.0f} s")
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # ------------------------------------------------------------------------------------------------ wiring
    async def _dispatch(self, batches: trio.MemoryReceiveChannel[HubEvents]) -> None:
        """The event dispatcher: every hub event, in arrival order, into the mirror (which never raises)."""
        mirror = self.mirror
        assert mirror is not None
        async with batches:
            await feed_mirror(mirror, batches)  # drains queued frames without a scheduler pass per frame

    def _to_order_manager(self, change: Change) -> None:
        orders = self.orders
        if orders is None:
            return
        if isinstance(change, OrderChanged) and change.after is not None:
            orders.on_order_event(change.after)
        elif isinstance(change, TradeAdded):
            orders.on_trade_event(change.trade)

    async def _reconcile(self, context: ReconnectContext) -> None:
        reconciler = self.reconciler
        assert reconciler is not None
        if not context.initial:
            self.status(f"user hub reconnected after {_seconds(context.downtime_s)}: reconciling")
        await reconciler.on_reconnected(context)
        report = reconciler.last_report
        if report is None:
            return
        self.reports.append(report)
        what = "initial sync" if context.initial else "reconciliation"
        if report.skipped:
            self.status(f"{what} skipped: {report.skipped}")
        else:
            self.status(f"{what} done: {len(report.findings)} finding(s)"
                        + ("" if report.complete else f", {len(report.failed)} part(s) unsettled"))
        self._synced.set()

    def _on_finding(self, finding: ReconcileFinding) -> None:
        self.findings.append(finding)
        self.findings_total += 1
        if self.store is not None:
            self.store.journal(finding)

    def _hub_listener(self, hub: str) -> Callable[[Transition], None]:
        journal = transition_journal(self._journal, self.clock, f"hub:{hub}")

        def listener(transition: Transition) -> None:
            journal(transition)
            if transition.source != transition.target:
                cause = f" ({transition.cause})" if transition.cause else ""
                self.status(f"{hub} hub: {transition.source} -> {transition.target}{cause}")

        return listener

    def _journal(self, record: Any) -> None:
        if self.store is not None:
            self.store.journal(record)

    # ------------------------------------------------------------------------------------------------ state
    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The mirrored state now (``accounts``, open ``positions``, working ``orders``; Gateway field names)."""
        if self.mirror is None:
            return {"accounts": [], "positions": [], "orders": []}
        return self.mirror.snapshot()

    async def save_state(self) -> bool:
        if self.store is None or self.mirror is None:
            return False
        try:
            await self.store.save_state(StateSnapshot.from_gateway(self.snapshot(), self.clock.now()))
        except StoreError as exc:
            log.error("saving the mirrored state failed: %s", exc)
            return False
        self.states_saved += 1
        return True

    async def _save_loop(self) -> None:
        while True:
            await trio.sleep(self.save_interval_s)
            await self.save_state()

    async def _save_final(self) -> None:
        self.final_state = self.snapshot()
        if self.mirror is not None and self.ready:
            await self.save_state()
        if self.store is not None:
            try:
                await self.store.flush()
            except StoreError as exc:
                log.error("committing the journal at shutdown failed: %s", exc)
        self.status("stopped")

    # ------------------------------------------------------------------------------------------------ numbers
    def reconnects(self) -> int:
        return sum(h.lifecycle.reconnects for h in self.hubs())

    def rate_limited_429(self) -> int:
        return self.client.limiter.stats().rate_limited_429_total


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "an unknown time"
    return f"{value:.1f} s"


def first_leaf(exc: BaseException, types: Sequence[type[BaseException]]) -> BaseException | None:
    """The first exception of ``types`` inside ``exc`` (exception groups are searched depth first)."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_leaf(inner, types)
            if found is not None:
                return found
        return None
    return exc if isinstance(exc, tuple(types)) else None
