"""An in-process httpx transport to the simulator that fails the way a real socket does.

``httpx.ASGITransport`` always yields an HTTP response, but two faults must never look like one: a lost response
(the server executed the request, the client sees a broken connection) and an outage (the connection is refused).
The REST app marks such answers with the :data:`ABORT_HEADER` and a truncated body (over hypercorn the truncated body
makes the server drop the connection, so a real client gets ``httpx.RemoteProtocolError``); this transport turns the
mark into the matching httpx exception, so in-process tests see exactly what a socket client sees.
"""

from __future__ import annotations

from typing import Any

import httpx

ABORT_HEADER = "x-simulator-abort"
"""Response header set by the REST app on an answer that must reach the client as a transport error."""
ABORT_LOST = "lose_response"
ABORT_OUTAGE = "outage"


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Wraps ``httpx.ASGITransport(app)``; ``app`` is the simulator's ASGI app (RestApp or the composed app)."""

    def __init__(self, app: Any, *, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=True, client=client)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        abort = response.headers.get(ABORT_HEADER)
        if abort is None:
            return response
        await response.aclose()
        if abort == ABORT_OUTAGE:
            raise httpx.ConnectError("[Errno 111] Connection refused (simulated outage)", request=request)
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body (simulated lost response)", request=request
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
