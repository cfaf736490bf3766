"""The hubs with the real token manager (engine.auth) over the simulator: a refresh is a planned reconnect, and a
token the server revoked is renewed through the manager before the next attempt. Virtual time."""

from __future__ import annotations

from typing import Any

import trio

from engine.gateway.testing import simulated_client
from engine.realtime import HubEvents, user_hub
from engine.realtime.auth import TokenManagerProvider
from simulator.app import build_app
from simulator.faults import WS_DROP
from tests.realtime.harness import USER_URL, MemoryConnector, Recorder, only_server_connection


async def test_refresh_reconnects_and_a_revoked_token_is_renewed_through_the_manager(autojump_clock: Any) -> None:
    async with simulated_client() as sim:
        app = build_app(sim.gateway)
        connector = MemoryConnector(app)
        provider = TokenManagerProvider(sim.client.tokens)
        send, _ = trio.open_memory_channel[HubEvents](100)
        recorder = Recorder()
        manager = user_hub(USER_URL, provider, send, connector=connector, listeners=[recorder])
        manager.set_accounts([1001])
        await sim.nursery.start(manager.run)
        await manager.wait_connected()
        first = provider.revision
        assert first >= 1 and sim.client.tokens.logins == 1

        await sim.client.tokens.refresh_now()  # Auth/validate: a new token is announced
        await manager.wait_connected(2)
        assert provider.revision > first
        assert recorder.causes("connection_lost") == ["token refreshed: planned reconnect"]
        assert connector.attempts[-1].token == (await sim.client.tokens.current()).token

        revision = provider.revision
        sim.gateway.tokens.revoke_all()  # the server no longer accepts it: the next upgrade gets 401
        sim.gateway.faults.arm(WS_DROP)
        await manager.wait_connected(4)
        assert "HTTP 401" in recorder.causes("attempt_failed")[0]
        assert provider.revision > revision
        await trio.sleep(2)
        assert only_server_connection(app, "user").subscriptions.orders == {1001}
        manager.close()
