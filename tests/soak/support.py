"""Instruments of the 7-day soak: who sent what to the simulator and what it answered, a lean in-memory hub
connector, the seeded fault schedule and a measure of the memory the engine's object graph holds.

Why instruments on the simulator side and not inside the engine: the soak asserts what the Gateway *saw* (a request
carrying an expired token, a 429 from a real rate window, a duplicate order), so the evidence is taken where the
Gateway is, the way a server log would show it. Nothing of the engine is replaced: :class:`Witness` wraps the
simulator's ASGI app, the engine gets it through the same :class:`~simulator.transport.SimulatorTransport` and
:func:`~simulator.server.connect_in_memory` as every other virtual-time test.

- Requests are told apart by the ASGI ``client`` address their transport was built with (the engine's and the
  scripted trader's transports use different ones); hub sockets are the engine's only.
- A 429 is attributed to a real rate window (the simulator's sliding windows, wrapped by :class:`WindowSpy`) or to
  an injected ``http_429`` fault: only the former means the engine's own limiter let too much through.
- A 401 is *natural* when the refused token's ``exp`` had passed (the token manager let it lapse: a failure) and a
  fault otherwise (``expire_tokens`` / ``revoke_tokens`` invalidated it early: the engine must renew and repeat).
"""

from __future__ import annotations

import contextvars
import gc
import random
import sys
import types
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio
import trio_websocket

from simulator.gateway import SimulatedGateway
from simulator.server import connect_in_memory
from simulator.tokens import TokenState

ENGINE_CLIENT = ("127.0.0.1", 50000)
TRADER_CLIENT = ("127.0.0.2", 50002)
_LABELS = {ENGINE_CLIENT: "engine", TRADER_CLIENT: "trader"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_current_client: contextvars.ContextVar[str] = contextvars.ContextVar("soak_client", default="unknown")


def _label(scope: Scope) -> str:
    client = scope.get("client")
    return _LABELS.get(tuple(client) if client else ("", 0), "unknown")


@dataclass
class Witness:
    """ASGI middleware around the simulator's app recording, per client, what was asked and answered."""

    app: ASGIApp
    gateway: SimulatedGateway
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(client, HTTP status) -> answers."""
    natural_401: list[tuple[float, str, str]] = field(default_factory=list)
    """(trio time, client, path) of 401s to a token whose ``exp`` had passed."""
    fault_401: Counter[str] = field(default_factory=Counter)
    expired_sent: list[tuple[float, str, str]] = field(default_factory=list)
    """(trio time, client, path) of requests or hub connects carrying a token past its ``exp``."""
    hub_connects: Counter[str] = field(default_factory=Counter)
    hub_refused: Counter[tuple[str, int]] = field(default_factory=Counter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        who = _label(scope)
        path = str(scope.get("path", ""))
        token = _bearer(scope)
        naturally_expired = token is not None and self._past_exp(token)
        if naturally_expired:
            self.expired_sent.append((trio.current_time(), who, path))

        async def watching(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
                self.statuses[(who, status)] += 1
                if status == 401 and token is not None:
                    if naturally_expired:
                        self.natural_401.append((trio.current_time(), who, path))
                    else:
                        self.fault_401[who] += 1
            await send(message)

        reset = _current_client.set(who)
        try:
            await self.app(scope, receive, watching)
        finally:
            _current_client.reset(reset)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub = str(scope.get("path", "")).rsplit("/", 1)[-1]
        values = parse_qs(scope.get("query_string", b"").decode()).get("access_token", [])
        if values and self._past_exp(values[0]):
            self.expired_sent.append((trio.current_time(), "engine", f"hub:{hub}"))
        self.hub_connects[hub] += 1

        async def watching(message: Message) -> None:
            if message.get("type") == "websocket.http.response.start":
                self.hub_refused[(hub, int(message.get("status", 0)))] += 1
            elif message.get("type") == "websocket.close" and not accepted:
                self.hub_refused[(hub, 403)] += 1
            elif message.get("type") == "websocket.accept":
                accepted.append(True)
            await send(message)

        accepted: list[bool] = []
        await self.app(scope, receive, watching)

    def _past_exp(self, token: str) -> bool:
        info = self.gateway.tokens.inspect(token)
        if info.state is TokenState.INVALID or info.exp is None:
            return False
        return self.gateway.clock.timestamp() >= info.exp

    def count(self, who: str, status: int) -> int:
        return self.statuses[(who, status)]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer ":
                return text[7:].strip() or None
    return None


class WindowSpy:
    """Stands in for one of the simulator's :class:`~simulator.rest.SlidingWindow` and records who it refused."""

    def __init__(self, window: Any, refused: Counter[str]) -> None:
        self._window = window
        self._refused = refused

    def check(self, key: str, now: float) -> float | None:
        wait: float | None = self._window.check(key, now)
        if wait is not None:
            self._refused[_current_client.get()] += 1
        return wait


def spy_on_rate_windows(rest: Any) -> Counter[str]:
    """Wrap every sliding window of the simulator's RestApp; the counter of real-window 429s per client."""
    refused: Counter[str] = Counter()
    rest.windows = {name: WindowSpy(window, refused) for name, window in rest.windows.items()}
    return refused


@dataclass
class LeanConnector:
    """A hub Connector over :func:`connect_in_memory` that keeps nothing per message (a week of pings would make the
    tests' recording connector the biggest thing in memory)."""

    app: ASGIApp

    @asynccontextmanager
    async def __call__(self, url: str, *, max_message_size: int,
                       connect_timeout_s: float) -> AsyncIterator[trio_websocket.WebSocketConnection]:
        parts = urlsplit(url)
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(connect_timeout_s):
                    ws = await connect_in_memory(nursery, self.app, f"{parts.path}?{parts.query}",
                                                 max_message_size=max_message_size)
            except (trio_websocket.HandshakeError, trio.TooSlowError) as exc:
                failure = exc
            else:
                try:
                    yield ws
                finally:
                    with trio.move_on_after(1):
                        await ws.aclose()
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure


# ------------------------------------------------------------------------------------------------------ faults
FAULT_MENU: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ws_drop", {"params": {"hub": "user"}}),
    ("ws_drop", {"params": {"hub": "market"}}),
    ("ws_close", {}),
    ("stop_pings", {"duration_s": 360.0}),  # longer than the peer timeout (270 s in the soak): a stale connection
    ("http_5xx", {"count": 4, "params": {"status": [500, 502, 503, 504]}}),
    ("http_429", {"count": 2, "params": {"retry_after_s": 3}}),
    ("expire_tokens", {}),
    ("revoke_tokens", {}),
    ("lose_response", {}),
    ("delay", {"params": {"seconds": 4.0}}),
    ("drop_events", {"count": 2}),
    ("duplicate_events", {"count": 2}),
)


