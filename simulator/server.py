"""Serving the simulator: over loopback sockets (hypercorn's Trio worker) or in memory (virtual-time tests).

Two ways in, one app:

- :func:`serve` runs the gateway's background work and hypercorn on ``host:port`` (port 0 picks a free one) and
  reports the bound base URL through ``nursery.start``. Real sockets: for the CLI, the JS interop test, benchmarks
  and system tests.
- :func:`connect_in_memory` opens a hub websocket to the app with no socket at all: a
  ``trio.testing.memory_stream_pair`` carries the websocket protocol, trio-websocket runs both ends, and a small
  adapter speaks ASGI to the app. Under ``MockClock(autojump_threshold=0)`` this is the only safe transport (a task
  blocked on a real socket would let the clock jump over every timeout). Use it exactly like
  ``trio_websocket.connect_websocket_url(nursery, url)``::

      gateway = SimulatedGateway(SimConfig(...))
      app = build_app(gateway)
      async with trio.open_nursery() as nursery:
          await nursery.start(gateway.run)
          ws = await connect_in_memory(nursery, app, f"/hubs/user?access_token={token}")
          await ws.send_message('{"protocol":"json","version":1}\\x1e')
          ...

  A refused upgrade raises :class:`trio_websocket.ConnectionRejected` (``.status_code`` 401 / 404 / 503), as over a
  socket. REST calls in the same test go through ``simulator.transport.SimulatorTransport(app)``.

Both transports offer the ASGI scope extension ``simulator.abort`` so the ``ws_drop`` fault can drop a socket
without a close frame (the client sees code 1006, as after a network failure).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
import trio.testing
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from wsproto import ConnectionType, WSConnection

from simulator.app import build_app
from simulator.gateway import SimulatedGateway
from simulator.hubs import ABORT_EXTENSION, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --------------------------------------------------------------------------------------------------------------
# Loopback sockets


async def serve(
    gateway: SimulatedGateway,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    app: ASGIApp | None = None,
    run_gateway: bool = True,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``gateway`` (REST + hubs) on ``host:port`` until cancelled; ``task_status.started`` gets the base
    URL, e.g. ``http://127.0.0.1:8700``. ``run_gateway=False`` when the caller already runs ``gateway.run``."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    config.websocket_max_message_size = MAX_MESSAGE_SIZE
    config.keep_alive_timeout = 75.0
    wrapped = _with_socket_abort(app if app is not None else build_app(gateway))
    async with trio.open_nursery() as nursery:
        if run_gateway:
            await nursery.start(gateway.run)
        binds: list[str] = await nursery.start(hypercorn_serve, wrapped, config)
        url = binds[0]
        log.info("simulator serving on %s", url)
        task_status.started(url)


def _with_socket_abort(app: ASGIApp) -> ASGIApp:
    """Adds ``simulator.abort`` to websocket scopes served by hypercorn: it shuts the TCP socket down so the client
    sees the connection end with no close frame."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            sock = _find_socket(send)
            if sock is not None:
                extensions = dict(scope.get("extensions") or {})
                extensions[ABORT_EXTENSION] = {"abort": _socket_aborter(sock)}
                scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


def _find_socket(send: Any) -> Any:
    """The connection's trio socket behind hypercorn's ``send`` callable (``WSStream.app_send`` -> protocol ->
    ``TCPServer.stream``), or None if hypercorn's internals changed; the hub then falls back to code 1011."""
    obj: Any = send
    for _ in range(8):
        owner = getattr(obj, "__self__", None)
        if owner is None:
            return None
        stream = getattr(owner, "stream", None)
        sock = getattr(stream, "socket", None)
        if sock is not None and hasattr(sock, "shutdown"):
            return sock
        obj = getattr(owner, "send", None)
    return None


def _socket_aborter(sock: Any) -> Callable[[], Awaitable[None]]:
    async def abort() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        await trio.lowlevel.checkpoint()

    return abort


# --------------------------------------------------------------------------------------------------------------
# In memory


async def connect_in_memory(
    nursery: trio.Nursery,
    app: ASGIApp,
    path_and_query: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    max_message_size: int = MAX_MESSAGE_SIZE,
    client: tuple[str, int] = ("127.0.0.1", 50001),
) -> trio_websocket.WebSocketConnection:
    """Open a websocket to ``app`` at ``path_and_query`` (e.g. ``/hubs/user?access_token=...``) over memory streams.

    The client connection and the server side both live in ``nursery`` (as with
    ``trio_websocket.connect_websocket_url``). Raises ``trio_websocket.ConnectionRejected`` when the app refuses
    the upgrade.
    """
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(_serve_memory_websocket, app, server_stream, client, max_message_size)
    connection = trio_websocket.WebSocketConnection(
        client_stream,
        WSConnection(ConnectionType.CLIENT),
        host="simulator.invalid",
        path=path_and_query,
        client_extra_headers=extra_headers,
        max_message_size=max_message_size,
    )
    # trio-websocket's own connect_websocket lets a rejection escape from the reader task into the nursery; here
    # the reader runs in a wrapper so a refused upgrade is raised to the caller, as a failed connect should be.
    settled = trio.Event()
    failure: list[trio_websocket.HandshakeError] = []
    waiter = trio.CancelScope()

    async def read() -> None:
        try:
            await connection._reader_task()
        except trio_websocket.HandshakeError as exc:
            failure.append(exc)
        finally:
            waiter.cancel()
            settled.set()

    async def wait_open() -> None:
        with waiter:
            await connection._open_handshake.wait()
            settled.set()

    nursery.start_soon(read)
    nursery.start_soon(wait_open)
    await settled.wait()
    if failure:
        raise failure[0]
    return connection


