"""Fixtures: a running simulated gateway and its app (the simulator's hub-test fixtures, one definition for both
suites), a token provider and the in-memory connector (virtual time)."""

from __future__ import annotations

import pytest

from simulator.app import SimulatorApp
from simulator.gateway import SimulatedGateway
from tests.realtime.harness import MemoryConnector, SimTokens
from tests.simulator.conftest import app, gateway

__all__ = ["app", "connector", "gateway", "tokens"]


@pytest.fixture
def tokens(gateway: SimulatedGateway) -> SimTokens:
    return SimTokens(gateway)


@pytest.fixture
def connector(app: SimulatorApp) -> MemoryConnector:
    return MemoryConnector(app)
