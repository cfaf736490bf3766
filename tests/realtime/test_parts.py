"""The realtime side's small parts: backoff arithmetic, hub URLs, subscription builders, quote coalescing, and one
hub connection driven directly (handshake deadline, error completions, Close) over the in-memory connector."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from engine.realtime import (
    CoalescingDelivery,
    DisconnectKind,
    HandshakeFailed,
    HubConnection,
    HubConnectionLost,
    HubEvent,
    HubEvents,
    HubInvocationError,
    HubTimings,
    OrderedDelivery,
    ReconnectBackoff,
    Subscription,
    hub_url,
    market_subscriptions,
    redact,
    user_subscriptions,
)
from engine.realtime.subscriptions import DEPTH, QUOTES
from simulator.faults import STOP_PINGS, WS_CLOSE
from tests.realtime.harness import USER_URL, MemoryConnector, SimTokens

# ----------------------------------------------------------------------------------------------- backoff


def test_backoff_follows_the_schedule_then_jittered_max() -> None:
    backoff = ReconnectBackoff((0.0, 2.0, 10.0, 30.0, 60.0), 60.0, 0.2, random.Random(1))
    assert [backoff.delay(n) for n in range(1, 6)] == [0.0, 2.0, 10.0, 30.0, 60.0]
    later = [backoff.delay(n) for n in range(6, 200)]
    assert all(48.0 <= d <= 60.0 for d in later) and len(set(later)) > 100


def test_backoff_caps_listed_delays_and_refuses_bad_input() -> None:
    assert ReconnectBackoff((0.0, 90.0), 30.0, 0.0).delay(2) == 30.0
    assert ReconnectBackoff((), 5.0, 0.0).delay(1) == 5.0
    with pytest.raises(ValueError, match="attempt"):
        ReconnectBackoff().delay(0)
    with pytest.raises(ValueError, match="jitter"):
        ReconnectBackoff(jitter=1.0)
    with pytest.raises(ValueError, match="delays"):
        ReconnectBackoff(delays_s=(-1.0,))


# ----------------------------------------------------------------------------------------------- URLs


def test_hub_url_turns_http_into_ws_and_carries_the_token() -> None:
    assert hub_url("https://rtc.topstepx.com/hubs/user", "a.b.c") == "wss://rtc.topstepx.com/hubs/user?access_token=a.b.c"
    assert hub_url("http://127.0.0.1:8700/hubs/market?x=1&access_token=old", "t+/=") == \
        "ws://127.0.0.1:8700/hubs/market?x=1&access_token=t%2B%2F%3D"
    assert hub_url("wss://h/hubs/user", "t").startswith("wss://h/hubs/user?")
    with pytest.raises(ValueError, match="scheme"):
        hub_url("ftp://h/hubs/user", "t")
    with pytest.raises(ValueError, match="token"):
        hub_url("https://h/hubs/user", "")


def test_redact_hides_the_token() -> None:
    url = hub_url("https://rtc.topstepx.com/hubs/user", "secret.jwt.value")
    assert "secret" not in redact(url) and "access_token=***" in redact(url)
    assert redact("wss://h/hubs/user") == "wss://h/hubs/user"


# ----------------------------------------------------------------------------------------------- subscriptions


def test_subscription_builders() -> None:
    subs = user_subscriptions([1002, 1001, 1001])
    assert [str(s) for s in subs] == [
        "SubscribeAccounts()", "SubscribeOrders(1001)", "SubscribePositions(1001)", "SubscribeTrades(1001)",
        "SubscribeOrders(1002)", "SubscribePositions(1002)", "SubscribeTrades(1002)"]
    assert subs[1] == Subscription("SubscribeOrders", (1001,), "UnsubscribeOrders")
    market = market_subscriptions({"B", "A"}, (QUOTES, DEPTH))
    assert [(s.subscribe, s.args) for s in market] == [
        ("SubscribeContractQuotes", ("A",)), ("SubscribeContractMarketDepth", ("A",)),
        ("SubscribeContractQuotes", ("B",)), ("SubscribeContractMarketDepth", ("B",))]
    with pytest.raises(ValueError, match="unknown market feed"):
        market_subscriptions({"A"}, ("Quotes",))
    with pytest.raises(ValueError, match="contract ids"):
        market_subscriptions({""})


# ----------------------------------------------------------------------------------------------- coalescing


def _event(target: str, *args: Any) -> HubEvent:
    return HubEvent("market", target, args, 1, trio.current_time())


async def test_coalescing_merges_partial_quotes_and_keeps_other_events_in_order() -> None:
    send, receive = trio.open_memory_channel[HubEvents](0)
    delivery = CoalescingDelivery(send)
    await delivery.deliver(_event("GatewayQuote", "A", {"bestBid": 1.0, "lastPrice": 1.0}))
    await delivery.deliver(_event("GatewayTrade", "A", [{"price": 1.0}]))
    await delivery.deliver(_event("GatewayQuote", "A", {"bestAsk": 2.0}))
    await delivery.deliver(_event("GatewayQuote", "B", {"lastPrice": 9.0}))
    await delivery.deliver(_event("GatewayQuote", "A", {"lastPrice": 3.0}))
    await delivery.deliver(_event("GatewayTrade", "A", [{"price": 3.0}]))
    assert delivery.backlog == 4 and delivery.coalesced == 2
    async with trio.open_nursery() as nursery:
        nursery.start_soon(delivery.run)
        batches = [await receive.receive() for _ in range(4)]
        nursery.cancel_scope.cancel()
    assert all(len(batch) == 1 for batch in batches)  # the pump sends one event per item
    got = [event for batch in batches for event in batch]
    assert [(e.target, e.arguments) for e in got] == [
        ("GatewayQuote", ("A", {"bestBid": 1.0, "lastPrice": 3.0, "bestAsk": 2.0})),
        ("GatewayTrade", ("A", [{"price": 1.0}])),
        ("GatewayQuote", ("B", {"lastPrice": 9.0})),
        ("GatewayTrade", ("A", [{"price": 3.0}])),
    ]


async def test_coalescing_applies_back_pressure_to_ordered_events(autojump_clock: Any) -> None:
    send, receive = trio.open_memory_channel[HubEvents](0)
    delivery = CoalescingDelivery(send, max_backlog=2)
    await delivery.deliver(_event("GatewayTrade", "A", [1]))
    await delivery.deliver(_event("GatewayTrade", "A", [2]))
    with trio.move_on_after(1) as scope:
        await delivery.deliver(_event("GatewayTrade", "A", [3]))
    assert scope.cancelled_caught  # full: the reader waits instead of dropping
    async with trio.open_nursery() as nursery:
        nursery.start_soon(delivery.run)
        await delivery.deliver(_event("GatewayTrade", "A", [3]))
        got = [(await receive.receive())[0].arguments[1] for _ in range(3)]
        nursery.cancel_scope.cancel()
    assert got == [[1], [2], [3]]


# ----------------------------------------------------------------------------------------------- ordered delivery


def _orders(*ids: int) -> HubEvents:
    return tuple(HubEvent("user", "GatewayUserOrder", ({"data": {"id": i}},), 1, 0.0) for i in ids)


async def test_ordered_delivery_sends_a_frame_as_one_batch_in_order() -> None:
    send, receive = trio.open_memory_channel[HubEvents](10)
    delivery = OrderedDelivery(send)
    frame = _orders(1, 2, 3, 4, 5)
    await delivery.deliver_many(frame)
    await delivery.deliver(_orders(6)[0])
    await delivery.deliver_many(())  # an empty frame is no item at all
    send.close()
    batches = [batch async for batch in receive]
    assert [[e.arguments[0]["data"]["id"] for e in batch] for batch in batches] == [[1, 2, 3, 4, 5], [6]]
    assert batches[0] == frame and delivery.delivered == 6  # counted in events, not batches


async def test_ordered_delivery_waits_while_the_sink_is_full_and_drops_nothing(autojump_clock: Any) -> None:
    send, receive = trio.open_memory_channel[HubEvents](1)
    delivery = OrderedDelivery(send)
    await delivery.deliver_many(_orders(1, 2))  # fills the sink (its capacity counts frames)
    done = trio.Event()

    async def hub_reader() -> None:
        await delivery.deliver_many(_orders(3, 4, 5))
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hub_reader)
        await trio.sleep(10)
        assert not done.is_set() and delivery.delivered == 2  # the hub's reader waits: back-pressure, not a drop
        first = await receive.receive()
        await done.wait()
        second = await receive.receive()
    ids = [e.arguments[0]["data"]["id"] for batch in (first, second) for e in batch]
    assert ids == [1, 2, 3, 4, 5] and delivery.delivered == 5


# ----------------------------------------------------------------------------------------------- one connection


def _open(connector: MemoryConnector, tokens: SimTokens) -> Any:
    return connector(hub_url(USER_URL, tokens.token), max_message_size=1 << 20, connect_timeout_s=5)


async def test_handshake_has_a_deadline(app, gateway, tokens, connector, autojump_clock) -> None:
    gateway.faults.arm(STOP_PINGS, duration_s=100.0)  # the server answers nothing, not even the handshake
    async with _open(connector, tokens) as ws:
        conn = HubConnection(ws, name="user", generation=7, timings=HubTimings(handshake_timeout_s=4.0))
        t0 = trio.current_time()
        with pytest.raises(HandshakeFailed, match="no handshake answer within 4 s"):
            await conn.handshake()
        assert trio.current_time() - t0 == 4.0
        with pytest.raises(HubConnectionLost, match="not open yet"):
            await conn.invoke("SubscribeAccounts")


async def test_connection_invoke_errors_keep_alive_and_server_close(app, gateway, tokens, connector,
                                                                    autojump_clock) -> None:
    async with _open(connector, tokens) as ws, trio.open_nursery() as nursery:
        conn = HubConnection(ws, name="user", generation=7)
        await conn.handshake()
        nursery.start_soon(conn.run)
        with pytest.raises(HubInvocationError, match="Unknown hub method 'Nope'") as info:
            await conn.invoke("Nope", 1)
        assert info.value.error == "Unknown hub method 'Nope'"
        assert await conn.invoke("SubscribeOrders", 1001) is None
        await trio.sleep(16)
        assert '{"type":6}\x1e' in connector.sent  # keep-alive Ping after 15 s without sending
        gateway.faults.arm(WS_CLOSE)
        disconnect = await conn.wait_ended()
        assert disconnect.kind is DisconnectKind.SERVER_CLOSE and disconnect.allow_reconnect
        with pytest.raises(HubConnectionLost, match="gen 7"):
            await conn.send("SubscribeAccounts")


def test_timings_are_validated() -> None:
    with pytest.raises(ValueError, match="keep_alive_s"):
        HubTimings(keep_alive_s=0)
    with pytest.raises(ValueError, match="server_timeout_s"):
        HubTimings(server_timeout_s=-1)


async def test_hub_from_settings_reads_urls_and_signalr(autojump_clock: Any) -> None:
    from engine.realtime import hub_from_settings
    from settings import load_settings

    settings = load_settings(env={}, overrides={"api": {"market_hub_url": "http://127.0.0.1:9/hubs/market"},
                                                "signalr": {"reconnection": {"max_attempts": 3}}})
    send, _ = trio.open_memory_channel[HubEvents](1)

    class NoTokens:
        async def current_token(self) -> str:
            return "t"

        async def invalidate_and_relogin(self) -> None:
            return None

        def token_updates(self) -> Any:
            raise NotImplementedError

    user = hub_from_settings(settings, "user", NoTokens(), send)
    market = hub_from_settings(settings, "market", NoTokens(), send)
    assert user.url == "https://rtc.topstepx.com/hubs/user" and market.url == "http://127.0.0.1:9/hubs/market"
    assert user.lifecycle.max_attempts == market.lifecycle.max_attempts == 3
    health = user.health().as_dict()
    assert health["state"] == "disconnected" and health["hub"] == "user" and health["latency_s"] is None
    with pytest.raises(ValueError, match="hub must be"):
        hub_from_settings(settings, "other", NoTokens(), send)  # type: ignore[arg-type]
