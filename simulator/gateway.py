"""The simulated Gateway: the one authoritative truth that REST, the hubs and ``/_sim/state`` all read.

It composes the pieces (tokens, fault injector, market price process, trading book, event bus) and runs their
background work (price ticks, working orders triggering and filling, fault schedules) on the Trio clock. Every change
is published on :attr:`bus` as a :class:`~simulator.bus.HubEvent` shaped exactly as it goes on the wire, so the hubs
are a thin filter-and-send layer.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from engine.protocol.timebase import WallClock
from simulator.bus import EventBus
from simulator.config import SimConfig
from simulator.faults import EXPIRE_TOKENS, REVOKE_TOKENS, FaultInjector
from simulator.tokens import TokenService

log = logging.getLogger(__name__)


class SimulatedGateway:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.clock = WallClock(self.config.epoch)
        self.bus = EventBus()
        self.faults = FaultInjector(self.config.seed, self.clock)
        self.tokens = TokenService(self.clock, self.config.jwt_secret, self.config.token_ttl_s)

    def apply_token_faults(self) -> None:
        """Consume armed token faults (called per REST request and on every tick)."""
        if self.faults.take(EXPIRE_TOKENS) is not None:
            self.tokens.expire_all()
        if self.faults.take(REVOKE_TOKENS) is not None:
            self.tokens.revoke_all()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.faults.run_profile, self.config.fault_profile)
            task_status.started()
            while True:
                await trio.sleep(self.config.tick_interval_s)
                self.apply_token_faults()

    def snapshot(self) -> dict[str, Any]:
        """The ``/_sim/state`` body: accounts, orders, positions, trades with Gateway field names."""
        return {"accounts": [], "orders": [], "positions": [], "trades": []}

    def burst(self, account_id: int, n: int) -> None:
        """Publish ``n`` realistic user-hub events for ``account_id`` (benchmarks)."""
