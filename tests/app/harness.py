"""Test wiring: the whole Engine against the in-process simulator (REST through SimulatorTransport, hubs through
``connect_in_memory``), in virtual time. Nothing of the engine is replaced; only the network is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from engine.app import Engine
from engine.gateway.testing import SIM_EPOCH, SimHarness, sim_settings, simulated_client
from engine.protocol.enums import OrderSide, OrderType
from engine.protocol.models import PlaceOrderRequest
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.transport import SimulatorTransport
from tests.realtime.harness import MARKET_URL, USER_URL, MemoryConnector

ACCOUNT = 1001
ES = "CON.F.US.EP.Z26"


def quiet_config(**overrides: Any) -> SimConfig:
    """Prices stand still unless a test moves them."""
    base: dict[str, Any] = {"epoch": SIM_EPOCH, "tick_interval_s": 86_400.0}
    base.update(overrides)
    return SimConfig(**base)


def engine_settings(config: SimConfig, database: Path | str, **overrides: Any) -> Any:
    base: dict[str, Any] = {
        "api": {"user_hub_url": USER_URL, "market_hub_url": MARKET_URL},
        "database": {"url": database if isinstance(database, str) else f"sqlite:///{database}"},
        "signalr": {"reconnection": {"delays": [0, 2000, 5000]}},
        "state_reconciliation": {"min_interval": 1000},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return sim_settings(config, base)


@dataclass
class Running:
    engine: Engine
    sim: SimHarness
    connector: MemoryConnector
    lines: list[str] = field(default_factory=list)


@asynccontextmanager
async def running_engine(tmp_path: Path, config: SimConfig | None = None, *, settings: Any = None,
                         before: Any = None, **engine_kwargs: Any) -> AsyncIterator[Running]:
    """A simulated Gateway and an Engine connected to it (started and ready); stopped gracefully on exit.
    ``before(sim)`` runs after the simulator started and before the engine does."""
    cfg = config if config is not None else quiet_config()
    async with simulated_client(cfg) as sim:
        if before is not None:
            await before(sim)
        async with engine_on(sim, settings if settings is not None else engine_settings(cfg, tmp_path / "engine.db"),
                             **engine_kwargs) as run:
            yield run


@asynccontextmanager
async def engine_on(sim: SimHarness, settings: Any, **engine_kwargs: Any) -> AsyncIterator[Running]:
    """An Engine connected to an already running simulated Gateway (started and ready; stopped gracefully on exit).
    Several in turn on one simulator and one database are a restart."""
    app = build_app(sim.gateway)
    connector = MemoryConnector(app)
    lines: list[str] = []
    engine = Engine(settings, transport=SimulatorTransport(app), connector=connector, wall_clock=sim.gateway.clock,
                    store_threads=False, status=lines.append, **engine_kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        try:
            yield Running(engine, sim, connector, lines)
        finally:
            engine.stop()


async def place(sim: SimHarness, tag: str, *, account: int = ACCOUNT, order_type: OrderType = OrderType.LIMIT,
                side: OrderSide = OrderSide.BID, size: int = 1, price: float | None = 6000.0) -> int:
    """An order placed by "another front end" (the harness's own client, not the engine)."""
    outcome = await sim.client.place_order(PlaceOrderRequest(
        account_id=account, contract_id=ES, type=int(order_type), side=int(side), size=size,
        limit_price=price if order_type is OrderType.LIMIT else None, custom_tag=tag))
    assert outcome.order_id is not None, outcome
    return outcome.order_id


async def settle(seconds: float = 2.0) -> None:
    """Let queued events reach the mirror (virtual time)."""
    await trio.sleep(seconds)
