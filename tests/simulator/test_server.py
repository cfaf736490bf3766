"""The simulator over real loopback sockets (hypercorn): hubs reachable, faults as a socket client sees them.

Few and short, marked ``system`` (real sockets, real time: no MockClock here).
"""

from __future__ import annotations

import httpx
import pytest
import trio
import trio_websocket

from engine.protocol.signalr import (
    Close,
    Completion,
    HandshakeResponse,
    Invocation,
    StreamReader,
    encode,
    encode_handshake_request,
)
from simulator.app import build_app
from simulator.config import SimConfig
from simulator.faults import WS_CLOSE, WS_DROP
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from simulator.server import serve

pytestmark = pytest.mark.system


async def _start(nursery: trio.Nursery) -> tuple[SimulatedGateway, str]:
    gateway = SimulatedGateway(SimConfig(publish_market_data=False))
    app = build_app(gateway, HubOptions(fault_poll_s=0.05))
    url: str = await nursery.start(lambda task_status: serve(gateway, app=app, task_status=task_status))
    return gateway, url


async def _read(ws: trio_websocket.WebSocketConnection, reader: StreamReader) -> list[object]:
    with trio.fail_after(5):
        return reader.feed(await ws.get_message())


async def test_real_socket_handshake_invoke_and_ws_drop(nursery: trio.Nursery) -> None:
    gateway, url = await _start(nursery)
    assert url.startswith("http://127.0.0.1:")
    token = gateway.tokens.issue("sim")
    ws_url = url.replace("http://", "ws://") + f"/hubs/user?access_token={token}"
    async with trio_websocket.open_websocket_url(ws_url, max_message_size=1 << 24) as ws:
        reader = StreamReader("client")
        await ws.send_message(encode_handshake_request() + encode(Invocation("SubscribeAccounts", (), "0")))
        messages = await _read(ws, reader)
        while len(messages) < 2:
            messages += await _read(ws, reader)
        assert messages[:2] == [HandshakeResponse(), Completion.void("0")]
        gateway.faults.arm(WS_DROP)
        with pytest.raises(trio_websocket.ConnectionClosed) as info:
            while True:
                assert not isinstance(await _read(ws, reader), Close)
        assert info.value.reason.code == 1006  # no close frame: the socket just went away


async def test_real_socket_refusal_and_ws_close(nursery: trio.Nursery) -> None:
    gateway, url = await _start(nursery)
    ws_base = url.replace("http://", "ws://")
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(f"{ws_base}/hubs/user?access_token=bad"):
            pass
    assert info.value.status_code == 401
    token = gateway.tokens.issue("sim")
    async with trio_websocket.open_websocket_url(f"{ws_base}/hubs/market?access_token={token}") as ws:
        reader = StreamReader("client")
        await ws.send_message(encode_handshake_request())
        assert await _read(ws, reader) == [HandshakeResponse()]
        gateway.faults.arm(WS_CLOSE)
        assert await _read(ws, reader) == [Close("Connection closed with an error.", True)]
        with pytest.raises(trio_websocket.ConnectionClosed):
            await _read(ws, reader)
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.post(f"/hubs/user/negotiate?negotiateVersion=1&access_token={token}")
    assert answer.status_code == 200 and answer.json()["negotiateVersion"] == 1
