"""Test harness for the realtime side: the simulator's in-memory connector, a token provider over the simulator's
token service, and an instrumented websocket (send latency, write-concurrency probe).

None of this replaces the code under test: the hub connection and the manager run for real against the real
simulator app over trio-websocket on memory streams, in virtual time.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio_websocket

from engine.realtime.events import HubEvent, HubEvents
from engine.realtime.transport import WebSocketLike
from simulator.app import SimulatorApp
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubConnection as ServerConnection

USER_URL = "https://rtc.sim.invalid/hubs/user"
MARKET_URL = "https://rtc.sim.invalid/hubs/market"
ACCOUNT = 1001
CONTRACT = "CON.F.US.EP.Z26"


class SimTokens:
    """TokenProvider over the simulator's token service: real JWTs the hubs verify."""

    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway
        self.token = gateway.tokens.issue("sim")
        self.issued = [self.token]
        self.relogins = 0
        self._subscribers: list[trio.MemorySendChannel[str]] = []

    async def current_token(self) -> str:
        await trio.lowlevel.checkpoint()
        return self.token

    async def invalidate_and_relogin(self) -> None:
        await trio.lowlevel.checkpoint()
        self.relogins += 1
        self.refresh()

    def refresh(self) -> str:
        self.token = self.gateway.tokens.issue("sim")
        self.issued.append(self.token)
        for subscriber in self._subscribers:
            subscriber.send_nowait(self.token)
        return self.token

    async def token_updates(self) -> AsyncIterator[object]:
        send, receive = trio.open_memory_channel[str](100)
        self._subscribers.append(send)
        async for token in receive:
            yield token


@dataclass
class Attempt:
    at: float
    token: str
    path: str


class InstrumentedWebSocket:
    """Wraps a websocket: optional delay before each send (latency) and a probe of concurrent writers."""

    def __init__(self, ws: trio_websocket.WebSocketConnection, connector: MemoryConnector) -> None:
        self._ws = ws
        self._connector = connector

    async def send_message(self, message: str | bytes) -> None:
        c = self._connector
        c.writers += 1
        c.max_writers = max(c.max_writers, c.writers)
        try:
            if c.send_delay_s:
                await trio.sleep(c.send_delay_s)
            await self._ws.send_message(message)
            c.sent.append(message if isinstance(message, str) else message.decode())
        finally:
            c.writers -= 1

    async def get_message(self) -> str | bytes:
        return await self._ws.get_message()


@dataclass
class MemoryConnector:
    """A Connector over ``simulator.server.connect_in_memory`` (no sockets: safe under MockClock autojump)."""

    app: SimulatorApp
    attempts: list[Attempt] = field(default_factory=list)
    send_delay_s: float = 0.0
    writers: int = 0
    max_writers: int = 0
    sent: list[str] = field(default_factory=list)
    max_message_sizes: list[int] = field(default_factory=list)

    @asynccontextmanager
    async def __call__(self, url: str, *, max_message_size: int,
                       connect_timeout_s: float) -> AsyncIterator[WebSocketLike]:
        from simulator.server import connect_in_memory

        parts = urlsplit(url)
        assert parts.scheme in ("ws", "wss"), url
        token = parse_qs(parts.query)["access_token"][0]
        self.attempts.append(Attempt(trio.current_time(), token, parts.path))
        self.max_message_sizes.append(max_message_size)
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            try:
                ws = await connect_in_memory(nursery, self.app, f"{parts.path}?{parts.query}",
                                             max_message_size=max_message_size)
            except trio_websocket.HandshakeError as exc:
                failure = exc
            else:
                try:
                    yield InstrumentedWebSocket(ws, self)
                finally:
                    with trio.move_on_after(1):
                        await ws.aclose()
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    @property
    def times(self) -> list[float]:
        return [a.at for a in self.attempts]


def server_connections(app: SimulatorApp, hub: str) -> list[ServerConnection]:
    return [c for c in app.hubs.connections.values() if c.hub == hub]


def only_server_connection(app: SimulatorApp, hub: str) -> ServerConnection:
    conns = server_connections(app, hub)
    assert len(conns) == 1, f"expected one {hub} connection, got {len(conns)}"
    return conns[0]


_unread: weakref.WeakKeyDictionary[trio.MemoryReceiveChannel[HubEvents], deque[HubEvents]] = \
    weakref.WeakKeyDictionary()
"""Per receive channel: the events of a batch already received that :func:`next_event` has not handed out yet."""


async def next_event(receive: trio.MemoryReceiveChannel[HubEvents], target: str | None = None,
                     within_s: float = 60.0) -> HubEvent:
    """The next event of a hub sink (optionally the next one of ``target``), one at a time although the sink carries
    a frame's events per item: the rest of a batch waits for the next call on the same channel."""
    unread = _unread.setdefault(receive, deque())
    with trio.fail_after(within_s):
        while True:
            if not unread:
                unread.extend(await receive.receive())
                continue
            event = unread.popleft()
            if target is None or event.target == target:
                return event


def drain_events(receive: trio.MemoryReceiveChannel[HubEvents]) -> list[HubEvents]:
    """Every event already in a hub sink (the unread rest of a batch :func:`next_event` opened first), no waiting."""
    events = list(_unread.pop(receive, ()))
    while True:
        try:
            events.extend(receive.receive_nowait())
        except trio.WouldBlock:
            return events


def order_data(order_id: int, account_id: int = ACCOUNT, **extra: Any) -> dict[str, Any]:
    return {"id": order_id, "accountId": account_id, "contractId": CONTRACT, "status": 1, "type": 1, "side": 0,
            "size": 1, "limitPrice": 6300.0, "fillVolume": 0, **extra}


@dataclass
class Running:
    """A manager's ``run`` in a task: the error it ended with (if any) and when it ended."""

    error: BaseException | None = None
    ended_at: float | None = None
    done: trio.Event = field(default_factory=trio.Event)


async def start(nursery: trio.Nursery, manager: Any) -> Running:
    running = Running()

    async def runner(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await manager.run(task_status=task_status)
        except Exception as exc:  # HubClosed / HubGaveUp: recorded for the test to assert
            running.error = exc
        finally:
            running.ended_at = trio.current_time()
            running.done.set()

    await nursery.start(runner)
    return running


@dataclass
class Recorder:
    """Every transition with its Trio time (a listener for the store would look the same)."""

    transitions: list[tuple[float, Any]] = field(default_factory=list)

    def __call__(self, transition: Any) -> None:
        self.transitions.append((trio.current_time(), transition))

    def events(self) -> list[str]:
        return [t.event for _, t in self.transitions]

    def at(self, event: str) -> list[float]:
        return [at for at, t in self.transitions if t.event == event]

    def causes(self, event: str) -> list[str]:
        return [t.cause or "" for _, t in self.transitions if t.event == event]