def fault_schedule(seed: int, duration_s: float, *, mean_gap_s: float = 1800.0,
                   outage_s: tuple[float, float] = (180.0, 420.0)) -> Iterator[tuple[float, str, dict[str, Any]]]:
    """(trio time from the start, kind, ``arm`` keyword arguments), sorted: a fault of :data:`FAULT_MENU` every
    ``mean_gap_s`` on average, every kind at least once, and one outage of ``outage_s`` seconds per day."""
    rng = random.Random(f"soak-faults:{seed}")
    steps: list[tuple[float, str, dict[str, Any]]] = []
    menu = list(FAULT_MENU)
    rng.shuffle(menu)
    at = 600.0
    for kind, kwargs in menu:  # every kind early, so a short run still sees each one
        steps.append((at, kind, kwargs))
        at += rng.uniform(300.0, 900.0)
    while at < duration_s:
        kind, kwargs = rng.choice(FAULT_MENU)
        steps.append((at, kind, kwargs))
        at += rng.uniform(0.2, 1.8) * mean_gap_s
    day = 0.0
    while day < duration_s:
        start = day + rng.uniform(3600.0, 86_400.0 - 3600.0)
        if start < duration_s - 3600.0:
            steps.append((start, "outage", {"duration_s": rng.uniform(*outage_s)}))
        day += 86_400.0
    return iter(sorted(steps, key=lambda s: s[0]))


# ------------------------------------------------------------------------------------------------------ memory
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType, types.FrameType,
           types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType, types.MethodType,
           types.WrapperDescriptorType, types.MethodWrapperType, types.GetSetDescriptorType,
           types.MemberDescriptorType, contextvars.Context)
_FOREIGN = ("simulator", "trio", "outcome", "sqlalchemy", "httpx", "httpcore", "anyio", "logging", "tests",
            "_pytest", "pytest", "hypothesis")


@dataclass(frozen=True)
class Footprint:
    objects: int
    bytes: int
    """Shallow sizes (``sys.getsizeof``) summed over the objects the engine's graph holds."""
    largest: tuple[tuple[str, int], ...]
    """The largest containers (path-less description, length)."""


def engine_footprint(root: object, skip: Iterable[object] = ()) -> Footprint:
    """Everything reachable from ``root`` through data (not through code, modules, classes, frames, the simulator,
    Trio's or the libraries' internals): what the engine itself holds on to. Objects in ``skip`` (and what only they
    hold) are left out."""
    seen: set[int] = {id(obj) for obj in skip}
    stack: list[object] = [root]
    objects = 0
    size = 0
    containers: list[tuple[int, str]] = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, _OPAQUE):
            continue
        module = type(obj).__module__ or ""
        if obj is not root and module.split(".", 1)[0] in _FOREIGN:
            continue
        objects += 1
        size += sys.getsizeof(obj, 0)
        if isinstance(obj, dict | list | set | frozenset | tuple | deque):
            containers.append((len(obj), type(obj).__name__))
        stack.extend(gc.get_referents(obj))
    containers.sort(reverse=True)
    return Footprint(objects, size, tuple((name, n) for n, name in containers[:5]))


def _entries(value: object, depth: int = 0) -> int | None:
    """Entries of a container, nested containers' entries included (a dict of OrderedDicts counts its leaves)."""
    if isinstance(value, str | bytes) or not isinstance(value, dict | list | set | frozenset | tuple | deque):
        return None
    items = value.values() if isinstance(value, dict) else value
    total = 0
    for item in items:
        inner = _entries(item, depth + 1) if depth < 2 else None
        total += 1 if inner is None else max(inner, 1)
    return total


def collection_census(components: dict[str, object]) -> dict[str, int]:
    """``component.attribute`` -> entries, for every container attribute of the given engine components (their
    instance dicts and slots): where a leak would show up first."""
    census: dict[str, int] = {}
    for name, component in components.items():
        if component is None:
            continue
        attributes = dict(getattr(component, "__dict__", {}))
        for cls in type(component).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(component, slot):
                    attributes[slot] = getattr(component, slot)
        for attribute, value in attributes.items():
            entries = _entries(value)
            if entries is not None:
                census[f"{name}.{attribute}"] = entries
    return census


def engine_components(engine: Any) -> dict[str, object]:
    return {"engine": engine, "mirror": engine.mirror, "orders": engine.orders, "enforcer": engine.enforcer,
            "reconciler": engine.reconciler, "client": engine.client, "tokens": engine.client.tokens,
            "limiter": engine.client.limiter, "breaker": engine.client.breaker, "user_hub": engine.user_hub,
            "market_hub": engine.market_hub, "store": engine.store}
