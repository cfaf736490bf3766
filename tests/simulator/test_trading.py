"""Trading-model tests through REST: partial fills, netting, P&L and fees, customTag reuse, stops, brackets, sessions,
and the user-hub events the model publishes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio

from engine.protocol.enums import OrderStatus
from simulator.bus import HubEvent
from simulator.config import SimConfig
from tests.simulator.test_rest import ACCOUNT, EPOCH, ES, call, sim_client

MES = "CON.F.US.MES.Z26"


async def place(client: Any, **fields: Any) -> dict[str, Any]:
    body = {"accountId": ACCOUNT, "contractId": ES, "side": 0, "size": 1, "type": 2, **fields}
    return await call(client, "Order/place", body)


async def set_price(client: Any, price: float, contract: str = ES) -> None:
    r = await client.post("/_sim/price", json={"contractId": contract, "price": price})
    assert r.status_code == 200


async def test_partial_fills_one_order_many_trades(autojump_clock: Any) -> None:
    config = SimConfig(epoch=EPOCH, partial_fill_parts=3, partial_fill_interval_s=0.5)
    async with sim_client(config) as (client, gateway):
        with gateway.bus.subscribe("user") as sub:
            oid = (await place(client, size=6))["orderId"]
            order = (await call(client, "Order/searchById", {"accountId": ACCOUNT, "orderId": oid}))["order"]
            assert (order["status"], order["fillVolume"]) == (OrderStatus.OPEN, 2)
            await trio.sleep(2)
            order = (await call(client, "Order/searchById", {"accountId": ACCOUNT, "orderId": oid}))["order"]
            assert (order["status"], order["fillVolume"]) == (OrderStatus.FILLED, 6)
            events: list[HubEvent] = []
            while True:
                try:
                    events.append(sub._receive.receive_nowait())
                except trio.WouldBlock:
                    break
        trades = [e for e in events if e.target == "GatewayUserTrade"]
        assert [t.arguments[0]["data"]["size"] for t in trades] == [2, 2, 2]
        assert {t.arguments[0]["data"]["orderId"] for t in trades} == {oid}
        fills = [e.arguments[0]["data"]["fillVolume"] for e in events if e.target == "GatewayUserOrder"]
        assert fills == [0, 2, 4, 6]
        statuses = [e.arguments[0]["data"]["status"] for e in events if e.target == "GatewayUserOrder"]
        assert statuses == [OrderStatus.PENDING, OrderStatus.OPEN, OrderStatus.OPEN, OrderStatus.FILLED]
        assert "customTag" not in events[0].arguments[0]["data"]  # nulls are omitted on the stream


async def test_netting_average_price_pnl_fees_and_balance(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        start = gateway.book.accounts[ACCOUNT].balance
        await set_price(client, 6000)   # bid 6000, ask 6000.25
        await place(client, size=1)    # buy 1 @ 6000.25
        await set_price(client, 6010)
        await place(client, size=1)    # buy 1 @ 6010.25 -> long 2 @ 6005.25
        positions = (await call(client, "Position/searchOpen", {"accountId": ACCOUNT}))["positions"]
        assert [(p["type"], p["size"], p["averagePrice"]) for p in positions] == [(1, 2, 6005.25)]
        await set_price(client, 6020)
        await place(client, side=1, size=3)  # sell 3 @ 6020: closes 2 (+14.75 pts * 2 * $50), opens short 1
        positions = (await call(client, "Position/searchOpen", {"accountId": ACCOUNT}))["positions"]
        assert [(p["type"], p["size"], p["averagePrice"]) for p in positions] == [(2, 1, 6020.0)]
        trades = (await call(client, "Trade/search", {"accountId": ACCOUNT, "startTimestamp": EPOCH.isoformat()}))[
            "trades"]
        assert [t["profitAndLoss"] for t in trades] == [None, None, 1475.0]
        assert [t["fees"] for t in trades] == [1.40, 1.40, 4.20]
        balance = (await call(client, "Account/search", {"onlyActiveAccounts": True}))["accounts"][0]["balance"]
        assert balance == pytest.approx(start + 1475.0 - 7.0)
        await set_price(client, 6030)
        assert (await call(client, "Position/closeContract", {"accountId": ACCOUNT, "contractId": ES}))["success"]
        trades = (await call(client, "Trade/search", {"accountId": ACCOUNT, "startTimestamp": EPOCH.isoformat()}))[
            "trades"]
        assert trades[-1]["profitAndLoss"] == -512.5  # short 1 @ 6020, bought back @ 6030.25
        assert (await call(client, "Position/searchOpen", {"accountId": ACCOUNT}))["positions"] == []


async def test_custom_tag_unique_forever_including_rejected(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        assert (await place(client, customTag="intent-1"))["success"]
        dup = await place(client, customTag="intent-1")
        assert (dup["success"], dup["errorCode"], dup["orderId"]) == (False, 2, None)
        assert "already in use" in dup["errorMessage"]
        rejected = await place(client, customTag="intent-2", size=0)
        assert (rejected["errorCode"], rejected["errorMessage"]) == (2, "Invalid order size specified.")
        again = await place(client, customTag="intent-2")
        assert again["errorCode"] == 2 and "already in use" in again["errorMessage"]
        # per account: another account may use the tag
        other = await call(client, "Order/place", {"accountId": 1002, "contractId": ES, "side": 0, "size": 1,
                                                   "type": 2, "customTag": "intent-1"})
        assert other["success"]


async def test_place_rejections(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        cases = [
            ({"accountId": 999}, 1), ({"contractId": "CON.F.US.XX.Z26"}, 8), ({"contractId": "CON.F.US.EP.U26"}, 9),
            ({"accountId": 1004}, 4), ({"type": 0}, 2), ({"type": 1}, 2), ({"type": 1, "limitPrice": 6000.1}, 2),
            ({"side": 3}, 2), ({"type": 5}, 2),
        ]
        for change, code in cases:
            answer = await place(client, **change)
            assert (answer["success"], answer["errorCode"]) == (False, code), change


async def test_stop_limit_and_trailing_orders(autojump_clock: Any) -> None:
    async with sim_client(SimConfig(epoch=EPOCH, tick_interval_s=3600)) as (client, _):
        await set_price(client, 6000)
        stop = (await place(client, type=4, stopPrice=6005))["orderId"]
        limit = (await place(client, type=1, side=1, limitPrice=6010, size=1))["orderId"]
        trail = (await place(client, type=5, side=1, trailPrice=5995))["orderId"]  # 20 ticks below
        status = await _statuses(client)
        assert status[stop] == status[limit] == status[trail] == OrderStatus.OPEN
        await set_price(client, 6006)  # stop triggers: buy @ ask 6006.25; trail follows to 6001
        status = await _statuses(client)
        assert status[stop] == OrderStatus.FILLED and status[limit] == OrderStatus.OPEN
        order = (await call(client, "Order/searchById", {"accountId": ACCOUNT, "orderId": trail}))["order"]
        assert (order["stopPrice"], order["trailDistance"], order["trailPrice"]) == (6001.0, 20, 5.0)
        await set_price(client, 6010)  # limit sell fills
        await set_price(client, 6004.75)  # trailing stop (now 6005) triggers
        status = await _statuses(client)
        assert status[limit] == status[trail] == OrderStatus.FILLED


async def _statuses(client: Any) -> dict[int, int]:
    orders = (await call(client, "Order/search", {"accountId": ACCOUNT, "startTimestamp": EPOCH.isoformat()}))[
        "orders"]
    return {o["id"]: o["status"] for o in orders}


async def test_brackets_suspended_children_activate_and_oco(autojump_clock: Any) -> None:
    async with sim_client(SimConfig(epoch=EPOCH, tick_interval_s=3600)) as (client, gateway):
        await set_price(client, 6000)
        wrong = await place(client, customTag="b0", stopLossBracket={"ticks": 8, "type": 4},
                            takeProfitBracket={"ticks": 16, "type": 1})
        assert wrong["errorCode"] == 2 and wrong["errorMessage"] == "Ticks should be less than zero when longing"
        entry = await place(client, type=1, limitPrice=5990, customTag="b1",
                            stopLossBracket={"ticks": -8, "type": 4}, takeProfitBracket={"ticks": 16, "type": 1})
        assert entry["success"]
        children = [o for o in gateway.book.orders.values() if o.parent_order_id == entry["orderId"]]
        assert [(c.custom_tag, c.status) for c in children] == [("b1-SL", 8), ("b1-TP", 8)]
        assert children[1].linked_order_id == children[0].id
        open_ids = {o["id"] for o in (await call(client, "Order/searchOpen", {"accountId": ACCOUNT}))["orders"]}
        assert open_ids == {entry["orderId"]}  # suspended children are invisible to searchOpen
        q = await call(client, "Order/v2/query", {"filter": {"accountId": ACCOUNT, "statuses": [1, 8]}})
        assert len(q["orders"]) == 3
        await set_price(client, 5989.75)  # entry fills at 5990 (limit); children go live
        sl, tp = children
        assert (sl.status, sl.stop_price, tp.status, tp.limit_price) == (1, 5988.0, 1, 5994.0)
        await set_price(client, 5994)  # TP sells at 5994; SL is cancelled
        assert (tp.status, sl.status) == (OrderStatus.FILLED, OrderStatus.CANCELLED)
        assert (await call(client, "Position/searchOpen", {"accountId": ACCOUNT}))["positions"] == []
        blocked = await call(client, "Order/place", {"accountId": 1003, "contractId": ES, "type": 2, "side": 0,
                                                     "size": 1, "stopLossBracket": {"ticks": -8, "type": 4}})
        assert blocked["errorCode"] == 2 and blocked["orderId"] is not None
        assert blocked["errorMessage"].startswith("Brackets cannot be used with Position Brackets")


async def test_cme_sessions_reject_outside_hours(autojump_clock: Any) -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    async with sim_client(SimConfig(epoch=saturday, sessions="cme")) as (client, _):
        answer = await place(client)
        assert (answer["errorCode"], answer["errorMessage"]) == (2, "Outside of trading hours.")
    async with sim_client(SimConfig(epoch=saturday)) as (client, _):
        assert (await place(client))["success"]  # open around the clock by default


async def test_two_clients_trade_the_same_account(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        import httpx

        from simulator.rest import RestApp
        from simulator.transport import SimulatorTransport

        async with httpx.AsyncClient(transport=SimulatorTransport(RestApp(gateway)), base_url="http://sim",
                                     headers=client.headers) as other, trio.open_nursery() as nursery:
            for c in (client, other) * 5:
                nursery.start_soon(place, c)
        positions = (await call(client, "Position/searchOpen", {"accountId": ACCOUNT}))["positions"]
        assert positions[0]["size"] == 10


async def test_price_process_runs_on_the_trio_clock(autojump_clock: Any) -> None:
    async with sim_client(SimConfig(epoch=EPOCH, tick_interval_s=60)) as (_, gateway):
        with gateway.bus.subscribe("market") as sub:
            await trio.sleep(60 * 60 * 24)
            first = await sub.receive()
        assert first.target == "GatewayQuote" and first.arguments[0] in gateway.markets
        assert gateway.clock.now() >= EPOCH.replace(day=26)
