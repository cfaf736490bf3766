"""A hub connection joins the event bus before it answers any invocation, in virtual time over the in-memory connector.

Why: a client that pipelines its Subscribe* invocations in the handshake's own frame (as a fast client does) may act
on their Completions at once; an event published right after a Completion must reach it, as it would from a real
server. The simulator once answered those invocations before the connection had joined the bus, so such events were
silently lost. Events published before the handshake completed are still not delivered (the connection did not exist
yet for the hub), and a bus overflow during the handshake does not count against the connection.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from engine.protocol.signalr import Close, Completion, HandshakeResponse, Invocation, encode, encode_handshake_request
from simulator.app import SimulatorApp, build_app
from simulator.bus import HubEvent
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from tests.simulator.hubclient import ACCOUNT, open_client, order_event


@pytest.mark.parametrize("subscribes", [1, 2, 3])
async def test_event_right_after_pipelined_subscribe_completion_is_delivered(
        nursery: trio.Nursery, app: SimulatorApp, gateway: SimulatedGateway, autojump_clock: trio.testing.MockClock,
        subscribes: int) -> None:
    client = await open_client(nursery, app, gateway, handshake=False)
    invocations = [Invocation("SubscribeOrders", (ACCOUNT,), "orders")]
    invocations += [Invocation("SubscribeTrades", (ACCOUNT + n,), f"t{n}") for n in range(subscribes - 1)]
    await client.ws.send_message(encode_handshake_request() + "".join(encode(i) for i in invocations))
    assert await client.next_non_ping() == HandshakeResponse()
    assert await client.next_non_ping() == Completion.void("orders")
    gateway.bus.publish(order_event(1))  # at once, while the server may still be answering the rest of the frame
    for n in range(subscribes - 1):
        assert await client.next_non_ping() == Completion.void(f"t{n}")
    with trio.fail_after(5):
        event = await client.next_non_ping()
    assert isinstance(event, Invocation)
    assert event.target == "GatewayUserOrder"
    assert event.arguments[0]["data"]["id"] == 1


async def test_events_before_handshake_are_not_delivered(nursery: trio.Nursery, app: SimulatorApp,
        gateway: SimulatedGateway, autojump_clock: trio.testing.MockClock) -> None:
    client = await open_client(nursery, app, gateway, handshake=False)
    await trio.testing.wait_all_tasks_blocked()  # the connection is accepted and waits for its handshake
    gateway.bus.publish(HubEvent("user", "GatewayLogout", ({"reason": "before"},)))  # session-wide: reaches all
    await client.ws.send_message(encode_handshake_request() + encode(Invocation("SubscribeOrders", (ACCOUNT,), "a")))
    assert await client.next_non_ping() == HandshakeResponse()
    assert await client.next_non_ping() == Completion.void("a")
    gateway.bus.publish(HubEvent("user", "GatewayLogout", ({"reason": "after"},)))
    first = await client.next_non_ping()
    assert isinstance(first, Invocation)
    assert first.arguments == ({"reason": "after"},)


async def test_overflow_before_handshake_does_not_close_the_connection(
        nursery: trio.Nursery, gateway: SimulatedGateway, autojump_clock: trio.testing.MockClock) -> None:
    app = build_app(gateway, HubOptions(bus_buffer=5))
    client = await open_client(nursery, app, gateway, handshake=False)
    await trio.testing.wait_all_tasks_blocked()
    for i in range(20):  # nothing of this was for the connection: it has not connected yet
        gateway.bus.publish(order_event(i))
    await client.ws.send_message(encode_handshake_request() + encode(Invocation("SubscribeOrders", (ACCOUNT,), "a")))
    assert await client.next_non_ping() == HandshakeResponse()
    assert await client.next_non_ping() == Completion.void("a")
    gateway.bus.publish(order_event(100))
    event = await client.next_non_ping()
    assert isinstance(event, Invocation) and event.arguments[0]["data"]["id"] == 100
    assert app.hubs.stats["slow_consumers"] == 0
    for i in range(20):  # once connected, the slow-consumer rule holds as before
        gateway.bus.publish(order_event(200 + i))
    while not isinstance(message := await client.next_non_ping(), Close):
        assert isinstance(message, Invocation)
    assert message.allow_reconnect
    assert app.hubs.stats["slow_consumers"] == 1
