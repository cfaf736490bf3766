"""The simulator's single ASGI app: one port serves REST and both hubs, as the tests and the CLI need.

Routing is by scope type and path only: websocket scopes and ``/hubs/...`` HTTP (negotiate) go to the hubs, every
other HTTP request goes to :class:`~simulator.rest.RestApp`, and ``lifespan`` is answered here. The gateway's
background work is *not* started by lifespan: whoever serves the app runs ``gateway.run`` in its own nursery
(``simulator.server.serve`` does), so in-memory tests that never send lifespan events behave the same.
"""

from __future__ import annotations

import logging
from typing import Any

from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions, HubServer, Receive, Scope, Send
from simulator.rest import RestApp, serve_lifespan

log = logging.getLogger(__name__)


class SimulatorApp:
    """ASGI callable composing :class:`HubServer` and :class:`RestApp` over one gateway."""

    def __init__(self, gateway: SimulatedGateway, hub_options: HubOptions | None = None) -> None:
        self.gateway = gateway
        self.hubs = HubServer(gateway, hub_options)
        self.rest: Any = RestApp(gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self.hubs(scope, receive, send)
        elif kind == "http":
            if str(scope.get("path", "")).startswith("/hubs/"):
                await self.hubs(scope, receive, send)
            else:
                await self.rest(scope, receive, send)
        elif kind == "lifespan":
            await serve_lifespan(receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")


def build_app(gateway: SimulatedGateway, hub_options: HubOptions | None = None) -> SimulatorApp:
    """The ASGI app serving ``gateway``: REST (``/api/...``, ``/_sim/...``) and the hubs (``/hubs/...``)."""
    return SimulatorApp(gateway, hub_options)
