"""Cancel, modify and close are durable intents too: a crash at any instant of a stream of them (the engine nursery
cancelled mid-send, the disk frozen at that instant), then a restart, and ``recover()`` finishes each one exactly
once against the simulator: a cancel of an order already cancelled is done without a request, a close of a position
already flat is done without a request (never a second close that would open the opposite position), a modify
already applied is done; whatever had not taken effect is sent once. Also the plainest crash: committed, never sent.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from engine.orders.opintents import op_intent
from engine.protocol.enums import OrderSide, OrderStatus, OrderType
from engine.protocol.models import ModifyOrderRequest
from engine.store import StoredIntent, open_store
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from tests.orders.harness import (
    ACCOUNT,
    CONTRACT,
    EPOCH,
    CountingTransport,
    freezable_store,
    limit,
    market,
    order_harness,
)

RESTING = 1000.0
MODIFIED = 1001.0
CANCEL, MODIFY, CLOSE = "/api/Order/cancel", "/api/Order/modify", "/api/Position/closeContract"


async def prepared(db: str) -> tuple[SimulatedGateway, list[int]]:
    """Five resting limit buys and a long position of 2, placed by an engine run that ended cleanly."""
    gateway = SimulatedGateway(SimConfig(epoch=EPOCH, publish_market_data=False))
    async with open_store(db, threads=False) as store, order_harness(store=store, gateway=gateway) as h:
        resting = [(await h.manager.place(limit(RESTING))).order_id for _ in range(5)]
        assert (await h.manager.place(market(2))).kind.value == "accepted"
    assert all(isinstance(i, int) for i in resting)
    return gateway, [i for i in resting if i is not None]


def order(gateway: SimulatedGateway, order_id: int) -> dict[str, Any]:
    return next(o for o in gateway.snapshot()["orders"] if o["id"] == order_id)


def position(gateway: SimulatedGateway) -> int:
    for p in gateway.snapshot()["positions"]:
        if p["accountId"] == ACCOUNT and p["contractId"] == CONTRACT and p["size"]:
            return int(p["size"]) if p["type"] == 1 else -int(p["size"])
    return 0


def close_orders(gateway: SimulatedGateway) -> int:
    """Untagged market sells: what closeContract leaves in the order history (one per executed close)."""
    return sum(1 for o in gateway.snapshot()["orders"] if o["accountId"] == ACCOUNT and o.get("customTag") is None
               and o["type"] == OrderType.MARKET and o["side"] == OrderSide.ASK)


def still_to_do(gateway: SimulatedGateway, intent: StoredIntent) -> bool:
    """Whether the intent has not taken effect at the Gateway (so recovery must send it, once)."""
    if intent.kind == "close":
        return position(gateway) == intent.position_before
    assert intent.gateway_order_id is not None
    target = order(gateway, intent.gateway_order_id)
    working = OrderStatus(target["status"]).is_working
    if intent.kind == "cancel":
        return working
    return working and target["limitPrice"] != intent.limit_price


async def recover(db: str, gateway: SimulatedGateway) -> list[StoredIntent]:
    """Restart on the database: every op intent recovery finds is finished, and exactly what had not taken effect
    is sent, once (a second recovery sends nothing). Returns the op intents recovery found."""
    gateway.faults.disarm()
    async with open_store(db, threads=False) as store:
        left = [i for i in await store.unresolved_intents() if i.kind != "place"]
        expected = {CANCEL: 0, MODIFY: 0, CLOSE: 0}
        for intent in left:
            if still_to_do(gateway, intent):
                expected[{"cancel": CANCEL, "modify": MODIFY, "close": CLOSE}[intent.kind]] += 1
        counting: list[CountingTransport] = []

        def wrap(inner: Any) -> CountingTransport:
            counting.append(CountingTransport(inner))
            return counting[0]

        async with order_harness(store=store, gateway=gateway, wrap_transport=wrap) as h:  # run() = recover() first
            sent = {path: counting[0].sent[path] for path in expected}
            assert sent == expected, (sent, [(i.kind, i.gateway_order_id) for i in left])
            assert await store.unresolved_intents() == []
            assert await h.manager.recover() == []
            assert {path: counting[0].sent[path] for path in expected} == expected
            rows = [r for r in await store.history("orders") if r["kind"] != "place"]
            assert all(r["status"] in ("accepted", "rejected") for r in rows), rows
    return left


@pytest.mark.parametrize("crash_at", [0.05, 0.7, 1.3, 2.2, 4.5])
async def test_crash_during_a_stream_of_cancels_modifies_and_a_close(
    crash_at: float, tmp_path: object, autojump_clock: MockClock
) -> None:
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    async with freezable_store(db) as (store, writer):
        with trio.CancelScope() as crash:
            async with order_harness(store=store, gateway=gateway) as h:
                gateway.faults.arm("delay", count=None, probability=0.6, params={"seconds": 2.0})
                gateway.faults.arm("lose_response", count=None, probability=0.3)
                mgr = h.manager
                ops = [
                    lambda: mgr.cancel(ACCOUNT, resting[0]),
                    lambda: mgr.close_position(ACCOUNT, CONTRACT, priority=True, known_size=2),
                    lambda: mgr.modify(ACCOUNT, resting[3], limit_price=MODIFIED),
                    lambda: mgr.cancel(ACCOUNT, resting[1]),
                    lambda: mgr.modify(ACCOUNT, resting[4], limit_price=MODIFIED),
                    lambda: mgr.cancel(ACCOUNT, resting[2], priority=True),
                ]

                async def stream() -> None:
                    for op in ops:
                        h.nursery.start_soon(op)
                        await trio.sleep(0.3)

                h.nursery.start_soon(stream)
                await trio.sleep(crash_at)
                writer.cancel()  # the disk freezes here ...
                crash.cancel()  # ... and the process dies
    left = await recover(db, gateway)
    for intent in left:  # each took effect, once
        if intent.kind == "close":
            assert position(gateway) == 0
        else:
            assert intent.gateway_order_id is not None
            target = order(gateway, intent.gateway_order_id)
            if intent.kind == "cancel":
                assert target["status"] == OrderStatus.CANCELLED
            else:
                assert target["limitPrice"] == MODIFIED
    assert position(gateway) >= 0, "a second close opened the opposite position"
    assert close_orders(gateway) <= 1


async def test_committed_but_never_sent_is_sent_once_by_recovery(tmp_path: object,
                                                                 autojump_clock: MockClock) -> None:
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    async with open_store(db, threads=False) as store:  # what a crash right after each commit leaves behind
        now = gateway.clock.now()
        for intent in (op_intent("cancel", ACCOUNT, now, order_id=resting[0]),
                       op_intent("modify", ACCOUNT, now, order_id=resting[1], limit_price=MODIFIED),
                       op_intent("close", ACCOUNT, now, contract_id=CONTRACT, position_before=2)):
            await store.record_intent(intent)
    left = await recover(db, gateway)
    assert sorted(i.kind for i in left) == ["cancel", "close", "modify"]
    assert order(gateway, resting[0])["status"] == OrderStatus.CANCELLED
    assert order(gateway, resting[1])["limitPrice"] == MODIFIED
    assert position(gateway) == 0 and close_orders(gateway) == 1
    assert order(gateway, resting[2])["status"] == OrderStatus.OPEN  # nothing else touched


async def test_what_already_took_effect_is_done_without_a_request(tmp_path: object,
                                                                  autojump_clock: MockClock) -> None:
    """The crash came after the Gateway executed each one and before the answer was recorded; meanwhile another
    front end sold one more, so the account is short 1: a second close now would buy it back."""
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    async with open_store(db, threads=False) as store, order_harness(store=store, gateway=gateway) as h:
        now = gateway.clock.now()
        for intent in (op_intent("cancel", ACCOUNT, now, order_id=resting[0]),
                       op_intent("modify", ACCOUNT, now, order_id=resting[1], limit_price=MODIFIED),
                       op_intent("close", ACCOUNT, now, contract_id=CONTRACT, position_before=2),
                       op_intent("cancel", ACCOUNT, now, order_id=resting[2])):
            await store.record_intent(intent)
        await h.client.cancel_order(ACCOUNT, resting[0])
        await h.client.modify_order(ModifyOrderRequest(account_id=ACCOUNT, order_id=resting[1],
                                                       limit_price=MODIFIED))
        await h.client.close_position(ACCOUNT, CONTRACT)
        await h.client.cancel_order(ACCOUNT, resting[2])  # (by another front end: the same for the Gateway)
        assert (await h.manager.place(market(1, OrderSide.ASK))).kind.value == "accepted"
    assert position(gateway) == -1
    left = await recover(db, gateway)  # expects no request at all: every one already took effect
    assert len(left) == 4
    assert position(gateway) == -1 and close_orders(gateway) == 1


async def test_enforcement_ops_are_sent_at_once_and_recorded_with_their_outcome(tmp_path: object,
                                                                                autojump_clock: MockClock) -> None:
    """``record_first=False`` (what risk enforcement uses): the request goes out without waiting for the store, and
    the intent's row is written together with its outcome, so nothing is left unresolved; a crash before that
    leaves no row (the stored lockout covers enforcement, see RiskEnforcer)."""
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    async with open_store(db, threads=False) as store, order_harness(store=store, gateway=gateway) as h:
        rows_at_send: list[int] = []
        original = h.client.close_position

        async def close_and_count(*args: Any, **kwargs: Any) -> Any:
            rows_at_send.append(sum(1 for r in await store.history("orders") if r["kind"] == "close"))
            return await original(*args, **kwargs)

        h.client.close_position = close_and_count  # type: ignore[method-assign]
        cancelled = await h.manager.cancel(ACCOUNT, resting[0], priority=True, record_first=False)
        closed = await h.manager.close_position(ACCOUNT, CONTRACT, priority=True, known_size=2, record_first=False)
        assert (cancelled.kind.value, closed.kind.value) == ("accepted", "accepted")
        await store.flush()
        assert rows_at_send == [0]  # the close was on its way before its row existed
        rows = {r["kind"]: r for r in await store.history("orders") if r["kind"] != "place"}
        assert rows["cancel"]["status"] == rows["close"]["status"] == "accepted"
        assert await store.unresolved_intents() == []
    assert position(gateway) == 0 and close_orders(gateway) == 1
    assert order(gateway, resting[0])["status"] == OrderStatus.CANCELLED


async def test_a_cancel_of_an_order_the_gateway_does_not_know_is_resolved(tmp_path: object,
                                                                          autojump_clock: MockClock) -> None:
    """searchById answers OrderNotFound: no order works under that id, so there is nothing to cancel or modify. The
    intent is finished (rejected, no request), not left ``ambiguous`` to be verified again at every start."""
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    unknown = max(resting) + 1000
    snapshot_before = gateway.snapshot()
    async with open_store(db, threads=False) as store:
        now = gateway.clock.now()
        for intent in (op_intent("cancel", ACCOUNT, now, order_id=unknown),
                       op_intent("modify", ACCOUNT, now, order_id=unknown, limit_price=MODIFIED)):
            await store.record_intent(intent)
        async with order_harness(store=store, gateway=gateway) as h:  # run() = recover() first
            await store.flush()
            rows = {r["kind"]: r["status"] for r in await store.history("orders") if r["kind"] != "place"}
            assert rows == {"cancel": "rejected", "modify": "rejected"}
            assert await store.unresolved_intents() == []
            assert h.manager.handoffs == []
            assert gateway.snapshot()["orders"] == snapshot_before["orders"]  # nothing sent, nothing changed


async def test_a_recovered_modify_is_not_resent_over_a_later_change(tmp_path: object,
                                                                   autojump_clock: MockClock) -> None:
    """The crash left a modify unresolved; before the restart the trader moved the order himself (another front
    end): recovery must not put the old price back over the trader's change. The intent is finished as superseded,
    nothing is sent, the trader's price stays."""
    db = f"sqlite:///{tmp_path}/orders.db"
    gateway, resting = await prepared(db)
    trader_price = RESTING + 5
    async with open_store(db, threads=False) as store, order_harness(store=store, gateway=gateway) as h:
        await store.record_intent(op_intent("modify", ACCOUNT, gateway.clock.now(), order_id=resting[0],
                                            limit_price=MODIFIED))
        await trio.sleep(1)  # later, by another front end (the same for the Gateway)
        await h.client.modify_order(ModifyOrderRequest(account_id=ACCOUNT, order_id=resting[0],
                                                       limit_price=trader_price))
    counting: list[CountingTransport] = []

    def wrap(inner: Any) -> CountingTransport:
        counting.append(CountingTransport(inner))
        return counting[0]

    async with open_store(db, threads=False) as store, \
            order_harness(store=store, gateway=gateway, wrap_transport=wrap):  # run() = recover() first
        assert counting[0].sent[MODIFY] == 0
        assert await store.unresolved_intents() == []
        (row,) = [r for r in await store.history("orders") if r["kind"] == "modify"]
        assert row["status"] == "rejected"
    assert order(gateway, resting[0])["limitPrice"] == trader_price
