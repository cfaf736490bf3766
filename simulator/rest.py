"""The simulator's REST side: an ASGI app serving ``/api/...`` (the Gateway) and ``/_sim/...`` (test control)."""

from __future__ import annotations

from typing import Any

from simulator.gateway import SimulatedGateway


class RestApp:
    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})
