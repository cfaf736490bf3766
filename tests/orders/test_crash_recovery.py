"""A crash (the whole engine nursery cancelled mid-send, the disk frozen at that instant) during a stream of intents,
then a restart: ``recover()`` resolves every intent against the simulator, with no duplicate and nothing lost.

The store's own kill -9 test (tests/store/test_crash.py) proves the database stays consistent under a real SIGKILL;
here the point is the order path: intents committed as ``submitted`` whose outcome the crash swallowed.
"""

from __future__ import annotations

import pytest
import trio
from sqlalchemy import text
from trio.testing import MockClock

from engine.orders import IntentResult
from engine.protocol.enums import OrderSide
from engine.store import UNRESOLVED_STATUSES, open_store
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from tests.orders.harness import EPOCH, freezable_store, limit, market, order_harness


@pytest.mark.parametrize("crash_at", [0.05, 0.7, 1.3, 2.2, 4.5])
async def test_crash_during_a_stream_of_intents_then_recover_resolves_every_intent(
    crash_at: float, tmp_path: object, autojump_clock: MockClock
) -> None:
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway = SimulatedGateway(SimConfig(epoch=EPOCH, publish_market_data=False, partial_fill_parts=2))
    results: list[IntentResult] = []
    async with freezable_store(db) as (store, writer):
        with trio.CancelScope() as crash:
            async with order_harness(store=store, gateway=gateway) as h:
                gateway.faults.arm("delay", count=None, probability=0.7, params={"seconds": 2.0})

                async def one(i: int) -> None:
                    intent = market(1 + i % 2) if i % 3 else limit(6000.0, 1, OrderSide.BID)
                    results.append(await h.manager.place(intent))

                async def stream_of_intents() -> None:
                    for i in range(8):
                        h.nursery.start_soon(one, i)
                        await trio.sleep(0.3)

                h.nursery.start_soon(stream_of_intents)
                await trio.sleep(crash_at)
                writer.cancel()  # the disk freezes here ...
                crash.cancel()  # ... and the process dies
    gateway.faults.disarm()

    async with open_store(db, threads=False) as reopened:
        with reopened.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        left = await reopened.unresolved_intents()
        async with order_harness(store=reopened, gateway=gateway) as h:  # run() = recover() first
            rows = {r["custom_tag"]: r for r in await reopened.history("orders")}
            assert await reopened.unresolved_intents() == []
            counts = h.tag_counts()
            assert all(n == 1 for n in counts.values()), counts
            for order in h.sim_orders():  # nothing lost: every order placed is a resolved intent with its id
                assert order["customTag"] in rows
                assert rows[order["customTag"]]["gateway_order_id"] == order["id"]
            for tag, row in rows.items():
                assert row["status"] not in UNRESOLVED_STATUSES
                if tag not in counts:
                    assert row["status"] in ("rejected", "absent"), row
            assert len(rows) >= len(left)
