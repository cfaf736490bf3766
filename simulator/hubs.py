"""The simulator's two SignalR hubs (``/hubs/user``, ``/hubs/market``) as one ASGI app.

Why this shape: the trading model publishes every change on the :class:`~simulator.bus.EventBus` already shaped as
it goes on the wire, so a hub connection is only a filter (what did *this* connection subscribe to?) and a writer,
plus the SignalR connection rules the engine's client must survive exactly as against the real Gateway:

- the upgrade is refused (HTTP 401, before ``websocket.accept``) for a missing, bad or expired token, given as the
  ``access_token`` query parameter or an ``Authorization: Bearer`` header; during an ``outage`` fault it is refused
  with 503;
- ``POST {hub}/negotiate`` (versions 0 and 1) for clients that negotiate, and direct connections
  (``skipNegotiation``, as the official ProjectX sample does);
- the handshake must arrive within 15 s; a Ping goes out when nothing was sent for 15 s; the connection is closed
  when nothing was received for 30 s (ASP.NET defaults);
- every Invocation with an id gets a Completion (an unknown method gets an error); subscriptions live on the
  connection only, so nothing survives a reconnect; the connection joins the bus on accept, before any invocation
  (even one pipelined in the handshake's frame) is answered, so an event published right after a Completion is
  delivered; what was queued before the handshake completed is dropped (the client was not connected yet);
- hub faults from :class:`~simulator.faults.FaultInjector`: ``ws_drop`` (socket dropped without a close frame),
  ``ws_close`` (SignalR Close with ``allowReconnect``), ``stop_pings`` (the connection goes silent: nothing at all is
  written while active, like a half-open socket), ``drop_events``, ``duplicate_events``, and ``outage``; ``ws_drop``
  and ``ws_close`` may carry ``params={"hub": "user"|"market"}`` to aim at one hub;
- a slow consumer (bus buffer overflow) is closed; garbage frames end that connection with a protocol Close; an
  exception in one connection is logged and never reaches the server.

Dropping a socket "without a close frame" needs the transport: the server (``simulator.server``) offers it to the
app as the ASGI scope extension ``simulator.abort`` (``{"abort": async () -> None}``); without it the hub falls back
to a close with code 1011 and no SignalR Close.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import orjson
import trio

from engine.protocol.signalr import (
    PING_RECORD,
    CancelInvocation,
    Close,
    Completion,
    HandshakeRequest,
    HandshakeResponse,
    Invocation,
    Ping,
    ProtocolError,
    StreamInvocation,
    StreamReader,
    encode,
    encode_handshake_response,
)
from simulator.bus import Hub, HubEvent, SubscriberOverflow
from simulator.faults import (
    DROP_EVENTS,
    DUPLICATE_EVENTS,
    OUTAGE,
    STOP_PINGS,
    WS_CLOSE,
    WS_DROP,
)
from simulator.gateway import SimulatedGateway

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ABORT_EXTENSION: Final = "simulator.abort"
"""ASGI scope extension offered by the simulator's transports: ``{"abort": async () -> None}`` drops the socket."""

CLOSE_WITH_ERROR: Final = "Connection closed with an error."
HUB_PATHS: Final[dict[str, Hub]] = {"/hubs/user": "user", "/hubs/market": "market"}


@dataclass(frozen=True, slots=True)
class HubOptions:
    keep_alive_s: float = 15.0
    """Send a Ping when nothing was sent for this long (ASP.NET ``KeepAliveInterval``)."""
    handshake_timeout_s: float = 15.0
    client_timeout_s: float | None = 30.0
    """Close when nothing was received for this long (ASP.NET ``ClientTimeoutInterval``); None disables."""
    fault_poll_s: float = 1.0
    """How often an idle connection checks for an armed ``ws_drop`` / ``ws_close`` (Trio clock)."""
    bus_buffer: int = 10_000
    """Events a connection may fall behind before it is closed as a slow consumer."""
    max_record_size: int = 16 * 1024 * 1024
    max_batch: int = 256
    """Most events coalesced into one text frame when they are already queued."""
    close_timeout_s: float = 5.0
    """How long a close may wait for a peer that does not read before its socket is dropped."""


