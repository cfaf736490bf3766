"""HubConnection.invoke_many over a scripted socket: every invocation is on the wire before any answer is awaited,
each call gets its own outcome in order (result, error Completion, no answer), and a lost connection fails them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import trio

from engine.protocol.signalr import Completion, encode, encode_handshake_response
from engine.realtime import HubConnection, HubConnectionLost, HubInvocationError, InvokeTimeout
from engine.realtime.hub import Disconnect, DisconnectKind


class ScriptedSocket:
    """A websocket whose inbound frames the test pushes and whose outbound frames it reads."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._in_send, self._in = trio.open_memory_channel[str](100)
        self._wrote = trio.Event()

    async def send_message(self, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        self.sent.extend(orjson.loads(r) for r in text.split("\x1e") if r)
        self._wrote.set()
        self._wrote = trio.Event()

    async def wait_invocations(self, count: int) -> list[str]:
        while len(self.invocation_ids()) < count:
            await self._wrote.wait()
        return self.invocation_ids()

    async def get_message(self) -> str:
        return await self._in.receive()

    def push(self, text: str) -> None:
        self._in_send.send_nowait(text)

    def invocation_ids(self) -> list[str]:
        return [m["invocationId"] for m in self.sent if m.get("type") == 1 and "invocationId" in m]


async def _open(nursery: trio.Nursery) -> tuple[HubConnection, ScriptedSocket]:
    ws = ScriptedSocket()
    conn = HubConnection(ws, name="user")
    ws.push(encode_handshake_response())
    await conn.handshake()
    nursery.start_soon(conn.run)
    return conn, ws


async def test_all_calls_are_written_before_any_answer_and_outcomes_keep_their_order(
        nursery: trio.Nursery, autojump_clock: Any) -> None:
    conn, ws = await _open(nursery)
    calls = [("SubscribeAccounts", ()), ("SubscribeOrders", (1,)), ("Nope", (2,)), ("SubscribeTrades", (3,))]
    outcomes: list[Any] = []
    done = trio.Event()

    async def run() -> None:
        outcomes.extend(await conn.invoke_many(calls, deadline_s=5.0))
        done.set()

    nursery.start_soon(run)
    first, second, third, _ = await ws.wait_invocations(4)
    assert [m["target"] for m in ws.sent if m.get("type") == 1] == [c[0] for c in calls]
    assert not done.is_set()  # nothing answered yet
    ws.push(encode(Completion.failure(third, "Unknown hub method 'Nope'")) + encode(Completion.void(first))
            + encode(Completion.with_result(second, 7)))  # answers out of order; the 4th never comes
    await done.wait()
    assert [o.target for o in outcomes] == [c[0] for c in calls]
    assert outcomes[0].error is None and outcomes[0].result is None
    assert outcomes[1].error is None and outcomes[1].result == 7
    assert isinstance(outcomes[2].error, HubInvocationError)
    assert isinstance(outcomes[3].error, InvokeTimeout)
    assert conn.pending_invocations == 0


async def test_a_lost_connection_fails_every_pending_call(nursery: trio.Nursery, autojump_clock: Any) -> None:
    conn, ws = await _open(nursery)
    outcomes: list[Any] = []
    done = trio.Event()

    async def run() -> None:
        outcomes.extend(await conn.invoke_many([("A", ()), ("B", ())]))
        done.set()

    nursery.start_soon(run)
    await ws.wait_invocations(2)
    conn.end(Disconnect("test drop", DisconnectKind.TRANSPORT))
    await done.wait()
    assert all(isinstance(o.error, HubConnectionLost) for o in outcomes)
    with pytest.raises(HubConnectionLost):
        await conn.invoke_many([("C", ())])
