"""The real user hub path delivers its usual events read into records (engine.realtime.user_hub with the codec's
``read_typed``, engine.protocol.user_events), and everything else as dicts the mirror reads defensively. The manager
and the simulator run for real, in memory, in virtual time."""

from __future__ import annotations

from typing import Any

import trio

from engine.protocol.records import OrderModel
from engine.protocol.user_events import StreamPayload
from engine.realtime import HubEvents, ReconnectContext, user_hub
from engine.state.mirror import StateMirror
from simulator.app import SimulatorApp
from simulator.bus import HubEvent as BusEvent
from simulator.gateway import SimulatedGateway
from tests.realtime.harness import (
    ACCOUNT,
    USER_URL,
    MemoryConnector,
    SimTokens,
    next_event,
    only_server_connection,
    order_data,
)


async def test_a_full_order_arrives_as_a_record_and_an_incomplete_one_as_dicts(
        autojump_clock: Any, nursery: trio.Nursery, app: SimulatorApp, gateway: SimulatedGateway, tokens: SimTokens,
        connector: MemoryConnector) -> None:
    send, receive = trio.open_memory_channel[HubEvents](100)
    subscribed = trio.Event()

    async def on_reconnected(ctx: ReconnectContext) -> None:
        subscribed.set()  # runs once the subscriptions are replayed

    manager = user_hub(USER_URL, tokens, send, connector=connector, on_reconnected=on_reconnected,
                       reconcile_initial=True)
    manager.set_accounts([ACCOUNT])
    await nursery.start(manager.run)
    with trio.fail_after(10):
        await subscribed.wait()
    assert only_server_connection(app, "user").subscriptions.orders == {ACCOUNT}

    full = order_data(3, creationTimestamp="2026-05-06T13:36:03.4962795+00:00")
    gateway.bus.publish(BusEvent("user", "GatewayUserOrder", ({"action": 1, "data": full},), account_id=ACCOUNT))
    typed = await next_event(receive, "GatewayUserOrder")
    (payload,) = typed.arguments
    assert type(payload) is StreamPayload and type(payload.data) is OrderModel
    assert payload.data == OrderModel.model_validate(full) and payload.action == 1

    incomplete = order_data(4)  # no creationTimestamp: its record refuses it, so the codec reads dicts
    gateway.bus.publish(BusEvent("user", "GatewayUserOrder", ({"action": 1, "data": incomplete},),
                                 account_id=ACCOUNT))
    general = await next_event(receive, "GatewayUserOrder")
    assert general.arguments == ({"action": 1, "data": incomplete},)

    mirror = StateMirror()
    mirror.on_user_event(typed.target, typed.arguments)
    mirror.on_user_event(general.target, general.arguments)
    assert [order.id for order in mirror.working_orders()] == [3]
    assert mirror.counters.malformed == 1 and mirror.counters.applied == {"GatewayUserOrder": 1}
    manager.close()
