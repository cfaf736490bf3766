"""Seed integration test 2: connected, network cut, an order placed through a separate channel, network back: the
reconciler reports the order and the mirror holds it.

Driven through the real hub path: the simulator's hubs over the in-memory websocket connector, the engine's user-hub
connection manager (fault ``ws_drop`` cuts the socket without a close frame), the dispatcher into the mirror, and
the reconciler as the manager's ``on_reconnected`` hook, with its REST reads through the GatewayClient. Virtual time.
"""

from __future__ import annotations

import trio

from engine.gateway.testing import simulated_client
from engine.protocol.enums import OrderSide, OrderType
from engine.protocol.models import PlaceOrderRequest
from engine.realtime import HubEvents, ReconnectContext, user_hub
from engine.state.changes import Change, OrderChanged
from engine.state.dispatch import feed_mirror
from engine.state.gateway_source import GatewayClientSource
from engine.state.mirror import StateMirror
from engine.state.reconciler import Reconciler, ReconcilerConfig, ReconcileReport
from engine.store import open_store
from machines.connection import ConnectionState
from settings import load_settings
from simulator.app import build_app
from tests.realtime.harness import USER_URL, MemoryConnector, SimTokens
from tests.state.simfeed import ACCOUNT, ES, quiet_config


async def arrival(mirror: StateMirror, order_id: int) -> None:
    """Return once the mirror holds ``order_id`` (woken by the mirror's own change notification)."""
    arrived = trio.Event()

    def on_change(change: Change) -> None:
        if isinstance(change, OrderChanged) and change.order_id == order_id:
            arrived.set()

    unsubscribe = mirror.subscribe(on_change)
    try:
        if mirror.order(order_id) is None:
            await arrived.wait()
    finally:
        unsubscribe()


async def test_an_order_placed_while_the_user_hub_was_down_is_reconciled(autojump_clock: trio.abc.Clock) -> None:
    async with simulated_client(quiet_config()) as sim, open_store("sqlite://", threads=False) as store:
        mirror = StateMirror(watch_accounts=[ACCOUNT])
        changes: list[Change] = []
        mirror.subscribe(changes.append)
        reconciler = Reconciler(mirror, GatewayClientSource(sim.client), config=ReconcilerConfig(),
                                wall_clock=sim.gateway.clock, findings=store.journal, account_ids=[ACCOUNT])
        reports_send, reports = trio.open_memory_channel[ReconcileReport](10)

        async def on_reconnected(context: ReconnectContext) -> None:
            await reconciler.on_reconnected(context)
            assert reconciler.last_report is not None
            await reports_send.send(reconciler.last_report)

        events_send, events = trio.open_memory_channel[HubEvents](1000)
        signalr = load_settings(env={}, overrides={"signalr": {"reconnection": {"delays": [3000, 3000]}}}).signalr
        manager = user_hub(USER_URL, SimTokens(sim.gateway), events_send, connector=MemoryConnector(
            build_app(sim.gateway)), signalr=signalr, on_reconnected=on_reconnected, reconcile_initial=True)
        manager.set_accounts([ACCOUNT])
        sim.nursery.start_soon(feed_mirror, mirror, events)
        await sim.nursery.start(manager.run)

        initial = await reports.receive()
        assert initial.reason == "startup" and initial.complete and initial.findings == ()

        async def place(tag: str) -> int:
            outcome = await sim.client.place_order(PlaceOrderRequest(
                account_id=ACCOUNT, contract_id=ES, type=int(OrderType.LIMIT), side=int(OrderSide.BID), size=1,
                limit_price=6000.0, custom_tag=tag))
            assert outcome.order_id is not None
            return outcome.order_id

        # connected: an order arrives over the stream
        seen_live = await place("while-connected")
        with trio.fail_after(5):
            await arrival(mirror, seen_live)

        # network cut, then an order through a separate channel (REST) while the hub is down
        sim.gateway.faults.arm("ws_drop", params={"hub": "user"})
        await manager.wait_state(ConnectionState.RECONNECTING)
        missed = await place("placed-elsewhere")
        assert mirror.order(missed) is None

        # network back: the manager reconnects, resubscribes and runs the reconciler
        with trio.fail_after(60):
            report = await reports.receive()
        assert report.reason == "reconnect" and report.complete
        assert manager.lifecycle.reconnects == 1
        created = [f for f in report.findings if f.kind == "missed_order_created"]
        assert [f.details["orderId"] for f in created] == [missed]
        assert created[0].details["customTag"] == "placed-elsewhere"
        assert [f.details["orderId"] for f in report.findings if "orderId" in f.details] == [missed]

        held = mirror.order(missed)
        assert held is not None and held.custom_tag == "placed-elsewhere"
        assert sorted(o.id for o in mirror.working_orders(ACCOUNT)) == [seen_live, missed]
        sources = {c.order_id: c.source for c in changes if isinstance(c, OrderChanged)}
        assert sources == {seen_live: "stream", missed: "reconcile"}

        # the finding is journalled as a missed event
        await store.flush()
        rows = await store.history("reconcile")
        assert [(r["kind"], r["account_id"]) for r in rows] == [("missed_order_created", ACCOUNT)]

        # and the stream keeps flowing after the reconnect
        after = await place("after-reconnect")
        with trio.fail_after(5):
            await arrival(mirror, after)
        manager.close()