async def _serve_memory_websocket(app: ASGIApp, stream: trio.abc.Stream, client: tuple[str, int],
                                  max_message_size: int) -> None:
    """The server end: trio-websocket's server side, driven by the app through an ASGI adapter."""
    async with trio.open_nursery() as nursery:
        try:
            request = await trio_websocket.wrap_server_stream(nursery, stream, max_message_size=max_message_size)
        except Exception:
            log.debug("in-memory websocket handshake failed", exc_info=True)
            await stream.aclose()
            return
        adapter = _AsgiWebSocket(request, stream)
        path, _, query = request.path.partition("?")
        scope: Scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers],
            "client": client,
            "server": ("simulator.invalid", 80),
            "subprotocols": list(request.proposed_subprotocols),
            "extensions": {"websocket.http.response": {}, ABORT_EXTENSION: {"abort": adapter.abort}},
        }
        try:
            await app(scope, adapter.receive, adapter.send)
        except Exception:
            log.exception("ASGI app failed on an in-memory websocket")
        finally:
            await adapter.finish()
            nursery.cancel_scope.cancel()


class _AsgiWebSocket:
    """ASGI ``receive``/``send`` over one trio-websocket server-side request/connection."""

    def __init__(self, request: trio_websocket.WebSocketRequest, stream: trio.abc.Stream) -> None:
        self._request = request
        self._stream = stream
        self._connection: trio_websocket.WebSocketConnection | None = None
        self._connected_sent = False
        self._response: Message | None = None
        self._body = b""
        self._done = False

    async def receive(self) -> Message:
        if not self._connected_sent:
            self._connected_sent = True
            return {"type": "websocket.connect"}
        if self._connection is None or self._done:
            await trio.sleep_forever()  # no frames before accept; the app decides what happens
        assert self._connection is not None
        try:
            data = await self._connection.get_message()
        except trio_websocket.ConnectionClosed as exc:
            code = exc.reason.code if exc.reason is not None else 1006
            return {"type": "websocket.disconnect", "code": code}
        if isinstance(data, str):
            return {"type": "websocket.receive", "text": data}
        return {"type": "websocket.receive", "bytes": data}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self._done:
            return
        if kind == "websocket.accept":
            self._connection = await self._request.accept(
                subprotocol=message.get("subprotocol"), extra_headers=list(message.get("headers", [])))
        elif kind == "websocket.send":
            if self._connection is None:
                raise RuntimeError("websocket.send before websocket.accept")
            text = message.get("text")
            payload: str | bytes = text if text is not None else bytes(message.get("bytes") or b"")
            with contextlib.suppress(trio_websocket.ConnectionClosed):  # like hypercorn: late sends are dropped
                await self._connection.send_message(payload)
        elif kind == "websocket.close":
            if self._connection is None:
                await self._request.reject(403)
                self._done = True
            else:
                await self._close(int(message.get("code", 1000)), message.get("reason"))
        elif kind == "websocket.http.response.start":
            self._response = message
        elif kind == "websocket.http.response.body":
            self._body += bytes(message.get("body", b""))
            if not message.get("more_body", False):
                response = self._response or {"status": 500, "headers": []}
                headers = [(bytes(k), bytes(v)) for k, v in response.get("headers", [])
                           if bytes(k).lower() != b"content-length"]
                await self._request.reject(int(response["status"]), extra_headers=headers, body=self._body)
                self._done = True
        else:
            raise RuntimeError(f"unexpected ASGI websocket message {kind!r}")

    async def _close(self, code: int, reason: str | None) -> None:
        self._done = True
        assert self._connection is not None
        with trio.move_on_after(5):
            try:
                await self._connection.aclose(code, reason)
            except Exception:
                log.debug("in-memory websocket close failed", exc_info=True)

    async def abort(self) -> None:
        """Drop the transport: the client's reader sees end-of-stream and no close frame (code 1006)."""
        self._done = True
        await self._stream.aclose()

    async def finish(self) -> None:
        if self._done:
            return
        if self._connection is None:
            await self._request.reject(500)
            self._done = True
        else:
            await self._close(1011, None)
