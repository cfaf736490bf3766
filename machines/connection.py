"""Hub connection lifecycle: connect, lose, reconnect with a bounded number of attempts, close.

What it models: one SignalR hub connection (user or market hub) as the seed's handlers see it
(``onconnected``, ``onreconnecting``, ``onreconnected``, ``onclose``; see :class:`Hook`):

- ``disconnected`` -> ``connecting`` on :meth:`ConnectionLifecycle.start` (attempt 1).
- ``connecting`` -> ``connected``: the first connect (``onconnected``).
- ``connected`` -> ``reconnecting``: the socket dropped, or the health monitor saw no message for
  ``staleThreshold`` (a stale connection *is* a lost connection) (``onreconnecting``; attempt 1).
- ``reconnecting`` -> ``connected``: a reconnect (``onreconnected``). :meth:`ConnectionLifecycle.connected`
  returns ``True`` for exactly this transition: it is the driver's cue to spawn the reconciler, because events
  may have been missed while the socket was down.
- a failed attempt (while connecting or reconnecting) counts up to ``max_attempts``; the failure of the last one
  gives up: -> ``closed`` (``onclose``). The attempt counter resets on every successful connect.
- ``closed`` is final: a closed lifecycle is never reused (a new connection gets a new machine).

Why a machine: "first connect vs reconnect" and "give up after N attempts" are exactly the decisions that
hand-written reconnect loops get wrong (the seed's GAP-API-003/004); here they are explicit and drawn.

The driver owns the socket, the backoff delays and the heartbeat timers; it calls::

    conn = ConnectionLifecycle(max_attempts=10)
    conn.start()
    while True:
        await trio.sleep(delays[conn.attempt - 1])   # backoff chosen by the driver from conn.attempt
        try:
            ws = await open_socket()
        except OSError as exc:
            if not conn.attempt_failed(str(exc)):
                break                                 # gave up: conn.state is CLOSED
            continue
        if conn.connected():
            nursery.start_soon(reconcile)            # only after a reconnect
        ...  # on drop: conn.lost("socket closed 1006"); on heartbeat timeout: conn.stale()
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from statemachine import State, StateMachine

from machines.observe import Lifecycle, Transition, TransitionListener


class ConnectionState(StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class Hook(StrEnum):
    """The seed's connection handler names, one per kind of transition."""

    ONCONNECTED = "onconnected"
    ONRECONNECTING = "onreconnecting"
    ONRECONNECTED = "onreconnected"
    ONCLOSE = "onclose"


class ConnectionChart(StateMachine):
    """Hub connection: first connect, lost (or stale) connection, bounded reconnect attempts, close."""

    disconnected = State("Disconnected", initial=True)
    connecting = State("Connecting")
    connected = State("Connected")
    reconnecting = State("Reconnecting")
    closed = State("Closed", final=True)

    start = disconnected.to(connecting)
    connect_succeeded = connecting.to(connected)
    reconnect_succeeded = reconnecting.to(connected)
    connection_lost = connected.to(reconnecting)
    heartbeat_missed = connected.to(reconnecting)
    attempt_failed = (
        connecting.to(closed, cond="attempts_exhausted")
        | connecting.to.itself(unless="attempts_exhausted")
        | reconnecting.to(closed, cond="attempts_exhausted")
        | reconnecting.to.itself(unless="attempts_exhausted")
    )
    give_up = connecting.to(closed) | reconnecting.to(closed)
    close = disconnected.to(closed) | connecting.to(closed) | connected.to(closed) | reconnecting.to(closed)

    def attempts_exhausted(self, attempt: int = 0, max_attempts: int = 1) -> bool:
        return attempt >= max_attempts


_HOOKS: dict[tuple[str, str], Hook] = {
    (ConnectionState.CONNECTING, ConnectionState.CONNECTED): Hook.ONCONNECTED,
    (ConnectionState.CONNECTED, ConnectionState.RECONNECTING): Hook.ONRECONNECTING,
    (ConnectionState.RECONNECTING, ConnectionState.CONNECTED): Hook.ONRECONNECTED,
}


def hook_of(transition: Transition) -> Hook | None:
    """The seed handler a connection transition corresponds to (``None`` for a counted failed attempt)."""
    if transition.target == ConnectionState.CLOSED:
        return Hook.ONCLOSE
    return _HOOKS.get((transition.source, transition.target))


class ConnectionLifecycle(Lifecycle):
    """Typed driver-facing API of :class:`ConnectionChart`; see the module docstring."""

    def __init__(
        self,
        max_attempts: int,
        *,
        name: str = "connection",
        listeners: Iterable[TransitionListener] = (),
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        super().__init__(ConnectionChart(), name, listeners)
        self.max_attempts = max_attempts
        self._attempt = 0
        self._reconnects = 0

    @property
    def state(self) -> ConnectionState:
        return ConnectionState(self._state_id)

    @property
    def attempt(self) -> int:
        """The (re)connect attempt in progress, 1-based; 0 while connected, disconnected or closed."""
        return self._attempt

    @property
    def reconnects(self) -> int:
        """How many times this connection came back after a loss."""
        return self._reconnects

    def start(self) -> None:
        """Begin the first connect (attempt 1)."""
        self._fire("start", update=self._first_attempt)

    def connected(self) -> bool:
        """The handshake succeeded. Returns ``True`` when this was a reconnect (spawn the reconciler)."""
        was_reconnect = self.state is ConnectionState.RECONNECTING

        def update() -> None:
            self._attempt = 0
            if was_reconnect:
                self._reconnects += 1

        self._fire("reconnect_succeeded" if was_reconnect else "connect_succeeded", update=update)
        return was_reconnect

    def lost(self, reason: str) -> None:
        """The live connection dropped; reconnecting starts with attempt 1."""
        self._fire("connection_lost", cause=reason, update=self._first_attempt)

    def stale(self, reason: str = "heartbeat missed") -> None:
        """The health monitor declared the connection stale: treated exactly as a lost connection."""
        self._fire("heartbeat_missed", cause=reason, update=self._first_attempt)

    def attempt_failed(self, reason: str | None = None) -> bool:
        """The current attempt failed. Returns ``True`` if another attempt follows, ``False`` if it gave up."""

        def update() -> None:
            self._attempt = 0 if self.state is ConnectionState.CLOSED else self._attempt + 1

        self._fire("attempt_failed", cause=reason, update=update, attempt=self._attempt, max_attempts=self.max_attempts)
        return self.state is not ConnectionState.CLOSED

    def give_up(self, reason: str) -> None:
        """Stop trying now (e.g. the token failed permanently) -> closed."""
        self._fire("give_up", cause=reason, update=self._no_attempt)

    def close(self, reason: str | None = None) -> None:
        """Deliberate shutdown -> closed. Idempotent."""
        if self.state is not ConnectionState.CLOSED:
            self._fire("close", cause=reason, update=self._no_attempt)

    def _first_attempt(self) -> None:
        self._attempt = 1

    def _no_attempt(self) -> None:
        self._attempt = 0
