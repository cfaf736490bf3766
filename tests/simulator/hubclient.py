"""A minimal raw SignalR client for the simulator's hub tests, shared by every `test_hubs*` module.

Why a module of its own: the hub tests speak raw SignalR JSON (through the shared codec) to the real HubServer over the
in-memory websocket connector, and each module needs the same reader, the same way to open an authenticated
connection and the same order event. One copy keeps them reading frames identically (pings skipped the same way).
"""

from __future__ import annotations

from typing import Any

import trio
import trio_websocket

from engine.protocol.signalr import (
    Completion,
    HandshakeResponse,
    Invocation,
    Ping,
    StreamReader,
    encode,
    encode_handshake_request,
)
from simulator.bus import HubEvent
from simulator.gateway import SimulatedGateway
from simulator.server import connect_in_memory

ACCOUNT = 1001
CONTRACT = "CON.F.US.EP.Z26"


class Client:
    """A minimal raw SignalR client over one websocket (what the engine's hub client will do, without policy)."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.reader = StreamReader("client")
        self.inbox: list[Any] = []
        self._next_id = 0

    async def handshake(self) -> HandshakeResponse:
        await self.ws.send_message(encode_handshake_request())
        first = await self.next()
        assert isinstance(first, HandshakeResponse)
        return first

    async def next(self) -> Any:
        while not self.inbox:
            self.inbox.extend(self.reader.feed(await self.ws.get_message()))
        return self.inbox.pop(0)

    async def next_non_ping(self) -> Any:
        while True:
            message = await self.next()
            if not isinstance(message, Ping):
                return message

    async def invoke(self, target: str, *args: Any) -> Completion:
        invocation_id = str(self._next_id)
        self._next_id += 1
        await self.ws.send_message(encode(Invocation(target, args, invocation_id)))
        reply = await self.next_non_ping()
        assert isinstance(reply, Completion), reply
        assert reply.invocation_id == invocation_id
        return reply


def issue_token(gateway: SimulatedGateway) -> str:
    """A valid session token for the simulated gateway."""
    return gateway.tokens.issue("sim")


async def open_client(nursery: trio.Nursery, app: Any, gateway: SimulatedGateway, hub: str = "user",
                      handshake: bool = True) -> Client:
    """Connect to `/hubs/<hub>` with a fresh token; complete the SignalR handshake unless told not to."""
    ws = await connect_in_memory(nursery, app, f"/hubs/{hub}?access_token={issue_token(gateway)}")
    client = Client(ws)
    if handshake:
        assert (await client.handshake()).error is None
    return client


def order_event(order_id: int = 1, account_id: int = ACCOUNT) -> HubEvent:
    """A GatewayUserOrder event for one account, as the trading model publishes it."""
    data = {"id": order_id, "accountId": account_id, "contractId": CONTRACT, "status": 1, "type": 1, "side": 0,
            "size": 1, "limitPrice": 6300.0, "fillVolume": 0}
    return HubEvent("user", "GatewayUserOrder", ({"action": 1, "data": data},), account_id=account_id)
