"""Seed chaos test 2: every token expires in the middle of an operation; it is renewed and the operation completes."""

from __future__ import annotations

import trio

from engine.gateway.testing import simulated_client
from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderType


async def test_token_expires_mid_operation_refreshed_and_completed(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        client = sim.client
        first = await client.tokens.current()
        results: list[int] = []

        async def flatten_and_check(account_id: int) -> None:
            placed = await client.place_order(m.PlaceOrderRequest(
                account_id=account_id, contract_id="CON.F.US.MES.Z26", type=int(OrderType.MARKET),
                side=int(OrderSide.BID), size=2))
            assert placed.accepted
            await trio.sleep(1)
            sim.gateway.faults.arm("expire_tokens")  # mid-operation: the server now refuses every token
            closed = await client.close_position(account_id, "CON.F.US.MES.Z26", enforcement=True)
            assert closed.accepted, closed
            results.append(len(await client.search_open_positions(account_id)))

        async with trio.open_nursery() as nursery:
            for account in (1001, 1002):
                nursery.start_soon(flatten_and_check, account)
        assert results == [0, 0]
        assert client.tokens.revision is not None and client.tokens.revision > first.revision
        assert client.tokens.failure is None
