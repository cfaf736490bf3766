"""Test helpers around the in-process simulator: a transport that counts requests and fails scripted ones."""

from __future__ import annotations

from collections import Counter, deque

import httpx


class ScriptedTransport(httpx.AsyncBaseTransport):
    """Wraps the simulator transport: counts requests per path and answers scripted failures first.

    ``script(path, *failures)``: each failure is an HTTP status (answered without reaching the simulator) or an
    exception instance (raised as the transport error), consumed in order by the next requests to ``path``.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self._scripts: dict[str, deque[int | Exception]] = {}

    def script(self, path: str, *failures: int | Exception) -> None:
        self._scripts.setdefault(path, deque()).extend(failures)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.counts[path] += 1
        self.authorizations.append(request.headers.get("authorization", ""))
        pending = self._scripts.get(path)
        if pending:
            failure = pending.popleft()
            if isinstance(failure, Exception):
                raise failure
            headers = {"retry-after": "2"} if failure == 429 else {}
            return httpx.Response(failure, json={"status": failure}, headers=headers, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
