"""Test wiring for the order manager: a fresh in-process simulator, the real GatewayClient over SimulatorTransport
(lost responses arrive as real transport errors), a real store (SQLite, inline calls for virtual time) and the
manager, optionally fed by the simulator's user-hub event bus (what the mirror does in the engine).

Used by tests/orders, tests/integration and tests/chaos; nothing here replaces the thing under test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from engine.gateway.client import GatewayClient
from engine.orders import OrderManager, PlaceIntent
from engine.protocol.enums import OrderSide, OrderType
from engine.store import Store, open_store
from settings import EngineSettings, load_settings
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.transport import SimulatorTransport

EPOCH = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # a Tuesday, mid-session
ACCOUNT = 1001
CONTRACT = "CON.F.US.MES.Z26"


def make_settings(**overrides: Any) -> EngineSettings:
    values: dict[str, Any] = {
        "credentials.username": "sim",
        "credentials.apiKey": "sim-key",
        "api.baseUrl": "http://simulator.test",
        "api.timeout": 3000,
        "orderManagement.verification.timeout": 2000,
        "errorHandling.retries.maxAttempts": 3,
        "errorHandling.retries.backoffBase": 100,
    }
    values.update(overrides)
    return load_settings(None, env={}, overrides=values)


def market(size: int = 1, side: OrderSide = OrderSide.BID, contract: str = CONTRACT) -> PlaceIntent:
    return PlaceIntent(ACCOUNT, contract, side, size)


def limit(price: float, size: int = 1, side: OrderSide = OrderSide.BID) -> PlaceIntent:
    return PlaceIntent(ACCOUNT, CONTRACT, side, size, OrderType.LIMIT, limit_price=price)


@dataclass
class Harness:
    gateway: SimulatedGateway
    client: GatewayClient
    store: Store
    manager: OrderManager
    settings: EngineSettings
    nursery: trio.Nursery

    def sim_orders(self, tag: str | None = None) -> list[dict[str, Any]]:
        orders = self.gateway.snapshot()["orders"]
        return [o for o in orders if tag is None or o.get("customTag") == tag]

    def tag_counts(self) -> Counter[str]:
        return Counter(o["customTag"] for o in self.sim_orders() if o.get("customTag"))


async def feed_user_events(gateway: SimulatedGateway, manager: OrderManager, *,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Deliver every user-hub event of the simulator to the manager, in order (the mirror's job in the engine)."""
    with gateway.bus.subscribe("user") as subscriber:
        task_status.started()
        while True:
            event = await subscriber.receive()
            manager.on_user_event(event.target, event.arguments)


@asynccontextmanager
async def order_harness(
    *,
    db_url: str = "sqlite://",
    stream: bool = True,
    sim: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    gateway: SimulatedGateway | None = None,
    start_manager: bool = True,
    store: Store | None = None,
    wrap_transport: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[Harness]:
    if gateway is None:
        gateway = SimulatedGateway(SimConfig(epoch=EPOCH, publish_market_data=False, **(sim or {})))
    engine_settings = make_settings(**(settings or {}))
    transport: httpx.AsyncBaseTransport = SimulatorTransport(build_app(gateway))
    if wrap_transport is not None:
        transport = wrap_transport(transport)
    client = GatewayClient.from_settings(engine_settings, transport=transport, wall_clock=gateway.clock)
    async with AsyncExitStack() as stack:
        if store is None:
            store = await stack.enter_async_context(open_store(db_url, threads=False))
        nursery = await stack.enter_async_context(trio.open_nursery())
        await nursery.start(gateway.run)
        await client.search_accounts()  # log in before any fault is armed
        manager = OrderManager.from_settings(engine_settings, client, store, wall_clock=gateway.clock,
                                             **(policy or {}))
        if stream:
            await nursery.start(feed_user_events, gateway, manager)
        if start_manager:
            await nursery.start(manager.run)
        yield Harness(gateway, client, store, manager, engine_settings, nursery)
        nursery.cancel_scope.cancel()
    await client.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """The network with a tally: every request passes through unchanged and its path is counted (how many cancels,
    closes, modifies actually went out)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[request.url.path] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def freezable_store(db: str) -> AsyncIterator[tuple[Store, trio.CancelScope]]:
    """A store on ``db`` whose writer runs in the returned cancel scope: cancelling it freezes the disk at that
    instant (nothing queued after it is written), which is what a crash leaves behind. Closed on exit."""
    store = Store.open(db, threads=False)
    try:
        async with trio.open_nursery() as outer:
            writer = trio.CancelScope()

            async def run_writer(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with writer:
                    await store.run(task_status=task_status)

            await outer.start(run_writer)
            yield store, writer
    finally:
        store.close()
