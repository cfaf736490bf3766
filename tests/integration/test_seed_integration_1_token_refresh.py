"""Seed integration test 1: the token is refreshed while operations run, and not one of them fails."""

from __future__ import annotations

from datetime import timedelta

import trio

from engine.gateway.testing import SIM_EPOCH, simulated_client
from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderType
from simulator.config import SimConfig


async def test_token_refresh_during_active_operations_has_zero_failures(autojump_clock: object) -> None:
    # 3 h tokens, refresh 2 h before expiry: the proactive refresh falls in the middle of the workload.
    async with simulated_client(SimConfig(epoch=SIM_EPOCH, token_ttl_s=3 * 3600)) as sim:
        client = sim.client
        channel = client.tokens.subscribe()
        failures: list[BaseException] = []
        done = 0

        async def worker(account_id: int) -> None:
            nonlocal done
            for i in range(80):  # one request every 30 s for 40 min, across the refresh at t = 1 h
                try:
                    if i % 10 == 0:
                        outcome = await client.place_order(m.PlaceOrderRequest(
                            account_id=account_id, contract_id="CON.F.US.EP.Z26", type=int(OrderType.LIMIT),
                            side=int(OrderSide.BID), size=1, limit_price=6000.0))
                        assert outcome.accepted, outcome
                    else:
                        await client.search_open_orders(account_id)
                        await client.search_open_positions(account_id)
                    done += 1
                except Exception as exc:  # counted, the assertion below reports them
                    failures.append(exc)
                await trio.sleep(30)

        await client.tokens.current()
        await trio.sleep(3600 - 20 * 60)  # start 20 min before the refresh is due
        async with trio.open_nursery() as nursery:
            for account in (1001, 1002, 1003):
                nursery.start_soon(worker, account)
            # an operation that would outlast the remaining life refreshes first (pre-operation validation)
            long_op = await client.tokens.current(min_valid_s=2.5 * 3600)
        assert failures == []
        assert done == 3 * 80
        assert client.tokens.refreshes >= 1 and client.tokens.logins == 1
        revisions = []
        while True:
            try:
                revisions.append(channel.receive_nowait().revision)
            except trio.WouldBlock:
                break
        assert revisions == sorted(revisions) and len(revisions) >= 2 and long_op.revision in revisions
        orders = await client.search_orders(1001, SIM_EPOCH - timedelta(hours=1))
        assert len(orders) == 8
