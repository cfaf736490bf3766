"""The ASGI lifespan handshake: hypercorn (and any ASGI server) opens the app with it, so both the full simulator app
and the REST app alone must answer startup and shutdown, and return once shut down."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from simulator.app import build_app
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.rest import RestApp
from tests.simulator.test_rest import EPOCH


@pytest.mark.parametrize("which", ["full", "rest"])
async def test_startup_and_shutdown_are_acknowledged(which: str) -> None:
    gateway = SimulatedGateway(SimConfig(epoch=EPOCH))
    app: Any = build_app(gateway) if which == "full" else RestApp(gateway)
    inbox = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(inbox)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with trio.fail_after(1):
        await app({"type": "lifespan"}, receive, send)  # returns after the shutdown, never reads a third message
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
