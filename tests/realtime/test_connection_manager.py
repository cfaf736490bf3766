"""The seed's Connection Manager tests (20+), against the real simulator hubs over memory streams, in virtual time.

Each test runs the real HubManager (driver of the connection machine) and the real HubConnection on
trio-websocket; faults come from the simulator's FaultInjector, as the real gateway would produce them. Times are
asserted exactly where the clock is ours (backoff delays, deadlines, thresholds).
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from engine.protocol.signalr import Close
from engine.realtime import (
    HubClosed,
    HubConnectionLost,
    HubEvents,
    HubGaveUp,
    HubManager,
    HubTimings,
    InvokeTimeout,
    ReconnectContext,
    market_hub,
)
from machines.connection import ConnectionState, Hook
from settings import SignalrSettings
from simulator.app import SimulatorApp
from simulator.bus import HubEvent as BusEvent
from simulator.faults import DROP_EVENTS, DUPLICATE_EVENTS, OUTAGE, STOP_PINGS, WS_CLOSE, WS_DROP
from simulator.gateway import SimulatedGateway
from tests.realtime.harness import (
    ACCOUNT,
    CONTRACT,
    MARKET_URL,
    USER_URL,
    MemoryConnector,
    Recorder,
    SimTokens,
    drain_events,
    next_event,
    only_server_connection,
    order_data,
    start,
)

OTHER = "CON.F.US.ENQ.Z26"
THIRD = "CON.F.US.MES.Z26"
Channel = tuple[trio.MemorySendChannel[HubEvents], trio.MemoryReceiveChannel[HubEvents]]


def _signalr(**sections: Any) -> SignalrSettings:
    return SignalrSettings(**sections)


def _user(tokens: SimTokens, connector: MemoryConnector, send: trio.MemorySendChannel[HubEvents],
          recorder: Recorder | None = None, **kwargs: Any) -> HubManager:
    kwargs.setdefault("rng", random.Random(7))
    return HubManager("user", USER_URL, tokens, send, connector=connector,
                      listeners=[recorder] if recorder is not None else [], **kwargs)


async def _subscribed_user(nursery: trio.Nursery, tokens: SimTokens, connector: MemoryConnector, capacity: int) \
        -> tuple[HubManager, trio.MemoryReceiveChannel[HubEvents]]:
    """A user hub watching ACCOUNT, connected and its subscriptions replayed, and the receive side of its sink
    (``capacity`` frames): the preamble of the event tests."""
    send, receive = trio.open_memory_channel[HubEvents](capacity)
    manager = _user(tokens, connector, send)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    return manager, receive


def _order(order_id: int, account_id: int = ACCOUNT) -> BusEvent:
    return BusEvent("user", "GatewayUserOrder", ({"action": 1, "data": order_data(order_id, account_id)},),
                    account_id=account_id)


def _quote(contract_id: str, **fields: Any) -> BusEvent:
    return BusEvent("market", "GatewayQuote", (contract_id, dict(fields)), contract_id=contract_id)


async def _reconnected(manager: HubManager, generation: int, within_s: float = 600.0) -> None:
    with trio.fail_after(within_s):
        await manager.wait_connected(generation)


# ----------------------------------------------------------------------------------------------- connect, hooks


async def test_connect_subscribes_delivers_events_and_fires_onconnected(nursery, app, gateway, tokens, connector,
                                                                        autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    hooks: list[str] = []
    for hook in Hook:
        manager.on(hook, lambda t, hook=hook: hooks.append(hook.value))
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    assert await manager.wait_connected() == 1
    await trio.sleep(0.1)
    subs = only_server_connection(app, "user").subscriptions
    assert subs.accounts and subs.orders == {ACCOUNT} and subs.positions == {ACCOUNT} and subs.trades == {ACCOUNT}
    gateway.bus.publish(_order(5))
    event = await next_event(receive)
    assert (event.hub, event.target, event.generation) == ("user", "GatewayUserOrder", 1)
    assert event.arguments == ({"action": 1, "data": order_data(5)},)
    assert hooks == ["onconnected"]
    assert recorder.events() == ["start", "connect_succeeded"]
    assert connector.attempts[0].token == tokens.token and connector.attempts[0].path == "/hubs/user"
    manager.close()
    await manager.wait_state(ConnectionState.CLOSED)
    assert hooks == ["onconnected", "onclose"]


async def test_first_connect_is_retried(nursery, app, gateway, tokens, connector, autojump_clock) -> None:
    gateway.faults.arm(OUTAGE, duration_s=5.0)
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    t0 = trio.current_time()
    await start(nursery, manager)
    await manager.wait_connected()
    assert [t - t0 for t in connector.times] == [0.0, 2.0, 12.0]  # 503, 503, then the outage is over
    assert recorder.events() == ["start", "attempt_failed", "attempt_failed", "connect_succeeded"]
    assert "HTTP 503" in recorder.causes("attempt_failed")[0]
    assert manager.lifecycle.reconnects == 0


async def test_backoff_delays_are_exact_then_gives_up_loudly_with_onclose(nursery, app, gateway, tokens, connector,
                                                                         autojump_clock, caplog) -> None:
    gateway.faults.arm(OUTAGE, duration_s=100_000.0)
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send, signalr=_signalr(reconnection={"max_attempts": 7}))
    closes: list[str | None] = []
    manager.on(Hook.ONCLOSE, lambda t: closes.append(t.cause))
    t0 = trio.current_time()
    running = await start(nursery, manager)
    await running.done.wait()
    gaps = [b - a for a, b in zip([t0, *connector.times], connector.times, strict=False)]
    assert gaps[:5] == [0.0, 2.0, 10.0, 30.0, 60.0]
    assert all(48.0 <= g <= 60.0 for g in gaps[5:]) and len(gaps) == 7
    assert isinstance(running.error, HubGaveUp)
    assert "7 connect attempts failed" in str(running.error) and "HTTP 503" in str(running.error)
    assert manager.state is ConnectionState.CLOSED and len(closes) == 1
    assert any(r.levelname == "ERROR" and "giving up" in r.getMessage() for r in caplog.records)
    assert tokens.token not in caplog.text


async def test_max_delay_with_jitter_stays_within_bounds(nursery, app, gateway, tokens, connector,
                                                         autojump_clock) -> None:
    gateway.faults.arm(OUTAGE, duration_s=100_000.0)
    send, _ = trio.open_memory_channel[HubEvents](100)
    cfg = _signalr(reconnection={"max_attempts": 40, "delays": [0], "max_delay_ms": 10_000})
    manager = _user(tokens, connector, send, signalr=cfg, jitter=0.25, rng=random.Random(3))
    running = await start(nursery, manager)
    await running.done.wait()
    gaps = [b - a for a, b in zip(connector.times, connector.times[1:], strict=False)]
    assert len(gaps) == 39
    assert all(7.5 <= g <= 10.0 for g in gaps)
    assert max(gaps) - min(gaps) > 1.0  # really jittered, not a constant


async def test_attempt_counter_resets_after_a_successful_reconnect(nursery, app, gateway, tokens, connector,
                                                                   autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    await start(nursery, manager)
    await manager.wait_connected()
    gateway.faults.arm(OUTAGE, duration_s=15.0)
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    lost_at = recorder.at("connection_lost")[0]
    fails = [t - lost_at for t in recorder.at("attempt_failed")]
    assert fails == [0.0, 2.0, 12.0]  # attempts 1..3 refused during the outage; attempt 4 (after 30 s) connects
    assert manager.lifecycle.attempt == 0 and manager.lifecycle.reconnects == 1
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 6)
    second_loss = recorder.at("connection_lost")[1]
    assert connector.times[-1] == second_loss  # attempt 1 again: no delay
    assert recorder.events()[-2:] == ["connection_lost", "reconnect_succeeded"]


# ----------------------------------------------------------------------------------------------- tokens


async def test_a_fresh_token_is_taken_at_every_attempt(nursery, app, gateway, tokens, connector,
                                                       autojump_clock) -> None:
    gateway.faults.arm(OUTAGE, duration_s=5.0)
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    manager.add_listener(lambda t: tokens.refresh() if t.event == "attempt_failed" else None)
    await start(nursery, manager)
    await manager.wait_connected()
    assert [a.token for a in connector.attempts] == tokens.issued[:3]
    assert len(set(tokens.issued[:3])) == 3


async def test_token_refresh_leads_to_a_planned_reconnect(nursery, app, gateway, tokens, connector,
                                                          autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(5)
    new_token = tokens.refresh()
    await _reconnected(manager, 2)
    assert connector.attempts[-1].token == new_token
    assert recorder.causes("connection_lost") == ["token refreshed: planned reconnect"]
    assert manager.planned_reconnects == 1 and manager.lifecycle.reconnects == 1
    await trio.sleep(2)  # subscriptions replayed on the new socket
    assert only_server_connection(app, "user").subscriptions.orders == {ACCOUNT}


async def test_401_at_the_upgrade_leads_to_relogin_before_the_next_attempt(nursery, app, gateway, tokens, connector,
                                                                           autojump_clock) -> None:
    gateway.tokens.expire_all()  # the provider's token is now refused at the upgrade
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    await start(nursery, manager)
    await manager.wait_connected()
    assert "HTTP 401" in recorder.causes("attempt_failed")[0]
    assert tokens.relogins == 1 and manager.relogins == 1
    assert [a.token for a in connector.attempts] == tokens.issued[:2]
    assert connector.times[1] - connector.times[0] == 2.0


async def test_gateway_logout_relogs_in_and_reconnects(nursery, app, gateway, tokens, connector,
                                                       autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    await start(nursery, manager)
    await manager.wait_connected()
    gateway.bus.publish(BusEvent("user", "GatewayLogout", ()))
    event = await next_event(receive)
    assert event.target == "GatewayLogout" and event.generation == 1  # passed on, not swallowed
    await _reconnected(manager, 2)
    assert tokens.relogins == 1
    assert connector.attempts[-1].token == tokens.issued[-1] != tokens.issued[0]
    assert "GatewayLogout" in recorder.causes("connection_lost")[0]


async def test_nothing_after_a_logout_is_delivered_on_that_socket(nursery, app, gateway, tokens, connector,
                                                                   autojump_clock) -> None:
    """A GatewayLogout ends its socket at once: an event the server pushed after it (in the same frame, since the
    hub writes what is queued together) is not delivered on that generation; the reconnect's reconciliation is what
    catches such an event up, not the dead socket."""
    send, receive = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)  # the subscriptions are replayed after connecting
    gateway.bus.publish(_order(41))
    gateway.bus.publish(BusEvent("user", "GatewayLogout", ()))
    gateway.bus.publish(_order(42))
    with trio.fail_after(60):
        batch = await receive.receive()  # the frame's events: one item, ending at the logout
    assert [e.target for e in batch] == ["GatewayUserOrder", "GatewayLogout"]
    await _reconnected(manager, 2)
    await trio.sleep(5)
    later = drain_events(receive)
    assert [e for e in later if e.generation == 1] == []


async def test_logout_storm_pauses_before_reconnecting(nursery, app, gateway, tokens, connector,
                                                       autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send, logout_storm=(2, 120.0))
    await start(nursery, manager)
    for generation in (1, 2, 3):
        await _reconnected(manager, generation)
        gateway.bus.publish(BusEvent("user", "GatewayLogout", ()))
        await next_event(receive, "GatewayLogout")
    await _reconnected(manager, 4)
    gaps = [b - a for a, b in zip(connector.times, connector.times[1:], strict=False)]
    assert gaps[0] < 1.0 and gaps[1] < 1.0  # the first logouts reconnect at once (after a re-login)
    assert 60.0 <= gaps[2] < 61.0  # the third logout within 2 minutes: wait maxDelay first


# ----------------------------------------------------------------------------------------------- closes and drops


async def test_close_with_allow_reconnect_true_reconnects(nursery, app, gateway, tokens, connector,
                                                          autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    hooks: list[str] = []
    manager.on(Hook.ONRECONNECTING, lambda t: hooks.append("reconnecting"))
    manager.on(Hook.ONRECONNECTED, lambda t: hooks.append("reconnected"))
    await start(nursery, manager)
    await manager.wait_connected()
    gateway.faults.arm(WS_CLOSE, params={"hub": "user"})
    await _reconnected(manager, 2)
    cause = recorder.causes("connection_lost")[0]
    assert "Connection closed with an error." in cause and "allowReconnect=True" in cause
    assert hooks == ["reconnecting", "reconnected"]


async def test_close_without_allow_reconnect_closes_the_hub(nursery, app, gateway, tokens, connector,
                                                            autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    closes: list[str | None] = []
    manager.on(Hook.ONCLOSE, lambda t: closes.append(t.cause))
    running = await start(nursery, manager)
    await manager.wait_connected()
    await only_server_connection(app, "user").close_quietly(Close("Server is shutting down."), 1000)
    await running.done.wait()
    assert isinstance(running.error, HubClosed) and not isinstance(running.error, HubGaveUp)
    assert "Server is shutting down." in str(running.error)
    assert manager.state is ConnectionState.CLOSED and len(closes) == 1
    assert len(connector.attempts) == 1  # no reconnect


async def test_ws_drop_reconnects_and_old_socket_work_cannot_touch_the_new_one(nursery, app, gateway, tokens,
                                                                               connector, autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    old = manager.connection
    assert old is not None
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    assert "1006" in recorder.causes("connection_lost")[0]
    with pytest.raises(HubConnectionLost):
        await old.invoke("SubscribeAccounts")  # a stale reference belongs to generation 1 and stays dead
    await trio.sleep(2)
    gateway.bus.publish(_order(9))
    assert (await next_event(receive)).generation == 2


# ----------------------------------------------------------------------------------------------- health


async def test_stop_pings_is_detected_within_the_stale_threshold_and_recovers(nursery, app, gateway, tokens,
                                                                             connector, autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(7)
    armed_at = trio.current_time()
    gateway.faults.arm(STOP_PINGS, duration_s=200.0)
    await manager.wait_state(ConnectionState.RECONNECTING)
    detected_after = recorder.at("connection_lost")[0] - armed_at
    assert detected_after <= 30.0 < 120.0  # the 30 s server timeout fires well inside staleThreshold
    assert "server timeout" in recorder.causes("connection_lost")[0]
    await _reconnected(manager, 2, within_s=600)
    assert trio.current_time() >= armed_at + 200.0  # handshakes went unanswered while the server was silent
    assert "no handshake answer" in recorder.causes("attempt_failed")[0]


async def test_stale_watchdog_forces_a_reconnect_after_stale_threshold(nursery, app, gateway, tokens, connector,
                                                                       autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    cfg = _signalr(health={"ping_interval": 10_000, "ping_timeout": 2_000, "stale_threshold": 45_000})
    manager = _user(tokens, connector, send, recorder, signalr=cfg, timings=HubTimings(server_timeout_s=None))
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(20)
    conn = manager.connection
    assert conn is not None
    gateway.faults.arm(STOP_PINGS, duration_s=100.0)
    last_heard = conn.last_received_at
    await manager.wait_state(ConnectionState.RECONNECTING)
    assert recorder.events()[-1] == "heartbeat_missed"  # the machine's stale transition
    assert recorder.at("heartbeat_missed") == [last_heard + 45.0]
    assert manager.stale_reconnects == 1 and manager.heartbeats_missed >= 2


async def test_quiet_user_hub_stays_connected_on_pings_alone(nursery, app, gateway, tokens, connector,
                                                             autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(2 * 3600)  # a flat account: no event for hours
    health = manager.health()
    assert health.state is ConnectionState.CONNECTED and health.generation == 1 and health.reconnects == 0
    assert health.events_received == 0 and health.last_message_age_s is not None
    assert health.last_message_age_s <= 15.0  # server pings keep arriving


async def test_heartbeat_latency_is_measured(nursery, app, gateway, tokens, connector, autojump_clock) -> None:
    connector.send_delay_s = 0.25  # every frame we write takes 250 ms to leave
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    await start(nursery, manager)
    await manager.wait_connected()
    assert manager.health().latency_s is None
    await trio.sleep(31)
    health = manager.health()
    assert health.heartbeats_sent == 1 and health.heartbeats_missed == 0
    assert health.latency_s is not None and 0.25 <= health.latency_s <= 0.5


async def test_market_feed_watchdog_reconnects_a_silent_feed(nursery, app, gateway, tokens, connector,
                                                             autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    cfg = _signalr(health={"ping_interval": 30_000, "ping_timeout": 5_000, "stale_threshold": 60_000})
    manager = market_hub(MARKET_URL, tokens, send, connector=connector, signalr=cfg, listeners=[recorder],
                         market_hours=None)  # around the clock: market hours are test_market_hours.py's
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(200)  # no contracts subscribed: silence of the feed is expected
    assert manager.generation == 1
    t0 = trio.current_time()
    manager.set_market_contracts({CONTRACT})
    await manager.wait_state(ConnectionState.RECONNECTING)
    assert recorder.at("heartbeat_missed") == [t0 + 60.0]
    assert "stale feed" in recorder.causes("heartbeat_missed")[0]


# ----------------------------------------------------------------------------------------------- subscriptions


async def test_resubscribe_after_resubscribe_delay_replays_every_subscription(nursery, app, gateway, tokens,
                                                                              connector, autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    manager.set_accounts([ACCOUNT, 1002])
    await start(nursery, manager)
    await manager.wait_connected()
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(0.9)
    assert only_server_connection(app, "user").subscriptions.orders == set()  # still waiting: resubscribeDelay 1 s
    await trio.sleep(0.2)
    subs = only_server_connection(app, "user").subscriptions
    assert subs.accounts and subs.orders == subs.positions == subs.trades == {ACCOUNT, 1002}
    assert manager.health().subscriptions == 7


async def test_auto_resubscribe_off_waits_for_an_explicit_resubscribe(nursery, app, gateway, tokens, connector,
                                                                      autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    cfg = _signalr(subscriptions={"auto_resubscribe": False})
    manager = _user(tokens, connector, send, signalr=cfg)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    assert only_server_connection(app, "user").subscriptions.orders == {ACCOUNT}  # the first connect subscribes
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(30)
    assert only_server_connection(app, "user").subscriptions.orders == set()
    manager.resubscribe()
    await trio.sleep(0.1)
    assert only_server_connection(app, "user").subscriptions.orders == {ACCOUNT}


async def test_market_contract_set_changes_live_and_after_reconnect(nursery, app, gateway, tokens, connector,
                                                                    autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = market_hub(MARKET_URL, tokens, send, connector=connector)
    manager.set_market_contracts({CONTRACT, OTHER})
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    assert only_server_connection(app, "market").subscriptions.quotes == {CONTRACT, OTHER}
    sent_before = len(connector.sent)
    manager.set_market_contracts({OTHER, THIRD})
    await trio.sleep(0.1)
    assert only_server_connection(app, "market").subscriptions.quotes == {OTHER, THIRD}
    calls = [s for s in connector.sent[sent_before:] if "Contract" in s]
    assert len(calls) == 2  # only the difference: unsubscribe CONTRACT, subscribe THIRD
    assert "UnsubscribeContractQuotes" in calls[0] and "SubscribeContractQuotes" in calls[1]
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(1.1)
    assert only_server_connection(app, "market").subscriptions.quotes == {OTHER, THIRD}
    assert manager.market_contracts == {OTHER, THIRD}


# ----------------------------------------------------------------------------------------------- the reconciler


async def test_reconciler_runs_in_the_socket_scope_and_is_cancelled_when_the_socket_drops(
        nursery, app, gateway, tokens, connector, autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    runs: list[dict[str, Any]] = []

    async def reconcile(ctx: ReconnectContext) -> None:
        run: dict[str, Any] = {"ctx": ctx, "started": trio.current_time(), "end": None}
        runs.append(run)
        try:
            await trio.sleep(100)  # a slow REST sync
            run["end"] = "finished"
        except trio.Cancelled:
            run["end"] = "cancelled"
            run["current_at_cancel"] = ctx.is_current()
            run["cancelled_at"] = trio.current_time()
            raise

    manager = _user(tokens, connector, send, recorder, on_reconnected=reconcile, reconcile_initial=True)
    manager.set_accounts([ACCOUNT])
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(5)
    assert len(runs) == 1 and runs[0]["ctx"].initial and runs[0]["ctx"].generation == 1
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(1.5)
    assert runs[0]["end"] == "cancelled" and runs[0]["current_at_cancel"] is False
    assert runs[0]["cancelled_at"] == recorder.at("connection_lost")[0]
    second = runs[1]
    assert not second["ctx"].initial and second["ctx"].generation == 2 and second["ctx"].reconnects == 1
    assert second["started"] == recorder.at("reconnect_succeeded")[0] + 1.0  # after the replay (resubscribeDelay)
    assert only_server_connection(app, "user").subscriptions.orders == {ACCOUNT}  # subscribed before the sync
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 3)
    await trio.sleep(200)
    assert [r["end"] for r in runs] == ["cancelled", "cancelled", "finished"]
    assert manager.reconcile_runs == 3 and manager.reconcile_failures == 0


async def test_a_failing_reconciler_is_counted_and_the_hub_keeps_running(nursery, app, gateway, tokens, connector,
                                                                        autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)

    async def reconcile(ctx: ReconnectContext) -> None:
        raise RuntimeError("REST unavailable")

    manager = _user(tokens, connector, send, on_reconnected=reconcile)
    await start(nursery, manager)
    await manager.wait_connected()
    assert manager.reconcile_runs == 0  # not after the first connect unless asked
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(2)
    assert manager.reconcile_runs == 1 and manager.reconcile_failures == 1
    assert manager.state is ConnectionState.CONNECTED


# ----------------------------------------------------------------------------------------------- invocations


async def test_invoke_deadline(nursery, app, gateway, tokens, connector, autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    await start(nursery, manager)
    await manager.wait_connected()
    assert await manager.invoke("SubscribeAccounts") is None
    gateway.faults.arm(STOP_PINGS, duration_s=100.0)  # the server stops answering
    t0 = trio.current_time()
    with pytest.raises(InvokeTimeout) as info:
        await manager.invoke("SubscribeOrders", ACCOUNT, deadline_s=2.5)
    assert trio.current_time() - t0 == 2.5
    assert info.value.target == "SubscribeOrders"


async def test_pending_invokes_fail_when_the_socket_drops(nursery, app, gateway, tokens, connector,
                                                          autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    await start(nursery, manager)
    await manager.wait_connected()
    gateway.faults.arm(STOP_PINGS, duration_s=100.0)
    failures: list[tuple[float, BaseException]] = []

    async def call(account_id: int) -> None:
        try:
            await manager.invoke("SubscribeOrders", account_id, deadline_s=60.0)
        except HubConnectionLost as exc:
            failures.append((trio.current_time(), exc))

    t0 = trio.current_time()
    async with trio.open_nursery() as calls:
        for account_id in range(3):
            calls.start_soon(call, account_id)
        await trio.sleep(0.5)
        assert manager.connection is not None and manager.connection.pending_invocations == 3
        gateway.faults.arm(WS_DROP)
    assert len(failures) == 3
    assert all(at - t0 <= 2.0 for at, _ in failures)  # at the drop, not at the 60 s deadline


async def test_writes_are_serialized(nursery, app, gateway, tokens, connector, autojump_clock) -> None:
    connector.send_delay_s = 0.01
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    await start(nursery, manager)
    await manager.wait_connected()
    results: list[Any] = []

    async def call(account_id: int) -> None:
        results.append(await manager.invoke("SubscribeOrders", account_id))

    async with trio.open_nursery() as calls:
        for account_id in range(50):
            calls.start_soon(call, account_id)
        calls.start_soon(manager.send, "SubscribeAccounts")
    assert results == [None] * 50
    assert connector.max_writers == 1
    assert only_server_connection(app, "user").subscriptions.orders == set(range(50))


async def test_a_message_over_one_mib_arrives_intact(nursery, app, gateway, tokens, connector,
                                                     autojump_clock) -> None:
    manager, receive = await _subscribed_user(nursery, tokens, connector, 100)
    big = "x" * (3 * 1024 * 1024 // 2)
    gateway.bus.publish(BusEvent("user", "GatewayUserOrder", ({"action": 1, "data": order_data(1, customTag=big)},),
                                 account_id=ACCOUNT))
    event = await next_event(receive)
    assert event.arguments[0]["data"]["customTag"] == big
    assert min(connector.max_message_sizes) >= 1024 * 1024
    assert manager.generation == 1


# ----------------------------------------------------------------------------------------------- events


async def test_the_events_of_one_frame_reach_the_sink_as_one_batch_in_order(nursery, app, gateway, tokens, connector,
                                                                             autojump_clock) -> None:
    """The server writes what it has queued as one frame; the sink gets that frame's events as ONE item, in order,
    stamped with the generation and the time the frame was read."""
    manager, receive = await _subscribed_user(nursery, tokens, connector, 100)
    for order_id in range(1, 9):
        gateway.bus.publish(_order(order_id))
    with trio.fail_after(60):
        batch = await receive.receive()
    assert isinstance(batch, tuple)
    assert [e.arguments[0]["data"]["id"] for e in batch] == list(range(1, 9))
    assert {(e.hub, e.generation, e.received_at) for e in batch} == {("user", 1, batch[0].received_at)}
    assert manager.events_received == 8


async def test_duplicate_and_dropped_events_are_passed_on_faithfully_in_order(nursery, app, gateway, tokens,
                                                                              connector, autojump_clock) -> None:
    _, receive = await _subscribed_user(nursery, tokens, connector, 1000)
    for order_id in range(1, 21):
        if order_id == 5:
            gateway.faults.arm(DUPLICATE_EVENTS)
        if order_id == 9:
            gateway.faults.arm(DROP_EVENTS)
        gateway.bus.publish(_order(order_id))
        await trio.sleep(0.01)
    received = [(await next_event(receive)).arguments[0]["data"]["id"] for _ in range(20)]
    expected = [i for i in range(1, 21) if i != 9]
    expected.insert(expected.index(5), 5)
    assert received == expected  # the duplicate is delivered as sent, the dropped one is simply absent


async def test_user_events_are_never_dropped_under_a_slow_consumer(nursery, app, gateway, tokens, connector,
                                                                   autojump_clock) -> None:
    _, receive = await _subscribed_user(nursery, tokens, connector, 4)  # a small sink: back-pressure, not loss
    for order_id in range(500):
        gateway.bus.publish(_order(order_id))
    received = []
    for _ in range(500):
        received.append((await next_event(receive)).arguments[0]["data"]["id"])
        await trio.sleep(0.001)
    assert received == list(range(500))


async def test_market_quotes_coalesce_latest_per_contract_wins(nursery, app, gateway, tokens, connector,
                                                               autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](0)
    manager = market_hub(MARKET_URL, tokens, send, connector=connector)
    manager.set_market_contracts({CONTRACT, OTHER})
    await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    for i in range(100):
        gateway.bus.publish(_quote(CONTRACT, lastPrice=6300.0 + i))
    gateway.bus.publish(_quote(CONTRACT, bestBid=6398.75))  # a partial quote: only the changed field
    gateway.bus.publish(_quote(OTHER, lastPrice=23100.0))
    await trio.sleep(1)  # nobody reads meanwhile
    quotes: dict[str, dict[str, Any]] = {}
    count = 0
    with trio.move_on_after(5):
        while True:
            batch = await receive.receive()
            assert len(batch) == 1  # the market hub's pump sends one (coalesced) event per item
            event = batch[0]
            count += 1
            quotes.setdefault(event.arguments[0], {}).update(event.arguments[1])
    assert quotes[CONTRACT] == {"lastPrice": 6399.0, "bestBid": 6398.75}
    assert quotes[OTHER] == {"lastPrice": 23100.0}
    assert count < 102


# ----------------------------------------------------------------------------------------------- observability


async def test_every_transition_is_observable_and_health_is_a_snapshot(nursery, app, gateway, tokens, connector,
                                                                       autojump_clock) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    manager = _user(tokens, connector, send, recorder)
    running = await start(nursery, manager)
    await manager.wait_connected()
    gateway.faults.arm(WS_DROP)
    await _reconnected(manager, 2)
    await trio.sleep(10)
    health = manager.health()
    assert health.hub == "user" and health.connected and health.generation == 2 and health.reconnects == 1
    assert health.connected_for_s is not None and 10.0 <= health.connected_for_s <= 11.0
    assert health.last_disconnect is not None and "1006" in health.last_disconnect
    manager.close("test over")
    await running.done.wait()
    assert running.error is None
    assert recorder.events() == ["start", "connect_succeeded", "connection_lost", "reconnect_succeeded", "close"]
    assert {t.machine for _, t in recorder.transitions} == {"hub:user"}
    assert recorder.transitions[-1][1].cause == "test over"
    assert manager.health().state is ConnectionState.CLOSED and manager.health().last_message_age_s is None


async def test_cancelling_the_manager_closes_the_machine(app: SimulatorApp, gateway: SimulatedGateway,
                                                         tokens: SimTokens, connector: MemoryConnector,
                                                         autojump_clock: Any) -> None:
    send, _ = trio.open_memory_channel[HubEvents](100)
    manager = _user(tokens, connector, send)
    async with trio.open_nursery() as inner:
        await inner.start(manager.run)
        await manager.wait_connected()
        inner.cancel_scope.cancel()
    assert manager.state is ConnectionState.CLOSED
    with pytest.raises(RuntimeError):
        await manager.run()


async def test_a_closed_event_sink_closes_the_hub_quietly(nursery, app, gateway, tokens, connector,
                                                          autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](10)
    manager = _user(tokens, connector, send)
    manager.set_accounts([ACCOUNT])
    running = await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    receive.close()  # the consumer is gone (shutdown)
    gateway.bus.publish(_order(1))
    await running.done.wait()
    assert running.error is None and manager.state is ConnectionState.CLOSED
    assert len(connector.attempts) == 1


async def test_a_closed_market_sink_closes_the_market_hub_quietly(nursery, app, gateway, tokens, connector,
                                                                  autojump_clock) -> None:
    send, receive = trio.open_memory_channel[HubEvents](10)
    manager = market_hub(MARKET_URL, tokens, send, connector=connector)
    manager.set_market_contracts({CONTRACT})
    running = await start(nursery, manager)
    await manager.wait_connected()
    await trio.sleep(0.1)
    receive.close()
    gateway.bus.publish(_quote(CONTRACT, lastPrice=1.0))
    await running.done.wait()
    assert running.error is None and manager.state is ConnectionState.CLOSED
