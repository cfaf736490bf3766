"""The simulator's hubs over the in-memory websocket connector, in virtual time.

Each test talks raw SignalR JSON (through the shared codec) to the real HubServer composed in the real app over a real
SimulatedGateway; events are published on the gateway's bus as the trading model does.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.protocol.signalr import (
    RECORD_SEPARATOR,
    Close,
    Completion,
    HandshakeResponse,
    Invocation,
    Ping,
    encode,
    encode_handshake_request,
)
from simulator.app import build_app
from simulator.bus import HubEvent
from simulator.config import SimConfig
from simulator.faults import DROP_EVENTS, DUPLICATE_EVENTS, OUTAGE, STOP_PINGS, WS_CLOSE, WS_DROP
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from simulator.server import connect_in_memory
from simulator.transport import SimulatorTransport
from tests.simulator.hubclient import ACCOUNT, CONTRACT, Client, issue_token, open_client, order_event


def _quote_event(contract_id: str = CONTRACT, last: float = 6350.25) -> HubEvent:
    return HubEvent("market", "GatewayQuote", (contract_id, {"symbol": "F.US.EP", "lastPrice": last}),
                    contract_id=contract_id)


# ------------------------------------------------------------------------------------------------- handshake, auth


async def test_handshake_completion_and_subscriptions(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    for method, args in [("SubscribeAccounts", ()), ("SubscribeOrders", (ACCOUNT,)),
                         ("SubscribePositions", (ACCOUNT,)), ("SubscribeTrades", (ACCOUNT,))]:
        reply = await client.invoke(method, *args)
        assert reply.error is None and not reply.has_result
    gateway.bus.publish(order_event(7, account_id=1002))  # not subscribed: filtered out
    gateway.bus.publish(order_event(8))
    event = await client.next_non_ping()
    assert event == Invocation("GatewayUserOrder", ({"action": 1, "data": order_event(8).arguments[0]["data"]},))
    assert (await client.invoke("UnsubscribeOrders", ACCOUNT)).error is None
    gateway.bus.publish(order_event(9))
    # the next thing received is the Completion of a later call, not the unsubscribed event
    assert (await client.invoke("SubscribeOrders", 1002)).error is None
    gateway.bus.publish(order_event(10, account_id=1002))
    assert (await client.next_non_ping()).arguments[0]["data"]["id"] == 10


async def test_market_hub_quotes_trades_depth_wire_shapes(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway, "market")
    for method in ("SubscribeContractQuotes", "SubscribeContractTrades", "SubscribeContractMarketDepth"):
        assert (await client.invoke(method, CONTRACT)).error is None
    gateway.bus.publish(_quote_event("CON.F.US.ENQ.Z26"))
    gateway.bus.publish(_quote_event(last=6351.0))
    trades = [{"symbolId": "F.US.EP", "price": 6351.0, "timestamp": "t", "type": 0, "volume": 2}]
    gateway.bus.publish(HubEvent("market", "GatewayTrade", (CONTRACT, trades), contract_id=CONTRACT))
    depth = [{"timestamp": "t", "type": 6, "price": 0, "volume": 0, "currentVolume": 0}]
    gateway.bus.publish(HubEvent("market", "GatewayDepth", (CONTRACT, depth), contract_id=CONTRACT))
    assert await client.next_non_ping() == Invocation("GatewayQuote", (CONTRACT, {"symbol": "F.US.EP",
                                                                                  "lastPrice": 6351.0}))
    assert await client.next_non_ping() == Invocation("GatewayTrade", (CONTRACT, trades))
    assert await client.next_non_ping() == Invocation("GatewayDepth", (CONTRACT, depth))


async def test_unknown_method_and_bad_arguments_get_error_completions(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeToOrders", ACCOUNT)).error == "Unknown hub method 'SubscribeToOrders'"
    bad = await client.invoke("SubscribeOrders", "1001")
    assert bad.error is not None and "integer" in bad.error
    assert (await client.invoke("SubscribeContractQuotes", CONTRACT)).error is not None  # a market method
    # fire-and-forget calls get no reply; the next reply belongs to the next call
    await client.ws.send_message(encode(Invocation("SubscribeAccounts", ())))
    assert (await client.invoke("subscribeaccounts")).error is None  # method names are case-insensitive


async def test_several_records_in_one_frame(nursery, app, gateway, autojump_clock) -> None:
    ws = await connect_in_memory(nursery, app, f"/hubs/user?access_token={issue_token(gateway)}")
    client = Client(ws)
    frame = (encode_handshake_request() + encode(Ping()) + encode(Invocation("SubscribeOrders", (ACCOUNT,), "a"))
             + encode(Invocation("SubscribeTrades", (ACCOUNT,), "b")))
    await ws.send_message(frame)
    assert await client.next() == HandshakeResponse()
    assert await client.next_non_ping() == Completion.void("a")
    assert await client.next_non_ping() == Completion.void("b")


@pytest.mark.parametrize("query", ["", "?access_token=", "?access_token=not-a-jwt"])
async def test_bad_token_refused_at_upgrade(nursery, app, gateway, autojump_clock, query) -> None:
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        await connect_in_memory(nursery, app, f"/hubs/user{query}")
    assert info.value.status_code == 401
    assert app.hubs.stats["accepted"] == 0


async def test_expired_token_refused(nursery, app, gateway, autojump_clock) -> None:
    token = issue_token(gateway)
    gateway.tokens.expire_all()
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        await connect_in_memory(nursery, app, f"/hubs/market?access_token={token}")
    assert info.value.status_code == 401


async def test_bearer_header_accepted(nursery, app, gateway, autojump_clock) -> None:
    ws = await connect_in_memory(nursery, app, "/hubs/user",
                                 extra_headers=[(b"Authorization", f"Bearer {issue_token(gateway)}".encode())])
    assert (await Client(ws).handshake()).error is None


async def test_unknown_hub_path_refused(nursery, app, gateway, autojump_clock) -> None:
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        await connect_in_memory(nursery, app, f"/hubs/other?access_token={issue_token(gateway)}")
    assert info.value.status_code == 404


async def test_negotiate_v1_then_connect_with_id(nursery, app, gateway, autojump_clock) -> None:
    token = issue_token(gateway)
    async with _http(app) as http:
        refused = await http.post("/hubs/user/negotiate?negotiateVersion=1")
        assert refused.status_code == 401
        answer = await http.post("/hubs/user/negotiate?negotiateVersion=1",
                                 headers={"Authorization": f"Bearer {token}"})
        v0 = await http.post(f"/hubs/market/negotiate?access_token={token}")
    body = answer.json()
    assert answer.status_code == 200 and body["negotiateVersion"] == 1
    assert body["availableTransports"][0]["transport"] == "WebSockets"
    assert v0.json()["negotiateVersion"] == 0 and "connectionToken" not in v0.json()
    ws = await connect_in_memory(nursery, app, f"/hubs/user?id={body['connectionToken']}&access_token={token}")
    assert (await Client(ws).handshake()).error is None
    with pytest.raises(trio_websocket.ConnectionRejected) as info:  # a connection token is good for one connection
        await connect_in_memory(nursery, app, f"/hubs/user?id={body['connectionToken']}&access_token={token}")
    assert info.value.status_code == 404


def _http(app: Any) -> Any:
    import httpx

    return httpx.AsyncClient(transport=SimulatorTransport(app), base_url="http://sim")


# ------------------------------------------------------------------------------------------------- timing


async def test_handshake_deadline(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway, handshake=False)
    start = trio.current_time()
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.ws.get_message()
    assert 15.0 <= trio.current_time() - start < 16.0


async def test_bad_handshake_gets_error_and_close(nursery, app, gateway, autojump_clock, caplog) -> None:
    client = await open_client(nursery, app, gateway, handshake=False)
    await client.ws.send_message('{"protocol":"messagepack","version":1}\x1e')
    reply = await client.next()
    assert isinstance(reply, HandshakeResponse) and "not supported" in (reply.error or "")
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.ws.get_message()
    garbage = await open_client(nursery, app, gateway, handshake=False)
    with caplog.at_level(logging.WARNING, logger="simulator.hubs"):
        await garbage.ws.send_message("\x00\x01 garbage \x1e")
        assert (await garbage.next()).error.startswith("invalid handshake")
    assert any("invalid handshake" in r.message for r in caplog.records)


async def test_pings_every_15s_when_idle(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    start = trio.current_time()
    times = []
    for _ in range(3):
        assert await client.next() == Ping()
        times.append(trio.current_time() - start)
        await client.ws.send_message(encode(Ping()))  # keep the client-timeout watchdog fed
    assert times == pytest.approx([15.0, 30.0, 45.0], abs=0.01)


async def test_silent_client_is_closed_after_30s(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    start = trio.current_time()
    while True:
        message = await client.next()
        if isinstance(message, Close):
            break
    assert message.allow_reconnect is True
    assert trio.current_time() - start == pytest.approx(30.0, abs=0.01)


# ------------------------------------------------------------------------------------------------- bad input


async def test_garbage_after_handshake_gets_protocol_close(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    other = await open_client(nursery, app, gateway)
    await client.ws.send_message('{"type":1,"target":5}\x1e')
    close = await client.next_non_ping()
    assert isinstance(close, Close) and "InvalidDataException" in (close.error or "")
    assert not close.allow_reconnect
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.ws.get_message()
    assert app.hubs.stats["protocol_errors"] == 1
    assert (await other.invoke("SubscribeAccounts")).error is None  # the server and other connections live on


async def test_binary_garbage_frame_gets_protocol_close(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    await client.ws.send_message(b"\xff\xfe\x1e")
    assert isinstance(await client.next_non_ping(), Close)


async def test_one_mebibyte_message_round_trip(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway, "market")
    assert (await client.invoke("SubscribeContractMarketDepth", CONTRACT)).error is None
    depth = [{"timestamp": "t", "type": 1, "price": 6000.0 + i, "volume": i, "currentVolume": i}
             for i in range(15_000)]
    event = HubEvent("market", "GatewayDepth", (CONTRACT, depth), contract_id=CONTRACT)
    assert len(encode(Invocation(event.target, event.arguments))) > 1024 * 1024
    gateway.bus.publish(event)
    assert (await client.next_non_ping()).arguments[1] == depth
    big_arg = "x" * (1024 * 1024 + 10)  # a large inbound record is parsed, then rejected as a bad argument
    assert (await client.invoke("SubscribeContractQuotes", big_arg)).error is None


async def test_handler_exception_is_contained(nursery, app, gateway, autojump_clock, caplog) -> None:
    client = await open_client(nursery, app, gateway)
    other = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeAccounts")).error is None
    weird = HubEvent("user", "GatewayUserAccount", (object(),), account_id=ACCOUNT)  # cannot be encoded
    with caplog.at_level(logging.ERROR, logger="simulator.hubs"):
        gateway.bus.publish(weird)
        close = await client.next_non_ping()
    assert isinstance(close, Close) and close.allow_reconnect
    assert app.hubs.stats["handler_errors"] == 1
    assert (await other.invoke("SubscribeAccounts")).error is None


async def test_slow_consumer_is_closed(nursery, gateway, autojump_clock) -> None:
    app = build_app(gateway, HubOptions(bus_buffer=50))
    client = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeOrders", ACCOUNT)).error is None
    for i in range(200):  # published without yielding: the connection falls behind
        gateway.bus.publish(order_event(i))
    seen = 0
    while True:
        message = await client.next_non_ping()
        if isinstance(message, Close):
            break
        seen += 1
    assert 50 <= seen <= 51  # the buffer, plus the one handed straight to the waiting pump
    assert message.allow_reconnect
    assert app.hubs.stats["slow_consumers"] == 1


# ------------------------------------------------------------------------------------------------- faults


async def test_fault_ws_drop_has_no_close_frame(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    gateway.faults.arm(WS_DROP)
    with pytest.raises(trio_websocket.ConnectionClosed) as info:
        while True:
            assert not isinstance(await client.next(), Close)
    assert info.value.reason.code == 1006
    assert [r.kind for r in gateway.faults.log] == [WS_DROP]


async def test_fault_ws_close_allows_reconnect_and_subscriptions_do_not_survive(nursery, app, gateway,
                                                                                 autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeOrders", ACCOUNT)).error is None
    gateway.faults.arm(WS_CLOSE, params={"hub": "user"})
    close = await client.next_non_ping()
    assert close == Close("Connection closed with an error.", True)
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.ws.get_message()
    again = await open_client(nursery, app, gateway)
    gateway.bus.publish(order_event(1))
    assert (await again.invoke("SubscribeAccounts")).error is None  # no order event before this reply


async def test_fault_aimed_at_other_hub_spares_this_one(nursery, app, gateway, autojump_clock) -> None:
    user = await open_client(nursery, app, gateway, "user")
    market = await open_client(nursery, app, gateway, "market")
    gateway.faults.arm(WS_CLOSE, params={"hub": "market"})
    assert isinstance(await market.next_non_ping(), Close)
    assert (await user.invoke("SubscribeAccounts")).error is None


async def test_fault_stop_pings_makes_connection_silent(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway, "market")
    assert (await client.invoke("SubscribeContractQuotes", CONTRACT)).error is None
    gateway.faults.arm(STOP_PINGS, duration_s=45.0)
    start = trio.current_time()
    gateway.bus.publish(_quote_event())  # lost: nothing reaches a stale connection

    async def keep_pinging() -> None:  # a live client keeps pinging, so the server's client timeout stays quiet
        while True:
            await client.ws.send_message(encode(Ping()))
            await trio.sleep(10.0)

    with trio.move_on_after(40.0):
        async with trio.open_nursery() as pinger:
            pinger.start_soon(keep_pinging)
            message = await client.next()
            pytest.fail(f"a stale connection delivered {message!r}")
    assert trio.current_time() - start == pytest.approx(40.0)
    await client.ws.send_message(encode(Ping()))
    assert await client.next() == Ping()  # pings resume once the fault has expired (45 s + up to 15 s)
    assert trio.current_time() - start <= 60.0


async def test_fault_drop_and_duplicate_events(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeOrders", ACCOUNT)).error is None
    gateway.faults.arm(DROP_EVENTS, count=1)
    gateway.bus.publish(order_event(1))
    gateway.bus.publish(order_event(2))
    assert (await client.next_non_ping()).arguments[0]["data"]["id"] == 2
    gateway.faults.arm(DUPLICATE_EVENTS, count=1)
    gateway.bus.publish(order_event(3))
    gateway.bus.publish(order_event(4))
    ids = [(await client.next_non_ping()).arguments[0]["data"]["id"] for _ in range(3)]
    assert ids == [3, 3, 4]
    assert [r.kind for r in gateway.faults.log] == [DROP_EVENTS, DUPLICATE_EVENTS]


async def test_fault_outage_refuses_upgrades_then_recovers(nursery, app, gateway, autojump_clock) -> None:
    gateway.faults.arm(OUTAGE, duration_s=20.0)
    with pytest.raises(trio_websocket.ConnectionRejected) as info:
        await open_client(nursery, app, gateway)
    assert info.value.status_code == 503
    await trio.sleep(20.0)
    assert (await (await open_client(nursery, app, gateway)).invoke("SubscribeAccounts")).error is None


async def test_records_are_text_frames(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    await client.ws.send_message(encode(Invocation("SubscribeAccounts", (), "x")))
    frame = await client.ws.get_message()
    assert isinstance(frame, str) and frame.endswith(RECORD_SEPARATOR)
    assert orjson.loads(frame[:-1]) == {"type": 3, "invocationId": "x"}


async def test_queued_events_share_one_frame(nursery, app, gateway, autojump_clock) -> None:
    client = await open_client(nursery, app, gateway)
    assert (await client.invoke("SubscribeOrders", ACCOUNT)).error is None
    for i in range(5):
        gateway.bus.publish(order_event(i))
    frame = await client.ws.get_message()
    assert isinstance(frame, str) and frame.count(RECORD_SEPARATOR) == 5
    assert [m.arguments[0]["data"]["id"] for m in client.reader.feed(frame)] == [0, 1, 2, 3, 4]


@settings(max_examples=25, deadline=None)
@given(frames=st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=60)), min_size=1, max_size=4))
async def test_fuzzed_frames_never_hurt_the_server(frames: list[str | bytes]) -> None:
    """Whatever a client sends after the handshake, it gets answers or a Close, and the server keeps serving."""
    gateway = SimulatedGateway(SimConfig(publish_market_data=False))
    app = build_app(gateway)
    async with trio.open_nursery() as nursery:
        fuzzed = await open_client(nursery, app, gateway)
        for frame in frames:
            try:
                await fuzzed.ws.send_message(frame)
            except trio_websocket.ConnectionClosed:
                break
        # a separator ends any partial record the fuzz left behind; then the probe gets a Completion, or the
        # connection was (or now is) closed with a protocol Close
        with trio.fail_after(5):
            try:
                await fuzzed.ws.send_message(RECORD_SEPARATOR + encode(Invocation("SubscribeAccounts", (), "probe")))
                while True:
                    message = await fuzzed.next()
                    if isinstance(message, Close) or (isinstance(message, Completion)
                                                      and message.invocation_id == "probe"):
                        break
            except trio_websocket.ConnectionClosed:
                pass
        healthy = await open_client(nursery, app, gateway)
        assert (await healthy.invoke("SubscribeAccounts")).error is None
        assert app.hubs.stats["handler_errors"] == 0
        nursery.cancel_scope.cancel()
