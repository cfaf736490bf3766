"""The book's indexes (orders not yet terminal, orders and trades per account) answer exactly what a scan of its full
history answers, through every way an order enters or leaves the working set: placed, rejected, cancelled, filled
in parts, bracket children suspended then activated then cancelled by OCO, flattened by Position/closeContract.

Why this matters: matching after every price step and Order/searchOpen read the indexes instead of scanning every
order ever placed (a week of virtual trading left thousands of finished orders to walk on each tick), so an index
that forgot an order would silently stop filling it.
"""

from __future__ import annotations

from typing import Any

import trio

from engine.protocol.enums import OrderStatus
from simulator.book import Book
from simulator.config import SimConfig
from tests.simulator.test_rest import ACCOUNT, EPOCH, ES, call, sim_client
from tests.simulator.test_trading import place, set_price

OTHER = 1002


def scanned_working(book: Book, account_id: int | None = None) -> list[int]:
    return [o.id for o in book.orders.values() if o.status in (OrderStatus.OPEN, OrderStatus.PENDING)
            and account_id in (None, o.account_id)]


async def assert_indexes_agree(client: Any, book: Book) -> None:
    assert [o.id for o in book.working_orders()] == scanned_working(book)
    live = set(book._live)
    assert live == {o.id for o in book.orders.values() if not o.status.is_terminal}  # pruned, nothing forgotten
    for account in (ACCOUNT, OTHER):
        assert [o.id for o in book.working_orders(account)] == scanned_working(book, account)
        assert [o.id for o in book.orders_of(account)] == [o.id for o in book.orders.values()
                                                           if o.account_id == account]
        assert book.trades_of(account) == [t for t in book.trades if t.account_id == account]
        open_ids = [o["id"] for o in (await call(client, "Order/searchOpen", {"accountId": account}))["orders"]]
        assert open_ids == scanned_working(book, account)
        trades = (await call(client, "Trade/search", {"accountId": account,
                                                      "startTimestamp": EPOCH.isoformat()}))["trades"]
        assert [t["id"] for t in trades] == [t.id for t in book.trades if t.account_id == account]


async def test_indexes_follow_every_order_life(autojump_clock: Any) -> None:
    config = SimConfig(epoch=EPOCH, tick_interval_s=3600, partial_fill_parts=2, partial_fill_interval_s=1.0)
    async with sim_client(config) as (client, gateway):
        book = gateway.book
        await set_price(client, 6000)
        resting = [(await place(client, accountId=account, type=1, limitPrice=5990 - i))["orderId"]
                   for i, account in enumerate((ACCOUNT, OTHER, ACCOUNT))]
        entry = (await place(client, type=1, limitPrice=5995, customTag="bx",
                             stopLossBracket={"ticks": -8, "type": 4}, takeProfitBracket={"ticks": 16, "type": 1}))
        assert entry["success"]
        rejected = await place(client, size=0)
        assert not rejected["success"]
        await place(client, accountId=OTHER, size=4)  # a market order filled in two parts, a second apart
        await assert_indexes_agree(client, book)
        await trio.sleep(2)
        await call(client, "Order/cancel", {"accountId": ACCOUNT, "orderId": resting[0]})
        await set_price(client, 5994.75)  # the bracket entry fills: its children go live
        children = [o for o in book.orders.values() if o.parent_order_id == entry["orderId"]]
        assert [c.status for c in children] == [OrderStatus.OPEN, OrderStatus.OPEN]
        await assert_indexes_agree(client, book)
        await set_price(client, 5999)  # take-profit fills, stop-loss is cancelled (OCO)
        await call(client, "Position/closeContract", {"accountId": OTHER, "contractId": ES})
        await trio.sleep(2)
        await set_price(client, 5980)  # the remaining resting limits fill
        await trio.sleep(2)
        await assert_indexes_agree(client, book)
        assert book.working_orders() == [] and book._live == {}
        assert {book.orders[i].status for i in resting[1:]} == {OrderStatus.FILLED}
