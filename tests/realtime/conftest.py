"""Fixtures: a running simulated gateway, its app, a token provider and the in-memory connector (virtual time)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from simulator.app import SimulatorApp, build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from tests.realtime.harness import MemoryConnector, SimTokens


@pytest.fixture
async def gateway(nursery: trio.Nursery) -> AsyncIterator[SimulatedGateway]:
    gw = SimulatedGateway(SimConfig(publish_market_data=False))
    await nursery.start(gw.run)
    yield gw


@pytest.fixture
def app(gateway: SimulatedGateway) -> SimulatorApp:
    return build_app(gateway)


@pytest.fixture
def tokens(gateway: SimulatedGateway) -> SimTokens:
    return SimTokens(gateway)


@pytest.fixture
def connector(app: SimulatorApp) -> MemoryConnector:
    return MemoryConnector(app)