@dataclass(slots=True)
class Subscriptions:
    """What one connection asked for. A fresh instance per connection: nothing survives a reconnect."""

    accounts: bool = False
    orders: set[int] = field(default_factory=set)
    positions: set[int] = field(default_factory=set)
    trades: set[int] = field(default_factory=set)
    quotes: set[str] = field(default_factory=set)
    market_trades: set[str] = field(default_factory=set)
    depth: set[str] = field(default_factory=set)

    def wants(self, event: HubEvent) -> bool:
        match event.target:
            case "GatewayUserAccount":
                return self.accounts
            case "GatewayUserOrder":
                return event.account_id in self.orders
            case "GatewayUserPosition":
                return event.account_id in self.positions
            case "GatewayUserTrade":
                return event.account_id in self.trades
            case "GatewayQuote":
                return event.contract_id in self.quotes
            case "GatewayTrade":
                return event.contract_id in self.market_trades
            case "GatewayDepth":
                return event.contract_id in self.depth
        return True  # session-wide events (e.g. GatewayLogout) reach everyone on the hub


class _InvalidArguments(Exception):
    pass


def _account_id(target: str, args: tuple[Any, ...]) -> int:
    if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        raise _InvalidArguments(f"'{target}' expects one integer argument (accountId), got {len(args)} argument(s)")
    return args[0]


def _contract_id(target: str, args: tuple[Any, ...]) -> str:
    if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
        raise _InvalidArguments(f"'{target}' expects one string argument (contractId), got {len(args)} argument(s)")
    return args[0]


def _no_args(target: str, args: tuple[Any, ...]) -> None:
    if args:
        raise _InvalidArguments(f"'{target}' expects no arguments, got {len(args)}")


def _toggle(collection: set[Any], key: Any, on: bool) -> None:
    if on:
        collection.add(key)
    else:
        collection.discard(key)


def _subscription(name: str) -> tuple[bool, str] | None:
    """``SubscribeOrders`` -> ``(True, "orders")``, ``UnsubscribeOrders`` -> ``(False, "orders")`` (any case);
    None when ``name`` is neither kind of method."""
    lowered = name.lower()
    if not lowered.startswith(("subscribe", "unsubscribe")):
        return None
    return lowered.startswith("subscribe"), lowered.removeprefix("subscribe").removeprefix("unsubscribe")


def _user_method(subs: Subscriptions, name: str, args: tuple[Any, ...]) -> bool:
    """Apply a user-hub method; False when the name is not one."""
    parsed = _subscription(name)
    if parsed is None:
        return False
    on, kind = parsed
    if kind == "accounts":
        _no_args(name, args)
        subs.accounts = on
        return True
    sets = {"orders": subs.orders, "positions": subs.positions, "trades": subs.trades}
    if kind not in sets:
        return False
    _toggle(sets[kind], _account_id(name, args), on)
    return True


def _market_method(subs: Subscriptions, name: str, args: tuple[Any, ...]) -> bool:
    """Apply a market-hub method; False when the name is not one."""
    parsed = _subscription(name)
    if parsed is None:
        return False
    on, kind = parsed
    sets = {"contractquotes": subs.quotes, "contracttrades": subs.market_trades, "contractmarketdepth": subs.depth}
    if kind not in sets:
        return False
    _toggle(sets[kind], _contract_id(name, args), on)
    return True


_METHODS: Final = {"user": _user_method, "market": _market_method}


def _query(scope: Scope) -> dict[str, list[str]]:
    raw = scope.get("query_string", b"")
    text = raw.decode("latin-1") if isinstance(raw, bytes | bytearray) else str(raw)
    return parse_qs(text, keep_blank_values=True)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _token(scope: Scope) -> str | None:
    """``access_token`` query parameter first (the documented way), then ``Authorization: Bearer``."""
    values = _query(scope).get("access_token")
    if values and values[0]:
        return values[0]
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return None


