"""One SignalR hub connection over one websocket: handshake, invoke / send, keep-alive, server timeout.

What it does (SignalR JSON protocol, the official JS client's rules; ``docs/projectx-gateway.md`` section 9):

- :meth:`HubConnection.handshake` sends ``{"protocol":"json","version":1}`` and waits, with a deadline, for the
  server's answer; messages that follow the answer in the same frame are kept for the reader.
- :meth:`HubConnection.run` reads until the connection ends. It also sends a Ping when nothing was sent for
  ``keep_alive_s`` (15 s) and declares the connection dead when nothing at all was received for
  ``server_timeout_s`` (30 s). A Close with ``allowReconnect: true`` ends it as a reconnectable loss, a Close
  without it as final.
- :meth:`HubConnection.invoke` waits for its Completion under a per-call deadline (a cancel scope);
  :meth:`HubConnection.send` is fire-and-forget. Every write goes through one lock, so two frames are never written
  concurrently on one socket.
- when the connection ends, for whatever reason, every pending invoke fails at once with
  :class:`~engine.realtime.errors.HubConnectionLost`, and the object refuses further calls: a connection is one
  socket *generation* and never acts on its replacement.

Policy (reconnecting, re-login, subscriptions, health) lives in the manager; this module only speaks the protocol.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import trio
import trio_websocket

from engine.protocol.signalr import (
    PING_RECORD,
    Close,
    Completion,
    HandshakeResponse,
    HubMessage,
    Invocation,
    Ping,
    ProtocolError,
    StreamReader,
    TypedReader,
    encode,
    encode_handshake_request,
)
from engine.realtime.errors import (
    HandshakeFailed,
    HubConnectionLost,
    HubInvocationError,
    InvokeTimeout,
)
from engine.realtime.transport import DEFAULT_MAX_MESSAGE_SIZE, WebSocketLike

log = logging.getLogger(__name__)

_TRANSPORT_ERRORS = (trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass(frozen=True, slots=True)
class HubTimings:
    """Protocol-level timers of one connection (ASP.NET / JS client defaults)."""

    handshake_timeout_s: float = 15.0
    keep_alive_s: float = 15.0
    """Send a Ping when nothing was sent for this long."""
    server_timeout_s: float | None = 30.0
    """The connection is dead when nothing at all was received for this long; None disables."""
    invoke_timeout_s: float = 10.0
    """Default deadline of :meth:`HubConnection.invoke`."""

    def __post_init__(self) -> None:
        for name in ("handshake_timeout_s", "keep_alive_s", "invoke_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"HubTimings.{name} must be > 0, got {getattr(self, name)}")
        if self.server_timeout_s is not None and self.server_timeout_s <= 0:
            raise ValueError(f"HubTimings.server_timeout_s must be > 0 or None, got {self.server_timeout_s}")


class DisconnectKind(enum.StrEnum):
    TRANSPORT = "transport"
    """The socket closed or broke (code 1006 for a drop without a close frame)."""
    SERVER_CLOSE = "server_close"
    """The server sent a SignalR Close message."""
    SERVER_TIMEOUT = "server_timeout"
    """Nothing received for ``server_timeout_s``."""
    PROTOCOL = "protocol"
    """The server sent something that is not SignalR JSON."""
    STALE = "stale"
    """The manager's health watchdog saw too much silence."""
    PLANNED = "planned"
    """The manager reconnects on purpose (a refreshed token)."""
    LOGOUT = "logout"
    """The server announced ``GatewayLogout``."""
    SUBSCRIPTION = "subscription"
    """A subscription call got no answer in time."""
    LOCAL = "local"
    """Closed deliberately by this process."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Why a connection ended. ``allow_reconnect`` False means "do not come back" (server Close or local close)."""

    reason: str
    kind: DisconnectKind
    allow_reconnect: bool = True


EventsHandler = Callable[[list[Invocation]], Awaitable[None]]
"""Receives the server's events (Invocations) in arrival order, all those of one frame in one call."""


