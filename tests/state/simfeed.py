"""Test wiring for the reconciler tests: the simulator's user-hub bus fed straight into a mirror, with a switch that
drops events while "disconnected" (what a dead socket does), plus order helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing

from engine.gateway.testing import SIM_EPOCH, SimHarness, simulated_client
from engine.protocol.enums import OrderSide, OrderType
from engine.protocol.models import BracketModel, PlaceOrderRequest
from engine.state.changes import Change
from engine.state.gateway_source import GatewayClientSource
from engine.state.mirror import StateMirror
from engine.state.reconciler import Reconciler, ReconcilerConfig
from engine.store.records import ReconcileFinding
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway

ACCOUNT = 1001
ES = "CON.F.US.EP.Z26"
NQ = "CON.F.US.ENQ.Z26"


class BusFeed:
    """Delivers the simulator's user-hub events, in order, to the mirror; drops them while ``connected`` is False."""

    def __init__(self, gateway: SimulatedGateway, mirror: StateMirror) -> None:
        self.gateway = gateway
        self.mirror = mirror
        self.connected = True
        self.delivered = 0
        self.dropped = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.gateway.bus.subscribe("user", max_buffer=1_000_000) as subscriber:
            task_status.started()
            while True:
                event = await subscriber.receive()
                if self.connected:
                    self.delivered += 1
                    self.mirror.on_user_event(event.target, event.arguments)
                else:
                    self.dropped += 1


@dataclass
class World:
    sim: SimHarness
    mirror: StateMirror
    feed: BusFeed
    reconciler: Reconciler
    source: GatewayClientSource
    findings: list[ReconcileFinding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def gateway(self) -> SimulatedGateway:
        return self.sim.gateway

    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]

    async def place(self, *, type: OrderType = OrderType.LIMIT, side: OrderSide = OrderSide.BID, size: int = 1,
                    limit: float | None = None, stop: float | None = None, contract: str = ES,
                    account: int = ACCOUNT, tag: str | None = None, **extra: Any) -> int:
        request = PlaceOrderRequest(account_id=account, contract_id=contract, type=int(type), side=int(side),
                                    size=size, limit_price=limit, stop_price=stop, custom_tag=tag, **extra)
        outcome = await self.sim.client.place_order(request)
        assert outcome.order_id is not None, outcome
        return outcome.order_id

    async def bracket(self, limit: float) -> int:
        return await self.place(limit=limit, stop_loss_bracket=BracketModel(ticks=-8, type=OrderType.STOP),
                                take_profit_bracket=BracketModel(ticks=8, type=OrderType.LIMIT))

    async def settle(self) -> None:
        """Let the feed deliver everything published so far."""
        await trio.testing.wait_all_tasks_blocked()

    def truth(self, account: int = ACCOUNT) -> dict[str, Any]:
        """The simulator's state in the mirror's snapshot shape, for one account."""
        snap = self.gateway.snapshot()
        return {
            "accounts": [a for a in snap["accounts"] if a["id"] == account],
            "positions": sorted((p for p in snap["positions"] if p["accountId"] == account),
                                key=lambda p: p["contractId"]),
            "orders": sorted((o for o in snap["orders"] if o["accountId"] == account and o["status"] in (1, 6, 7, 8)),
                             key=lambda o: o["id"]),
        }

    def mirrored(self) -> dict[str, Any]:
        return self.mirror.snapshot()

    def truth_trade_ids(self, account: int = ACCOUNT) -> set[int]:
        return {t["id"] for t in self.gateway.snapshot()["trades"] if t["accountId"] == account}


def quiet_config(**overrides: Any) -> SimConfig:
    """A simulator whose prices stand still unless a test moves them (tick interval of a day)."""
    base: dict[str, Any] = {"epoch": SIM_EPOCH, "tick_interval_s": 86_400.0, "publish_market_data": False}
    base.update(overrides)
    return SimConfig(**base)


@asynccontextmanager
async def world(config: SimConfig | None = None, *, reconciler_config: ReconcilerConfig | None = None,
                source: Any = None, accounts: tuple[int, ...] = (ACCOUNT,)) -> AsyncIterator[World]:
    async with simulated_client(config if config is not None else quiet_config()) as sim:
        mirror = StateMirror(watch_accounts=accounts)
        feed = BusFeed(sim.gateway, mirror)
        await sim.nursery.start(feed.run)
        client_source = GatewayClientSource(sim.client)
        findings: list[ReconcileFinding] = []
        reconciler = Reconciler(
            mirror, source(client_source) if source is not None else client_source,
            config=reconciler_config or ReconcilerConfig(), wall_clock=sim.gateway.clock,
            findings=findings.append, account_ids=accounts,
        )
        w = World(sim, mirror, feed, reconciler, client_source, findings)
        mirror.subscribe(w.changes.append)
        yield w
