"""The hub manager over real loopback sockets (trio_websocket.open_websocket_url) against the simulator served by
hypercorn: the default connector, the http -> ws URL, a 401 at the upgrade, events, and a Close-driven reconnect.

Real sockets and real time: short, and marked ``system``.
"""

from __future__ import annotations

import pytest
import trio

from engine.realtime import HubEvents, HubManager, ReconnectContext
from settings import SignalrSettings
from simulator.app import build_app
from simulator.bus import HubEvent as BusEvent
from simulator.config import SimConfig
from simulator.faults import WS_CLOSE
from simulator.gateway import SimulatedGateway
from simulator.hubs import HubOptions
from simulator.server import serve
from tests.realtime.harness import ACCOUNT, Recorder, SimTokens, next_event, order_data

pytestmark = pytest.mark.system


async def test_user_hub_over_real_sockets(nursery: trio.Nursery) -> None:
    gateway = SimulatedGateway(SimConfig(publish_market_data=False))
    app = build_app(gateway, HubOptions(fault_poll_s=0.05))
    base: str = await nursery.start(lambda task_status: serve(gateway, app=app, task_status=task_status))
    assert base.startswith("http://127.0.0.1:")
    tokens = SimTokens(gateway)
    gateway.tokens.expire_all()  # the first upgrade is refused with 401: re-login, then connect
    send, receive = trio.open_memory_channel[HubEvents](100)
    recorder = Recorder()
    cfg = SignalrSettings(reconnection={"delays": [0, 100]}, subscriptions={"resubscribe_delay": 0})
    synced = trio.Event()

    async def initial_sync(ctx: ReconnectContext) -> None:
        synced.set()  # runs once the subscriptions are replayed

    manager = HubManager("user", f"{base}/hubs/user", tokens, send, signalr=cfg, listeners=[recorder],
                         on_reconnected=initial_sync, reconcile_initial=True)
    manager.set_accounts([ACCOUNT])
    with trio.fail_after(10):
        await nursery.start(manager.run)
        await manager.wait_connected()
        assert "HTTP 401" in recorder.causes("attempt_failed")[0] and tokens.relogins == 1
        await synced.wait()
        gateway.bus.publish(BusEvent("user", "GatewayUserOrder", ({"action": 1, "data": order_data(3)},),
                                     account_id=ACCOUNT))
        event = await next_event(receive)
        assert event.target == "GatewayUserOrder" and event.arguments[0]["data"]["id"] == 3
        generation = manager.generation
        gateway.faults.arm(WS_CLOSE, params={"hub": "user"})
        await manager.wait_connected(generation + 1)
        assert "allowReconnect=True" in recorder.causes("connection_lost")[0]
        manager.close()