@dataclass(frozen=True, slots=True)
class InvokeOutcome:
    """One call of :meth:`HubConnection.invoke_many`: its ``result``, or the ``error`` :meth:`HubConnection.invoke`
    would have raised."""

    target: str
    result: Any = None
    error: BaseException | None = None


class _Pending:
    __slots__ = ("completion", "done", "failure")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.completion: Completion | None = None
        self.failure: BaseException | None = None


class HubConnection:
    """One hub socket (one generation). Create, :meth:`handshake`, then :meth:`run` in a task; see the module doc."""

    def __init__(
        self,
        ws: WebSocketLike,
        *,
        name: str = "hub",
        generation: int = 1,
        timings: HubTimings | None = None,
        on_events: EventsHandler | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        read_typed: TypedReader | None = None,
    ) -> None:
        self._ws = ws
        self.name = name
        self.generation = generation
        self.timings = timings or HubTimings()
        self._on_events = on_events
        self._reader = StreamReader("client", max_record_size=max_message_size, read_typed=read_typed)
        self._backlog: list[HubMessage] = []
        self._write_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._ended = trio.Event()
        self._handshake_done = False
        self.disconnect: Disconnect | None = None
        now = trio.current_time()
        self.created_at = now
        self.last_sent_at = now
        self.last_received_at = now
        self.messages_received = 0
        self.frames_sent = 0

    # --- state ----------------------------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def pending_invocations(self) -> int:
        return len(self._pending)

    async def wait_ended(self) -> Disconnect:
        await self._ended.wait()
        assert self.disconnect is not None
        return self.disconnect

    def end(self, disconnect: Disconnect) -> None:
        """End this connection (first reason wins): pending invokes fail now, :meth:`run` returns soon after."""
        if self._ended.is_set():
            return
        self.disconnect = disconnect
        self._ended.set()
        log.info("%s hub (gen %d) ended: %s", self.name, self.generation, disconnect.reason)
        for pending in self._pending.values():
            pending.failure = HubConnectionLost(f"{self.name} hub connection ended: {disconnect.reason}")
            pending.done.set()

    # --- handshake ------------------------------------------------------------------------------------------------
    async def handshake(self) -> None:
        """Send the handshake request and wait for the answer (``handshake_timeout_s``); raises HandshakeFailed."""
        if self._handshake_done:
            raise RuntimeError("handshake already done")
        timeout = self.timings.handshake_timeout_s
        with trio.move_on_after(timeout) as scope:
            try:
                await self._write(encode_handshake_request())
                while not self._handshake_done:
                    data = await self._ws.get_message()
                    self._note_received()
                    for item in self._reader.feed(data):
                        if isinstance(item, HandshakeResponse):
                            if item.error is not None:
                                raise HandshakeFailed(f"{self.name} hub refused the handshake: {item.error}")
                            self._handshake_done = True
                        else:
                            self._backlog.append(cast(HubMessage, item))
            except ProtocolError as exc:
                raise HandshakeFailed(f"{self.name} hub sent an invalid handshake answer: {exc}") from None
            except (*_TRANSPORT_ERRORS, HubConnectionLost) as exc:
                raise HandshakeFailed(f"{self.name} hub socket closed during the handshake ({_describe(exc)})") \
                    from None
        if scope.cancelled_caught:
            raise HandshakeFailed(f"{self.name} hub: no handshake answer within {timeout:g} s")

    # --- calls ----------------------------------------------------------------------------------------------------
    async def invoke(self, target: str, *args: Any, deadline_s: float | None = None) -> Any:
        """Call hub method ``target`` and return its result; raises HubInvocationError (error Completion),
        InvokeTimeout (no Completion within ``deadline_s``, default ``invoke_timeout_s``) or HubConnectionLost."""
        self._check_usable()
        if deadline_s is None:
            deadline_s = self.timings.invoke_timeout_s
        invocation_id = str(next(self._ids))
        pending = _Pending()
        self._pending[invocation_id] = pending
        try:
            with trio.move_on_after(deadline_s) as scope:
                await self._write(encode(Invocation(target, args, invocation_id)))
                await pending.done.wait()
        finally:
            del self._pending[invocation_id]
        if pending.failure is not None:
            raise pending.failure
        if scope.cancelled_caught or pending.completion is None:
            raise InvokeTimeout(target, deadline_s)
        completion = pending.completion
        if completion.error is not None:
            raise HubInvocationError(target, completion.error)
        return completion.result

    async def invoke_many(self, calls: Sequence[tuple[str, tuple[Any, ...]]], *,
                          deadline_s: float | None = None) -> list[InvokeOutcome]:
        """Pipelined invokes: every invocation is written, in order, before any Completion is awaited; then all are
        awaited together under one deadline (``deadline_s``, default ``invoke_timeout_s``, from the first write).

        Why: replaying 31 subscriptions one round trip at a time cost ~55 ms after every reconnect; written
        back to back, they cost about one round trip. Each call still gets its own outcome, in ``calls`` order:
        its result, or the error :meth:`invoke` would have raised for it (HubInvocationError, InvokeTimeout,
        HubConnectionLost). A failed write raises HubConnectionLost at once (the connection has ended)."""
        self._check_usable()
        if deadline_s is None:
            deadline_s = self.timings.invoke_timeout_s
        sent: list[tuple[str, str, _Pending]] = []
        try:
            with trio.move_on_after(deadline_s):
                for target, args in calls:
                    invocation_id = str(next(self._ids))
                    pending = _Pending()
                    self._pending[invocation_id] = pending
                    sent.append((invocation_id, target, pending))
                    await self._write(encode(Invocation(target, args, invocation_id)))
                for _, _, pending in sent:
                    await pending.done.wait()
        finally:
            for invocation_id, _, _ in sent:
                del self._pending[invocation_id]
        outcomes: list[InvokeOutcome] = []
        for _, target, pending in sent:
            completion = pending.completion
            if pending.failure is not None:
                outcomes.append(InvokeOutcome(target, error=pending.failure))
            elif completion is None:
                outcomes.append(InvokeOutcome(target, error=InvokeTimeout(target, deadline_s)))
            elif completion.error is not None:
                outcomes.append(InvokeOutcome(target, error=HubInvocationError(target, completion.error)))
            else:
                outcomes.append(InvokeOutcome(target, result=completion.result))
        if len(outcomes) < len(calls):  # the deadline passed before every invocation was written
            outcomes.extend(InvokeOutcome(target, error=InvokeTimeout(target, deadline_s))
                            for target, _ in calls[len(outcomes):])
        return outcomes

    async def send(self, target: str, *args: Any) -> None:
        """Fire-and-forget invocation (no invocation id, the server does not answer)."""
        self._check_usable()
        await self._write(encode(Invocation(target, args)))

    def _check_usable(self) -> None:
        if self._ended.is_set():
            assert self.disconnect is not None
            raise HubConnectionLost(f"{self.name} hub connection (gen {self.generation}) has ended: "
                                    f"{self.disconnect.reason}")
        if not self._handshake_done:
            raise HubConnectionLost(f"{self.name} hub connection is not open yet (handshake pending)")

    async def _write(self, text: str) -> None:
        async with self._write_lock:
            if self._ended.is_set():
                raise HubConnectionLost(f"{self.name} hub connection (gen {self.generation}) has ended")
            try:
                await self._ws.send_message(text)
            except _TRANSPORT_ERRORS as exc:
                self.end(Disconnect(f"send failed: {_describe(exc)}", DisconnectKind.TRANSPORT))
                raise HubConnectionLost(f"{self.name} hub send failed: {_describe(exc)}") from None
            self.last_sent_at = trio.current_time()
            self.frames_sent += 1

    # --- the running connection -----------------------------------------------------------------------------------
    async def run(self) -> Disconnect:
        """Read, keep alive and watch for server silence until the connection ends; returns why it ended."""
        if not self._handshake_done:
            raise RuntimeError("run() before a successful handshake()")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_loop)
            nursery.start_soon(self._keep_alive)
            if self.timings.server_timeout_s is not None:
                nursery.start_soon(self._server_timeout, self.timings.server_timeout_s)
            await self._ended.wait()
            nursery.cancel_scope.cancel()
        assert self.disconnect is not None
        return self.disconnect

    async def _read_loop(self) -> None:
        backlog, self._backlog = self._backlog, []
        for message in backlog:
            await self._dispatch(message)
        while not self._ended.is_set():
            try:
                data = await self._ws.get_message()
            except _TRANSPORT_ERRORS as exc:
                self.end(Disconnect(f"socket closed ({_describe(exc)})", DisconnectKind.TRANSPORT))
                return
            self._note_received()
            try:
                messages = self._reader.feed(data)
            except ProtocolError as exc:
                self.end(Disconnect(f"protocol error: {exc}", DisconnectKind.PROTOCOL))
                return
            # The hot path: the server's events go to the handler a frame at a time (a hub pushes up to a few
            # hundred per frame; one call per event cost a coroutine and a dispatch each). Any other message is
            # dispatched where it stands, after the events before it and before those after it.
            events: list[Invocation] = []
            for item in messages:
                if type(item) is Invocation:
                    events.append(item)
                    continue
                if events:
                    await self._deliver(events)
                    events = []
                    if self._ended.is_set():
                        return
                await self._dispatch(cast(HubMessage, item))
                if self._ended.is_set():
                    return
            if events:
                await self._deliver(events)

    async def _deliver(self, events: list[Invocation]) -> None:
        if self._on_events is not None:
            await self._on_events(events)

    def _note_received(self) -> None:
        self.last_received_at = trio.current_time()
        self.messages_received += 1

    async def _dispatch(self, message: HubMessage) -> None:
        match message:
            case Completion():
                pending = self._pending.get(message.invocation_id)
                if pending is None:
                    log.debug("%s hub: completion for unknown invocation %s", self.name, message.invocation_id)
                else:
                    pending.completion = message
                    pending.done.set()
            case Invocation():
                await self._deliver([message])
            case Ping():
                pass
            case Close():
                allow = bool(message.allow_reconnect)
                reason = f"server sent Close ({message.error or 'no error'}; allowReconnect={allow})"
                self.end(Disconnect(reason, DisconnectKind.SERVER_CLOSE, allow_reconnect=allow))
            case _:
                log.debug("%s hub: ignoring %s", self.name, type(message).__name__)

    async def _keep_alive(self) -> None:
        interval = self.timings.keep_alive_s
        while True:
            await _sleep_until_quiet(lambda: self.last_sent_at, interval)
            try:
                await self._write(PING_RECORD)
            except HubConnectionLost:
                return

    async def _server_timeout(self, limit_s: float) -> None:
        await _sleep_until_quiet(lambda: self.last_received_at, limit_s)
        self.end(Disconnect(f"no message received for {limit_s:g} s (server timeout)", DisconnectKind.SERVER_TIMEOUT))


async def _sleep_until_quiet(last: Callable[[], float], span_s: float) -> None:
    """Return once ``span_s`` has passed on the Trio clock since ``last()``, which traffic keeps moving on: the
    deadline is read again after every sleep instead of being rescheduled on each message."""
    while True:
        remaining = last() + span_s - trio.current_time()
        if remaining <= 0:
            return
        await trio.sleep(remaining)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio_websocket.ConnectionClosed):
        reason = exc.reason
        if reason is None:
            return "connection closed"
        text = f"code {reason.code}"
        if reason.reason:
            text += f", {reason.reason}"
        return text
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")
