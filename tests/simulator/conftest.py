"""Fixtures of the simulator's hub tests (and of the engine's hub tests in ``tests/realtime``, which import them):
a running simulated gateway with no market-data publisher, and the app composed over it.

Why shared: every hub test needs the same quiet gateway (events are published by the test, never by a price
process), and one definition keeps them from drifting apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from simulator.app import SimulatorApp, build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway


@pytest.fixture
async def gateway(nursery: trio.Nursery) -> AsyncIterator[SimulatedGateway]:
    gw = SimulatedGateway(SimConfig(publish_market_data=False))
    await nursery.start(gw.run)
    yield gw


@pytest.fixture
def app(gateway: SimulatedGateway) -> SimulatorApp:
    return build_app(gateway)
