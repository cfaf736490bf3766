"""Connection manager: the driver of one hub's connection machine (one manager per hub).

The machine (:class:`machines.connection.ConnectionLifecycle`) decides *what* happens (first connect or reconnect,
another attempt or give up); this task does the I/O and the timing around it:

- **Attempts** (the first connect is retried too): wait ``signalr.reconnection.delays[attempt-1]``, then
  ``maxDelayMs`` with jitter (:class:`~engine.realtime.backoff.ReconnectBackoff`); the failure of attempt
  ``maxAttempts`` closes the hub and :meth:`HubManager.run` raises :class:`~engine.realtime.errors.HubGaveUp`
  (a loud error, logged at ERROR). A server Close without ``allowReconnect`` closes it too
  (:class:`~engine.realtime.errors.HubClosed`).
- **Tokens**: every attempt takes a fresh token from the :class:`~engine.realtime.tokens.TokenProvider`; a refreshed
  token (announced by the provider) ends the live socket for a *planned* reconnect; an upgrade refused with 401/403
  or a ``GatewayLogout`` event makes the next attempt re-login first (with a pause if logouts storm: another session
  is probably fighting for the same login).
- **Per-connection scope**: each socket (a *generation*) gets one nursery holding the protocol tasks (reader,
  keep-alive, server timeout), the subscription worker, the heartbeat and the stale watchdog. Nothing in it survives
  the socket, so work that belongs to an old socket can never act on its replacement.
- **Subscriptions** are data (:class:`~engine.realtime.subscriptions.Subscription`) held in named groups; each socket
  subscribes the difference between the desired set and what it applied: everything after a reconnect (after
  ``resubscribeDelay``, when ``autoResubscribe``), only the change while connected (:meth:`set_market_contracts`).
  The calls of one difference are pipelined (:meth:`~engine.realtime.hub.HubConnection.invoke_many`): one round
  trip for the whole replay instead of one per subscription.
- **THE KEY SHAPE**: on every transition into connected-after-a-reconnect (and after the first connect when
  ``reconcile_initial``), once the subscriptions are replayed, a child nursery inside the per-connection scope runs
  the injected reconciler. If the socket drops again, leaving that scope cancels the reconciler.
- **Events** go to the injected sink as :data:`~engine.realtime.events.HubEvents` batches (the events of one
  websocket frame per item): in order and never dropped (user hub), or with quotes coalesced per contract (market
  hub, one event per batch); see :mod:`engine.realtime.events`.
- **Health** (``signalr.health``): a heartbeat invocation every ``pingInterval`` (answered within ``pingTimeout``,
  its round trip is the latency; an error Completion for the unknown method is an answer too), and a watchdog that
  forces a reconnect after ``staleThreshold`` without any message. User-hub liveness comes from the server's pings,
  not from traffic (a flat account is quiet for hours); the market hub's watchdog also watches the feed while
  contracts are subscribed and the market is open (``market_hours``; the Engine passes CME Globex: a closed market
  is silent by nature, and its silence counts from the next open; None watches around the clock).
  :meth:`HubManager.health` returns a :class:`~engine.realtime.health.HubHealth`.
- Every machine transition reaches the listeners (for the store) and the seed's hooks (:meth:`HubManager.on`).
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import trio
import trio_websocket

from engine.protocol.signalr import Invocation, TypedReader
from engine.protocol.timebase import WallClock
from engine.protocol.user_events import read_user_event
from engine.realtime.backoff import ReconnectBackoff
from engine.realtime.errors import (
    HandshakeFailed,
    HubClosed,
    HubConnectionLost,
    HubGaveUp,
    HubInvocationError,
    HubNotConnected,
    InvokeTimeout,
)
from engine.realtime.events import LOGOUT_TARGET, CoalescingDelivery, Delivery, HubEvent, HubEvents, OrderedDelivery
from engine.realtime.health import HubHealth
from engine.realtime.hub import Disconnect, DisconnectKind, HubConnection, HubTimings
from engine.realtime.subscriptions import QUOTES, Subscription, market_subscriptions, user_subscriptions
from engine.realtime.tokens import TokenProvider
from engine.realtime.transport import DEFAULT_MAX_MESSAGE_SIZE, Connector, WebSocketLike, hub_url, socket_connector
from machines.connection import ConnectionLifecycle, ConnectionState, Hook, hook_of
from machines.observe import Transition, TransitionListener
from settings import SignalrSettings

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_TARGET: Final = "Heartbeat"
"""Hub method the heartbeat invokes. The Gateway has no such method, so it answers at once with an error
Completion ("Unknown hub method"): a round trip with no side effect on the server."""

CONTRACTS_GROUP: Final = "contracts"
ACCOUNTS_GROUP: Final = "accounts"
_CONNECT_ERRORS = (
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    OSError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


@dataclass(frozen=True, slots=True)
class ReconnectContext:
    """What the reconciler is told when it is started (it runs inside the socket's scope)."""

    hub: str
    generation: int
    initial: bool
    """True for the initial sync after the first connect; False after a reconnect."""
    reconnects: int
    downtime_s: float | None
    """Seconds between losing the previous socket and this one's handshake (None for the first connect)."""
    is_current: Callable[[], bool]
    """True while this socket is still the live one."""


Reconciler = Callable[[ReconnectContext], Awaitable[None]]


class MarketHours(Protocol):
    """When the market trades (:data:`engine.risk.calendar.CME_GLOBEX` is one): pure, "now" is an argument."""

    def is_open(self, now: datetime) -> bool: ...

    def next_open(self, now: datetime) -> datetime: ...


class HubManager:
    """Keeps one hub connected; see the module docstring. Run :meth:`run` in a nursery (``await nursery.start``)."""

    def __init__(
        self,
        name: str,
        url: str,
        tokens: TokenProvider,
        sink: trio.MemorySendChannel[HubEvents],
        *,
        connector: Connector = socket_connector,
        signalr: SignalrSettings | None = None,
        timings: HubTimings | None = None,
        on_reconnected: Reconciler | None = None,
        reconcile_initial: bool = False,
        coalesce: Iterable[str] = (),
        feed_watchdog: bool = False,
        market_hours: MarketHours | None = None,
        wall_clock: WallClock | None = None,
        heartbeat_target: str = DEFAULT_HEARTBEAT_TARGET,
        jitter: float = 0.2,
        rng: random.Random | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        read_typed: TypedReader | None = None,
        market_feeds: Iterable[str] = (QUOTES,),
        logout_storm: tuple[int, float] = (5, 120.0),
        listeners: Iterable[TransitionListener] = (),
    ) -> None:
        cfg = signalr if signalr is not None else SignalrSettings()
        self.name = name
        self.url = url
        hub_url(url, "probe")  # validates the scheme now, not at the first connect
        self._tokens = tokens
        self._connector = connector
        self._timings = timings or HubTimings()
        self._backoff = ReconnectBackoff(cfg.reconnection.delays_s, cfg.reconnection.max_delay_s, jitter,
                                         rng if rng is not None else random.Random())
        self._ping_interval_s = cfg.health.ping_interval_s
        self._ping_timeout_s = cfg.health.ping_timeout_s
        self._stale_threshold_s = cfg.health.stale_threshold_s
        self._auto_resubscribe = cfg.subscriptions.auto_resubscribe
        self._resubscribe_delay_s = cfg.subscriptions.resubscribe_delay_s
        self._on_reconnected = on_reconnected
        self._reconcile_initial = reconcile_initial
        coalesce_set = frozenset(coalesce)
        self._delivery: Delivery = CoalescingDelivery(sink, coalesce_set) if coalesce_set else OrderedDelivery(sink)
        self._feed_watchdog = feed_watchdog
        self._market_hours = market_hours
        self._wall_clock = wall_clock if wall_clock is not None else WallClock()
        self._heartbeat_target = heartbeat_target
        self._max_message_size = max_message_size
        self._read_typed = read_typed
        self._market_feeds = tuple(market_feeds)
        self._logout_limit, self._logout_window_s = logout_storm

        self.lifecycle = ConnectionLifecycle(cfg.reconnection.max_attempts, name=f"hub:{name}")
        self.lifecycle.add_listener(self._on_transition)
        for listener in listeners:
            self.lifecycle.add_listener(listener)

        self._groups: dict[str, list[Subscription]] = {}
        self._subs_version = 0
        self._subs_changed = trio.Event()
        self._contracts_changed_at = 0.0

        self._conn: HubConnection | None = None
        self._socket_token: str | None = None
        self._generation = 0
        self._token_epoch = 0
        self._relogin_needed = False
        self._logouts: deque[float] = deque()
        self._manual_resubscribe: trio.Event | None = None
        self._state_changed = trio.Event()
        self._run_scope = trio.CancelScope()
        self._ran = False
        self._close_reason: str | None = None
        self._connected_at: float | None = None
        self._lost_at: float | None = None
        self._last_event_at: float | None = None

        self.events_received = 0
        self.heartbeats_sent = 0
        self.heartbeats_missed = 0
        self.latency_s: float | None = None
        self.stale_reconnects = 0
        self.planned_reconnects = 0
        self.relogins = 0
        self.subscription_errors = 0
        self.reconcile_runs = 0
        self.reconcile_failures = 0
        self.last_disconnect: str | None = None
        self.last_failure: str | None = None

    # --- observation ----------------------------------------------------------------------------------------------
    @property
    def state(self) -> ConnectionState:
        return self.lifecycle.state

    @property
    def generation(self) -> int:
        """The socket generation of the latest attempt (grows by one per attempt)."""
        return self._generation

    @property
    def connection(self) -> HubConnection | None:
        """The live connection, if any (do not keep it: it belongs to one generation)."""
        conn = self._conn
        return conn if conn is not None and not conn.ended else None

    def add_listener(self, listener: TransitionListener) -> None:
        """Every future connection-machine transition (for the store)."""
        self.lifecycle.add_listener(listener)

    def on(self, hook: Hook, callback: Callable[[Transition], None]) -> None:
        """Call ``callback`` on transitions of kind ``hook`` (onconnected / onreconnecting / onreconnected /
        onclose). Called synchronously; it must not block (record intent, act in a task)."""

        def listener(transition: Transition) -> None:
            if hook_of(transition) is hook:
                callback(transition)

        self.lifecycle.add_listener(listener)

    def health(self) -> HubHealth:
        now = trio.current_time()
        conn = self.connection
        return HubHealth(
            hub=self.name,
            state=self.state,
            generation=self._generation,
            attempt=self.lifecycle.attempt,
            reconnects=self.lifecycle.reconnects,
            connected_for_s=None if conn is None or self._connected_at is None else now - self._connected_at,
            last_message_age_s=None if conn is None else now - conn.last_received_at,
            last_event_age_s=None if self._last_event_at is None else now - self._last_event_at,
            latency_s=self.latency_s,
            heartbeats_sent=self.heartbeats_sent,
            heartbeats_missed=self.heartbeats_missed,
            stale_reconnects=self.stale_reconnects,
            events_received=self.events_received,
            subscriptions=len(self._desired()),
            reconcile_runs=self.reconcile_runs,
            reconcile_failures=self.reconcile_failures,
            last_disconnect=self.last_disconnect,
        )

    async def wait_connected(self, min_generation: int = 1) -> int:
        """Wait until a socket of generation ``min_generation`` or later is live and return its generation;
        raises HubNotConnected once the hub is closed."""
        while True:
            conn = self.connection
            if conn is not None and conn.generation >= min_generation:
                return conn.generation
            if self.state is ConnectionState.CLOSED:
                raise HubNotConnected(f"{self.name} hub is closed")
            await self._state_changed.wait()

    async def wait_state(self, state: ConnectionState) -> None:
        """Wait until the machine is in ``state`` (tests, start-up sequencing)."""
        while self.state is not state:
            await self._state_changed.wait()

    def _on_transition(self, transition: Transition) -> None:
        log.info("%s hub: %s -> %s (%s)%s", self.name, transition.source, transition.target, transition.event,
                 f": {transition.cause}" if transition.cause else "")
        self._state_changed.set()
        self._state_changed = trio.Event()

    # --- calls ----------------------------------------------------------------------------------------------------
    async def invoke(self, target: str, *args: Any, deadline_s: float | None = None) -> Any:
        """Invoke on the live socket; raises HubNotConnected when there is none (no queuing across sockets)."""
        return await self._live().invoke(target, *args, deadline_s=deadline_s)

    async def send(self, target: str, *args: Any) -> None:
        await self._live().send(target, *args)

    def _live(self) -> HubConnection:
        conn = self.connection
        if conn is None:
            raise HubNotConnected(f"{self.name} hub is {self.state.value}")
        return conn

    # --- subscriptions --------------------------------------------------------------------------------------------
    def set_subscriptions(self, group: str, subscriptions: Iterable[Subscription]) -> None:
        """Replace the subscriptions of ``group``; a live socket subscribes / unsubscribes the difference."""
        subs = list(dict.fromkeys(subscriptions))
        if self._groups.get(group, []) == subs:
            return
        if subs:
            self._groups[group] = subs
        else:
            self._groups.pop(group, None)
        if group == CONTRACTS_GROUP:
            self._contracts_changed_at = trio.current_time()
        self._subs_version += 1
        self._subs_changed.set()
        self._subs_changed = trio.Event()

    def set_accounts(self, account_ids: Iterable[int]) -> None:
        """User hub: watch these accounts (SubscribeAccounts + orders, positions, trades of each)."""
        ids = list(account_ids)
        self.set_subscriptions(ACCOUNTS_GROUP, user_subscriptions(ids) if ids else [])

    def set_market_contracts(self, contract_ids: set[str]) -> None:
        """Market hub: the contracts the watched accounts hold or work (called by the mirror)."""
        self.set_subscriptions(CONTRACTS_GROUP, market_subscriptions(contract_ids, self._market_feeds))

    @property
    def market_contracts(self) -> set[str]:
        return {sub.args[0] for sub in self._groups.get(CONTRACTS_GROUP, [])}

    def subscriptions(self) -> list[Subscription]:
        return self._desired()

    def _desired(self) -> list[Subscription]:
        return list(dict.fromkeys(sub for subs in self._groups.values() for sub in subs))

    def resubscribe(self) -> None:
        """With ``autoResubscribe: false``: replay the subscriptions on the current socket now (e.g. from a hook)."""
        if self._manual_resubscribe is not None:
            self._manual_resubscribe.set()

    # --- shutdown -------------------------------------------------------------------------------------------------
    def close(self, reason: str = "closed by the engine") -> None:
        """Stop for good: the live socket is closed and :meth:`run` returns (no reconnect)."""
        self._close_reason = reason
        conn = self._conn
        if conn is not None:
            conn.end(Disconnect(reason, DisconnectKind.LOCAL, allow_reconnect=False))
        self._run_scope.cancel()

    # --- the driver -----------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and stay connected until :meth:`close` or cancellation (returns), or until the hub closes for
        good (raises :class:`HubClosed` / :class:`HubGaveUp`)."""
        if self._ran:
            raise RuntimeError(f"{self.name} hub manager already ran; a closed hub gets a new manager")
        self._ran = True
        failure: HubClosed | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_tokens)
                nursery.start_soon(self._pump_events)
                self.lifecycle.start()
                task_status.started()
                with self._run_scope:
                    failure = await self._connect_loop()
                nursery.cancel_scope.cancel()
        finally:
            self.lifecycle.close(self._close_reason or "shutdown")
        if failure is not None:
            raise failure

    async def _pump_events(self) -> None:
        try:
            await self._delivery.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            log.warning("%s hub: the event sink was closed; closing the hub", self.name)
            self.close("event sink closed")

    async def _connect_loop(self) -> HubClosed:
        while True:
            delay = self._backoff.delay(self.lifecycle.attempt)
            if self._logout_storm():
                delay = max(delay, self._backoff.max_delay_s)
                log.warning("%s hub: %d GatewayLogout events within %.0f s; waiting %.0f s before reconnecting (is "
                            "the account logged in elsewhere?)", self.name, len(self._logouts),
                            self._logout_window_s, delay)
            if delay > 0:
                log.info("%s hub: attempt %d in %.1f s", self.name, self.lifecycle.attempt, delay)
                await trio.sleep(delay)
            outcome = await self._attempt()
            if isinstance(outcome, str):
                self.last_failure = outcome
                log.warning("%s hub: attempt %d/%d failed: %s", self.name, self.lifecycle.attempt,
                            self.lifecycle.max_attempts, outcome)
                if not self.lifecycle.attempt_failed(outcome):
                    log.error("%s hub: giving up after %d attempts; last failure: %s", self.name,
                              self.lifecycle.max_attempts, outcome)
                    return HubGaveUp(self.name, f"{self.lifecycle.max_attempts} connect attempts failed; "
                                                f"last: {outcome}")
                continue
            self.last_disconnect = outcome.reason
            if not outcome.allow_reconnect:
                self.lifecycle.close(outcome.reason)
                log.error("%s hub closed by the server without reconnect: %s", self.name, outcome.reason)
                return HubClosed(self.name, outcome.reason)
            if outcome.kind is DisconnectKind.STALE:
                self.lifecycle.stale(outcome.reason)
            else:
                self.lifecycle.lost(outcome.reason)

    def _logout_storm(self) -> bool:
        now = trio.current_time()
        while self._logouts and self._logouts[0] < now - self._logout_window_s:
            self._logouts.popleft()
        return len(self._logouts) > self._logout_limit

    async def _attempt(self) -> Disconnect | str:
        """One connect attempt: a Disconnect once it had connected, else the reason it failed."""
        if self._relogin_needed:
            try:
                await self._tokens.invalidate_and_relogin()
            except Exception as exc:  # the token manager's errors name no secret
                return f"re-login failed: {type(exc).__name__}: {exc}"
            self._relogin_needed = False
            self.relogins += 1
        try:
            token = await self._tokens.current_token()
        except Exception as exc:
            return f"no token: {type(exc).__name__}: {exc}"
        if not token:
            return "the token provider returned an empty token"
        self._generation += 1
        generation = self._generation
        epoch = self._token_epoch
        ended: list[Disconnect] = []
        failure: str | None = None
        try:
            async with self._connector(hub_url(self.url, token), max_message_size=self._max_message_size,
                                       connect_timeout_s=self._timings.handshake_timeout_s) as ws:
                failure = await self._session(ws, token, generation, epoch, ended)
        except trio_websocket.ConnectionRejected as exc:
            if exc.status_code in (401, 403):
                self._relogin_needed = True
            return f"upgrade refused with HTTP {exc.status_code}"
        except _CONNECT_ERRORS as exc:
            if not ended and failure is None:
                return f"connect failed: {_describe(exc)}"
            # the session had already ended (connected or handshake failed): an error while closing changes nothing
            log.debug("%s hub: error while closing generation %d: %r", self.name, generation, exc)
        return failure if failure is not None else ended[0]

    async def _session(self, ws: WebSocketLike, token: str, generation: int, epoch: int,
                       ended: list[Disconnect]) -> str | None:
        conn = HubConnection(ws, name=self.name, generation=generation, timings=self._timings,
                             on_events=self._handler(generation), max_message_size=self._max_message_size,
                             read_typed=self._read_typed)
        try:
            await conn.handshake()
        except HandshakeFailed as exc:
            return str(exc)
        lost_at = self._lost_at
        self._conn = conn
        self._socket_token = token
        self._connected_at = trio.current_time()
        self._manual_resubscribe = trio.Event()
        try:
            was_reconnect = self.lifecycle.connected()
            async with trio.open_nursery() as scope:  # the per-connection scope: nothing in it outlives the socket
                scope.start_soon(conn.run)
                scope.start_soon(self._after_connect, conn, was_reconnect, lost_at)
                scope.start_soon(self._heartbeat, conn)
                scope.start_soon(self._watchdog, conn)
                if self._token_epoch != epoch:
                    scope.start_soon(self._check_token)
                await conn.wait_ended()
                scope.cancel_scope.cancel()
        finally:
            conn.end(Disconnect(self._close_reason or "shutdown", DisconnectKind.LOCAL, allow_reconnect=False))
            self._conn = None
            self._manual_resubscribe = None
            self._lost_at = trio.current_time()
            self._state_changed.set()
            self._state_changed = trio.Event()
        assert conn.disconnect is not None
        ended.append(conn.disconnect)
        return None

    def _handler(self, generation: int) -> Callable[[list[Invocation]], Awaitable[None]]:
        name, new_tuple = self.name, tuple.__new__  # HubEvent without its Python-level __new__ (hot path)

        async def handle(invocations: list[Invocation]) -> None:
            """The events of one frame: stamped once, handed to the delivery as one batch. A ``GatewayLogout`` ends
            the connection, so the batch ends at it: nothing after it in the frame is delivered (the reconnect's
            reconciliation covers it)."""
            now = trio.current_time()
            self._last_event_at = now
            events = []
            logout = False
            for invocation in invocations:
                events.append(new_tuple(HubEvent, (name, invocation.target, invocation.arguments, generation, now)))
                if invocation.target == LOGOUT_TARGET:
                    logout = True
                    break
            self.events_received += len(events)
            try:
                await self._delivery.deliver_many(tuple(events))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                log.warning("%s hub: the event sink was closed; closing the hub", self.name)
                self.close("event sink closed")
                return
            if logout:
                self._on_logout(generation)

        return handle

    def _on_logout(self, generation: int) -> None:
        self._relogin_needed = True
        self._logouts.append(trio.current_time())
        conn = self._conn
        if conn is not None and conn.generation == generation:
            conn.end(Disconnect("server sent GatewayLogout: re-login and reconnect", DisconnectKind.LOGOUT))

    # --- per-connection tasks -------------------------------------------------------------------------------------
    async def _after_connect(self, conn: HubConnection, was_reconnect: bool, lost_at: float | None) -> None:
        replayed = trio.Event()
        async with trio.open_nursery() as nursery:
            if not was_reconnect or self._auto_resubscribe:
                delay = self._resubscribe_delay_s if was_reconnect else 0.0
                nursery.start_soon(self._subscription_worker, conn, delay, replayed, None)
            else:
                replayed.set()
                nursery.start_soon(self._subscription_worker, conn, 0.0, None, self._manual_resubscribe)
            if self._on_reconnected is not None and (was_reconnect or self._reconcile_initial):
                await replayed.wait()
                context = ReconnectContext(
                    hub=self.name,
                    generation=conn.generation,
                    initial=not was_reconnect,
                    reconnects=self.lifecycle.reconnects,
                    downtime_s=None if lost_at is None or self._connected_at is None
                    else self._connected_at - lost_at,
                    is_current=lambda: self.connection is conn,
                )
                await self._reconcile(context)

    async def _reconcile(self, context: ReconnectContext) -> None:
        """Run the reconciler in a child nursery of the socket's scope: a new drop cancels it."""
        assert self._on_reconnected is not None
        self.reconcile_runs += 1
        log.info("%s hub: reconciling after %s (generation %d)", self.name,
                 "the first connect" if context.initial else "a reconnect", context.generation)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._on_reconnected, context)
        except* Exception as group:
            self.reconcile_failures += 1
            log.error("%s hub: reconciler failed (generation %d): %r", self.name, context.generation,
                      group.exceptions)

    async def _subscription_worker(self, conn: HubConnection, delay_s: float, replayed: trio.Event | None,
                                   start_signal: trio.Event | None) -> None:
        try:
            if start_signal is not None:
                await start_signal.wait()
            if delay_s > 0:
                await trio.sleep(delay_s)
            applied: dict[Subscription, None] = {}
            while True:
                version = self._subs_version
                desired = self._desired()
                wanted = set(desired)
                calls: list[tuple[str, tuple[Any, ...]]] = []
                for sub in [s for s in applied if s not in wanted]:
                    del applied[sub]
                    if sub.unsubscribe is not None:
                        calls.append((sub.unsubscribe, sub.args))
                added = [sub for sub in desired if sub not in applied]
                calls.extend((sub.subscribe, sub.args) for sub in added)
                if calls:
                    await self._call_all(conn, calls)
                for sub in added:
                    applied[sub] = None
                if replayed is not None:
                    replayed.set()
                if self._subs_version == version:
                    await self._subs_changed.wait()
        except HubConnectionLost:
            return

    async def _call_all(self, conn: HubConnection, calls: list[tuple[str, tuple[Any, ...]]]) -> None:
        """(Un)subscribe calls pipelined (all written, then all answers awaited: one round trip, not one per call).
        An error Completion is counted and logged per call; a call left unanswered ends the socket (the next one
        replays everything); a lost connection raises HubConnectionLost."""
        timeout: InvokeTimeout | None = None
        for outcome in await conn.invoke_many(calls):
            error = outcome.error
            if error is None:
                continue
            if isinstance(error, HubInvocationError):
                self.subscription_errors += 1
                log.warning("%s hub: %s", self.name, error)
            elif isinstance(error, InvokeTimeout):
                timeout = timeout or error
            else:
                raise error
        if timeout is not None:
            conn.end(Disconnect(f"subscription call got no answer: {timeout}", DisconnectKind.SUBSCRIPTION))
            raise HubConnectionLost(str(timeout))

    async def _heartbeat(self, conn: HubConnection) -> None:
        while True:
            await trio.sleep(self._ping_interval_s)
            started = trio.current_time()
            self.heartbeats_sent += 1
            try:
                await conn.invoke(self._heartbeat_target, deadline_s=self._ping_timeout_s)
            except HubInvocationError:
                pass  # an error Completion is an answer
            except InvokeTimeout:
                self.heartbeats_missed += 1
                log.warning("%s hub: heartbeat not answered within %.1f s", self.name, self._ping_timeout_s)
                continue
            except HubConnectionLost:
                return
            self.latency_s = trio.current_time() - started

    async def _watchdog(self, conn: HubConnection) -> None:
        stale = self._stale_threshold_s
        connected_at = trio.current_time()
        market_open_from = -math.inf
        """The latest market open seen from this socket: the feed's silence counts from then, not from the close."""
        while True:
            now = trio.current_time()
            due = conn.last_received_at + stale
            reason = None
            if now >= due:
                reason = f"stale: no message for {stale:g} s"
            elif self._feed_watchdog and self._groups.get(CONTRACTS_GROUP):
                opens_at = self._market_opens_at()
                if opens_at is not None:  # closed: silence is normal until staleThreshold after the next open
                    market_open_from = opens_at
                reference = max(self._last_event_at or 0.0, connected_at, self._contracts_changed_at,
                                market_open_from)
                feed_due = reference + stale
                if now >= feed_due:
                    reason = f"stale feed: no market event for {stale:g} s"
                due = min(due, feed_due)
            if reason is not None:
                self.stale_reconnects += 1
                conn.end(Disconnect(reason, DisconnectKind.STALE))
                return
            await trio.sleep(max(due - now, 0.0))

    def _market_opens_at(self) -> float | None:
        """The Trio time at which a closed market opens again; None while it is open (or its hours are unknown)."""
        hours = self._market_hours
        if hours is None:
            return None
        now = self._wall_clock.now()
        if hours.is_open(now):
            return None
        return self._wall_clock.trio_time_at(hours.next_open(now))

    # --- tokens ---------------------------------------------------------------------------------------------------
    async def _watch_tokens(self) -> None:
        async for _ in self._tokens.token_updates():
            self._token_epoch += 1
            await self._check_token()

    async def _check_token(self) -> None:
        conn = self.connection
        if conn is None:
            return
        try:
            token = await self._tokens.current_token()
        except Exception as exc:
            log.warning("%s hub: could not read the refreshed token: %s", self.name, type(exc).__name__)
            return
        if conn is self.connection and token != self._socket_token:
            self.planned_reconnects += 1
            conn.end(Disconnect("token refreshed: planned reconnect", DisconnectKind.PLANNED))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.HandshakeError) and exc.__cause__ is not None:
        return f"{type(exc).__name__} ({type(exc.__cause__).__name__}: {exc.__cause__})"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def hub_from_settings(settings: EngineSettings, hub: Literal["user", "market"], tokens: TokenProvider,
                      sink: trio.MemorySendChannel[HubEvents], **kwargs: Any) -> HubManager:
    """The user or market hub manager configured from ``api.userHubUrl`` / ``api.marketHubUrl`` and ``signalr.*``;
    ``kwargs`` go to :class:`HubManager` (``connector=``, ``on_reconnected=``, ``listeners=``...)."""
    kwargs.setdefault("signalr", settings.signalr)
    if hub == "user":
        return user_hub(settings.api.user_hub_url, tokens, sink, **kwargs)
    if hub == "market":
        return market_hub(settings.api.market_hub_url, tokens, sink, **kwargs)
    raise ValueError(f"hub must be 'user' or 'market', got {hub!r}")


def user_hub(url: str, tokens: TokenProvider, sink: trio.MemorySendChannel[HubEvents], **kwargs: Any) -> HubManager:
    """The user hub: every event in order, liveness from pings only; its account, order, position and trade events
    of the usual shape arrive read into records (:mod:`engine.protocol.user_events`; ``read_typed=None`` for dicts)."""
    kwargs.setdefault("read_typed", read_user_event)
    return HubManager("user", url, tokens, sink, **kwargs)


def market_hub(url: str, tokens: TokenProvider, sink: trio.MemorySendChannel[HubEvents], **kwargs: Any) -> HubManager:
    """The market hub: quotes coalesce per contract, and the feed has its own stale watchdog, while ``market_hours``
    says the market is open when given (e.g. ``engine.risk.calendar.CME_GLOBEX``, as the Engine passes; with
    ``wall_clock=`` to read "now" from the engine's clock), around the clock without."""
    kwargs.setdefault("coalesce", ("GatewayQuote",))
    kwargs.setdefault("feed_watchdog", True)
    return HubManager("market", url, tokens, sink, **kwargs)
