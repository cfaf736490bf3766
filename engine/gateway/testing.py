"""Test wiring: a :class:`~engine.gateway.client.GatewayClient` talking to an in-process simulated Gateway.

Why here and not in ``tests/``: every area's tests (reconciler, order manager, hubs) and the benchmarks need the same
wiring, and it must stay in step with the client's constructor. It imports the simulator, so the engine proper never
imports this module.

Usage (virtual time: pytest-trio's ``autojump_clock`` fixture)::

    async def test_x(autojump_clock):
        async with simulated_client() as sim:
            accounts = await sim.client.search_accounts()
            sim.gateway.faults.arm("http_5xx", count=5)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from engine.gateway.client import GatewayClient
from settings import EngineSettings, load_settings
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.transport import SimulatorTransport

SIM_EPOCH = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SIM_BASE_URL = "http://simulator.invalid"


def sim_settings(config: SimConfig | None = None, overrides: Mapping[str, Any] | None = None) -> EngineSettings:
    """Settings whose credentials match the simulator's first user, with in-memory token storage."""
    cfg = config if config is not None else SimConfig()
    username, api_key = next(iter(cfg.users.items()))
    base: dict[str, Any] = {
        "api": {"base_url": SIM_BASE_URL},
        "authentication": {"storage": {"type": "memory"}},
        "credentials": {"username": username, "api_key": api_key},
    }
    merged = _merge(base, dict(overrides or {}))
    return load_settings(env={}, overrides=merged)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class SimHarness:
    gateway: SimulatedGateway
    client: GatewayClient
    settings: EngineSettings
    nursery: trio.Nursery


@asynccontextmanager
async def simulated_client(
    config: SimConfig | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    settings: EngineSettings | None = None,
    run_gateway: bool = True,
    run_token_refresh: bool = True,
    wrap_transport: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    **client_kwargs: Any,
) -> AsyncIterator[SimHarness]:
    """A simulated Gateway (``config``, default epoch :data:`SIM_EPOCH`, 24x7) and a client wired to it in-process.

    ``overrides`` are engine settings (snake_case nested dicts) on top of :func:`sim_settings`; ``client_kwargs`` go
    to :meth:`GatewayClient.from_settings` (``limiter=``, ``breaker=``, ``retry_policy=``, ``rng=``...). The
    gateway's background work and the token manager's proactive refresh run in the harness's nursery.
    ``wrap_transport`` wraps the in-process transport (a test's request counter or scripted failures).
    """
    cfg = config if config is not None else SimConfig(epoch=SIM_EPOCH)
    gateway = SimulatedGateway(cfg)
    engine_settings = settings if settings is not None else sim_settings(cfg, overrides)
    transport: httpx.AsyncBaseTransport = SimulatorTransport(build_app(gateway))
    if wrap_transport is not None:
        transport = wrap_transport(transport)
    client = GatewayClient.from_settings(engine_settings, transport=transport, wall_clock=gateway.clock,
                                         **client_kwargs)
    async with client, trio.open_nursery() as nursery:
        if run_gateway:
            await nursery.start(gateway.run)
        if run_token_refresh:
            await nursery.start(client.tokens.run)
        try:
            yield SimHarness(gateway, client, engine_settings, nursery)
        finally:
            nursery.cancel_scope.cancel()