class HubServer:
    """ASGI app for both hubs: websocket scopes on ``/hubs/{user,market}`` and ``POST /hubs/*/negotiate``."""

    def __init__(self, gateway: SimulatedGateway, options: HubOptions | None = None) -> None:
        self.gateway = gateway
        self.options = options or HubOptions()
        self._ids = itertools.count(1)
        self._negotiated: dict[str, Hub] = {}
        self.connections: dict[str, HubConnection] = {}
        """Open connections by id (for tests and ``/_sim`` introspection)."""
        self.stats: dict[str, int] = {"accepted": 0, "refused": 0, "protocol_errors": 0, "handler_errors": 0,
                                      "slow_consumers": 0}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            raise ValueError(f"HubServer cannot serve ASGI scope type {scope['type']!r}")

    # --- negotiate ------------------------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        hub_path = path.removesuffix("/negotiate")
        hub = HUB_PATHS.get(hub_path.rstrip("/"))
        if hub is None or not path.endswith("/negotiate"):
            await _http_answer(send, 404, {"error": f"no hub endpoint at {path}"})
            return
        if scope.get("method") != "POST":
            await _http_answer(send, 405, {"error": "negotiate expects POST"})
            return
        if self.gateway.faults.active(OUTAGE) is not None:
            self.gateway.faults.note(OUTAGE, hub=hub, what="negotiate refused")
            await _http_answer(send, 503, {"error": "service unavailable (simulated outage)"})
            return
        token = _token(scope)
        if token is None or not self.gateway.tokens.verify(token):
            await _http_answer(send, 401, {"error": "Unauthorized"})
            return
        version_values = _query(scope).get("negotiateVersion", ["0"])
        try:
            version = int(version_values[0])
        except ValueError:
            await _http_answer(send, 400, {"error": "negotiateVersion must be an integer"})
            return
        connection_id = secrets.token_urlsafe(16)
        transports = [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
        body: dict[str, Any] = {"connectionId": connection_id, "availableTransports": transports}
        if version >= 1:
            connection_token = secrets.token_urlsafe(16)
            body["connectionToken"] = connection_token
            body["negotiateVersion"] = 1
            self._remember(connection_token, hub)
        else:
            body["negotiateVersion"] = 0
            self._remember(connection_id, hub)
        await _http_answer(send, 200, body)

    def _remember(self, key: str, hub: Hub) -> None:
        self._negotiated[key] = hub
        while len(self._negotiated) > 1000:  # clients that negotiate and never connect
            del self._negotiated[next(iter(self._negotiated))]

    # --- websocket ------------------------------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect.get("type") != "websocket.connect":
            return
        path = str(scope.get("path", "")).rstrip("/")
        hub = HUB_PATHS.get(path)
        if hub is None:
            await self._refuse(scope, send, 404, f"no hub at {path}")
            return
        faults = self.gateway.faults
        if faults.active(OUTAGE) is not None:
            faults.note(OUTAGE, hub=hub, what="upgrade refused")
            await self._refuse(scope, send, 503, "service unavailable (simulated outage)")
            return
        token = _token(scope)
        if token is None:
            await self._refuse(scope, send, 401, "missing access_token")
            return
        if not self.gateway.tokens.verify(token):
            await self._refuse(scope, send, 401, "invalid or expired access_token")
            return
        ids = _query(scope).get("id")
        if ids is not None and self._negotiated.pop(ids[0], None) != hub:
            await self._refuse(scope, send, 404, "No Connection with that ID")
            return
        await send({"type": "websocket.accept"})
        self.stats["accepted"] += 1
        connection = HubConnection(self, hub, f"{hub}-{next(self._ids)}", scope, receive, send)
        self.connections[connection.id] = connection
        try:
            await connection.run()
        except Exception:
            self.stats["handler_errors"] += 1
            log.exception("hub connection %s failed; closing it", connection.id)
            await connection.close_quietly(Close(CLOSE_WITH_ERROR, allow_reconnect=True), 1011)
        finally:
            del self.connections[connection.id]

    async def _refuse(self, scope: Scope, send: Send, status: int, reason: str) -> None:
        self.stats["refused"] += 1
        log.info("hub upgrade refused (%d): %s", status, reason)
        if "websocket.http.response" in scope.get("extensions", {}):
            body = orjson.dumps({"error": reason})
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


async def _http_answer(send: Send, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class _ConnectionOver(Exception):
    """Internal: unwinds a connection's tasks once it has been closed."""


class HubConnection:
    """One accepted websocket: handshake, then reader, event pump, keep-alive, watchdog and fault poller."""

    def __init__(self, server: HubServer, hub: Hub, connection_id: str, scope: Scope, receive: Receive,
                 send: Send) -> None:
        self.server = server
        self.hub: Hub = hub
        self.id = connection_id
        self.subscriptions = Subscriptions()
        self._scope = scope
        self._receive = receive
        self._send = send
        self._options = server.options
        self._faults = server.gateway.faults
        self._reader = StreamReader("server", server.options.max_record_size)
        self._write_lock = trio.Lock()
        self._closed = False
        self._stale_noted = False
        now = trio.current_time()
        self._last_sent = now
        self._last_received = now
        self._over = trio.Event()
        self.events_sent = 0

    # --- lifecycle ------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        # The connection joins the bus before the handshake is read: invocations pipelined in the handshake's own
        # frame are answered before the reader task starts, and a client may act on their Completions at once, so
        # an event published right after one must already find this connection subscribed.
        bus = self.server.gateway.bus
        with bus.subscribe(self.hub, self._options.bus_buffer) as subscriber:
            pipelined = await self._handshake()
            if pipelined is None:
                return
            if _discard_backlog(subscriber):
                await self._serve(subscriber, pipelined)
                return
        # The bus cut the subscriber off while the handshake was pending; nothing it held was for this connection
        # (not connected yet), so it is no slow consumer: start over with a fresh buffer. No checkpoint since the old
        # subscriber left the bus, so no event falls in between.
        with bus.subscribe(self.hub, self._options.bus_buffer) as subscriber:
            await self._serve(subscriber, pipelined)

    async def _serve(self, subscriber: Any, pipelined: list[Any]) -> None:
        """Answer the handshake and the records that came in its frame, then run the connection's tasks."""
        await self._write(encode_handshake_response())
        log.debug("hub %s: handshake done", self.id)
        for message in pipelined:
            await self._handle(message)
        if self._closed:
            return
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._read_loop)
            nursery.start_soon(self._pump, subscriber)
            nursery.start_soon(self._keep_alive)
            nursery.start_soon(self._watch_faults)
            if self._options.client_timeout_s is not None:
                nursery.start_soon(self._client_timeout, self._options.client_timeout_s)
            await self._over.wait()
            nursery.cancel_scope.cancel()

    def _finish(self) -> None:
        self._over.set()

    async def _handshake(self) -> list[Any] | None:
        """Wait for a valid handshake request: the records that followed it in its frame, or None when the
        connection is over (bad or missing handshake, client gone). The response is left to the caller."""
        with trio.move_on_after(self._options.handshake_timeout_s):
            while True:
                message = await self._receive()
                if message["type"] == "websocket.disconnect":
                    return None
                data = _frame_data(message)
                if data is None:
                    continue
                try:
                    records = self._reader.feed(data)
                except ProtocolError as exc:
                    await self._bad_handshake(f"invalid handshake: {exc}")
                    return None
                if not records:
                    continue
                request = records[0]
                assert isinstance(request, HandshakeRequest)
                if request.protocol != "json":
                    await self._bad_handshake(f"The protocol '{request.protocol}' is not supported.")
                    return None
                if request.version != 1:
                    await self._bad_handshake(
                        f"The server does not support version {request.version} of the 'json' protocol.")
                    return None
                self._last_received = trio.current_time()
                return records[1:]
        log.info("hub %s: no handshake within %.0f s; closing", self.id, self._options.handshake_timeout_s)
        await self.close_quietly(None, 1000)
        return None

    async def _bad_handshake(self, error: str) -> None:
        self.server.stats["protocol_errors"] += 1
        log.warning("hub %s: %s", self.id, error)
        await self._write(encode_handshake_response(HandshakeResponse(error)))
        await self.close_quietly(None, 1002)

    async def close_quietly(self, close: Close | None, code: int = 1000) -> None:
        """Send ``close`` (if any), then the websocket close frame; never raises. A peer that does not read (its
        socket buffer full, e.g. a slow consumer) gets ``close_timeout_s``, then its socket is dropped."""
        if self._closed:
            return
        with trio.move_on_after(self._options.close_timeout_s) as scope:
            try:
                if close is not None:
                    await self._write(encode(close))
                self._closed = True
                await self._send({"type": "websocket.close", "code": code})
            except Exception:  # the peer may already be gone
                log.debug("hub %s: error while closing", self.id, exc_info=True)
        if scope.cancelled_caught:
            log.info("hub %s: peer did not take the close within %.0f s; dropping it", self.id,
                     self._options.close_timeout_s)
            await self.drop()
        self._closed = True
        self._finish()

    async def drop(self) -> None:
        """Drop the socket without any close frame (the ``ws_drop`` fault)."""
        self._closed = True
        abort = self._scope.get("extensions", {}).get(ABORT_EXTENSION, {}).get("abort")
        with trio.move_on_after(self._options.close_timeout_s):
            try:
                if abort is not None:
                    await abort()
                else:
                    await self._send({"type": "websocket.close", "code": 1011})
            except Exception:
                log.debug("hub %s: error while dropping", self.id, exc_info=True)
        self._finish()

    # --- writing --------------------------------------------------------------------------------------------------
    def _stale(self) -> bool:
        if self._faults.active(STOP_PINGS) is None:
            self._stale_noted = False
            return False
        if not self._stale_noted:
            self._stale_noted = True
            self._faults.note(STOP_PINGS, hub=self.hub, connection=self.id)
        return True

    async def _write(self, text: str) -> None:
        if self._closed:
            return
        if self._stale():
            return  # a silent, half-open connection: nothing reaches the client
        async with self._write_lock:
            await self._send({"type": "websocket.send", "text": text})
            self._last_sent = trio.current_time()

    # --- tasks ----------------------------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                log.debug("hub %s: client disconnected (code %s)", self.id, message.get("code"))
                self._closed = True
                self._finish()
                return
            data = _frame_data(message)
            if data is None:
                continue
            self._last_received = trio.current_time()
            try:
                records = self._reader.feed(data)
            except ProtocolError as exc:
                self.server.stats["protocol_errors"] += 1
                log.warning("hub %s: protocol error, closing: %s", self.id, exc)
                await self.close_quietly(Close(f"{CLOSE_WITH_ERROR} InvalidDataException: {exc}"), 1002)
                return
            for record in records:
                await self._handle(record)
                if self._closed:
                    return

    async def _handle(self, message: Any) -> None:
        match message:
            case Invocation():
                await self._invoke(message.target, message.arguments, message.invocation_id)
            case StreamInvocation():
                await self._write(encode(Completion.failure(
                    message.invocation_id, f"Failed to invoke '{message.target}': streaming is not supported.")))
            case Close():
                log.debug("hub %s: client sent Close (%s)", self.id, message.error)
                await self.close_quietly(None, 1000)
            case Ping() | CancelInvocation():
                pass
            case _:
                log.debug("hub %s: ignoring %s", self.id, type(message).__name__)

    async def _invoke(self, target: str, arguments: tuple[Any, ...], invocation_id: str | None) -> None:
        try:
            known = _METHODS[self.hub](self.subscriptions, target, arguments)
            error = None if known else f"Unknown hub method '{target}'"
        except _InvalidArguments as exc:
            error = f"Failed to invoke '{target}' due to an error on the server. InvalidDataException: {exc}"
        if error is not None:
            log.info("hub %s: %s", self.id, error)
        if invocation_id is None:
            return
        reply = Completion.void(invocation_id) if error is None else Completion.failure(invocation_id, error)
        await self._write(encode(reply))

    async def _pump(self, subscriber: Any) -> None:
        """Bus -> socket. Events already queued when the pump wakes go out together in one text frame (several
        records per frame, as an ASP.NET server coalesces writes), so a burst costs one socket write, not hundreds;
        a single event is still sent at once."""
        while True:
            overflowed = False
            try:
                batch: list[HubEvent] = [await subscriber.receive()]
            except SubscriberOverflow:
                batch, overflowed = [], True
            while not overflowed and len(batch) < self._options.max_batch:
                try:
                    batch.append(subscriber.receive_nowait())
                except trio.WouldBlock:
                    break
                except (SubscriberOverflow, trio.ClosedResourceError):
                    overflowed = True
            parts: list[str] = []
            for event in batch:
                if not self.subscriptions.wants(event):
                    continue
                if self._aimed(DROP_EVENTS) and self._faults.take(
                        DROP_EVENTS, hub=self.hub, connection=self.id, target=event.target) is not None:
                    continue
                text = encode(Invocation(event.target, event.arguments))
                parts.append(text)
                if self._aimed(DUPLICATE_EVENTS) and self._faults.take(
                        DUPLICATE_EVENTS, hub=self.hub, connection=self.id, target=event.target) is not None:
                    parts.append(text)
            if parts:
                await self._write("".join(parts))
                self.events_sent += len(parts)
            if overflowed:
                self.server.stats["slow_consumers"] += 1
                log.warning("hub %s: slow consumer fell behind by %d events; closing", self.id,
                            self._options.bus_buffer)
                await self.close_quietly(Close(CLOSE_WITH_ERROR, allow_reconnect=True), 1008)
                return

    def _aimed(self, kind: str) -> bool:
        """True when ``kind`` is armed and not aimed at the other hub (``params={"hub": ...}``)."""
        fault = self._faults.active(kind)
        return fault is not None and fault.params.get("hub", self.hub) == self.hub

    async def _keep_alive(self) -> None:
        interval = self._options.keep_alive_s
        while True:
            await _sleep_until_quiet(lambda: self._last_sent, interval)
            if self._stale():
                await trio.sleep(interval)
                continue
            await self._write(PING_RECORD)

    async def _client_timeout(self, limit_s: float) -> None:
        await _sleep_until_quiet(lambda: self._last_received, limit_s)
        log.info("hub %s: nothing received for %.0f s; closing", self.id, limit_s)
        await self.close_quietly(Close("Client timeout elapsed without receiving a message from the client.",
                                       allow_reconnect=True), 1000)

    async def _watch_faults(self) -> None:
        while True:
            if self._aimed(WS_DROP) and self._faults.take(WS_DROP, hub=self.hub, connection=self.id) is not None:
                log.info("hub %s: fault ws_drop", self.id)
                await self.drop()
                return
            if self._aimed(WS_CLOSE) and self._faults.take(WS_CLOSE, hub=self.hub, connection=self.id) is not None:
                log.info("hub %s: fault ws_close", self.id)
                await self.close_quietly(Close(CLOSE_WITH_ERROR, allow_reconnect=True), 1000)
                return
            if self._faults.active(WS_DROP) is None and self._faults.active(WS_CLOSE) is None:
                await self._faults.wait_armed()  # nothing can fire: sleep until something is armed
            else:
                await trio.sleep(self._options.fault_poll_s)  # armed with a probability: roll again later


async def _sleep_until_quiet(last: Callable[[], float], span_s: float) -> None:
    """Return once ``span_s`` has passed on the Trio clock since ``last()``, which traffic keeps moving on: the
    deadline is read again after every sleep instead of being rescheduled on each message."""
    while True:
        remaining = last() + span_s - trio.current_time()
        if remaining <= 0:
            return
        await trio.sleep(remaining)


def _discard_backlog(subscriber: Any) -> bool:
    """Drop what the bus queued for a connection before its handshake completed (a real server only delivers to a
    connected client); False when the bus had already cut the subscriber off."""
    while True:
        try:
            subscriber.receive_nowait()
        except trio.WouldBlock:
            return True
        except SubscriberOverflow:
            return False


def _frame_data(message: Message) -> str | bytes | None:
    if message.get("type") != "websocket.receive":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    return bytes(data) if data is not None else None
