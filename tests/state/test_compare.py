"""Direct tests of the comparison step: proof before an order leaves the working set, vanished orders, skipped parts,
first-sync quietness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.models import OrderModel, PositionModel, TradingAccountModel
from engine.state.compare import AccountFetch, CompareOptions, Fetched, apply_snapshot
from engine.state.mirror import StateMirror

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNT = 1001
ES = "CON.F.US.EP.Z26"


def order(oid: int, status: OrderStatus = OrderStatus.OPEN, fill: int = 0, at: int = 0) -> OrderModel:
    return OrderModel(id=oid, account_id=ACCOUNT, contract_id=ES, creation_timestamp=T0,
                      update_timestamp=T0 + timedelta(seconds=at), status=status, type=OrderType.LIMIT,
                      side=OrderSide.BID, size=2, limit_price=6000.0, fill_volume=fill)


def mirror_with(*orders: OrderModel) -> StateMirror:
    mirror = StateMirror()
    mirror.apply_account(TradingAccountModel(id=ACCOUNT, name="A", balance=1.0, can_trade=True, is_visible=True),
                         "stream")
    for o in orders:
        mirror.apply_order(o, "stream")
    mirror.apply_position(PositionModel(id=1, account_id=ACCOUNT, contract_id=ES, creation_timestamp=T0,
                                        type=PositionType.LONG, size=1, average_price=6000.0), "stream")
    return mirror


def run(mirror: StateMirror, fetch: AccountFetch) -> tuple[list[str], set[int]]:
    outcome = apply_snapshot(mirror, Fetched(None, [fetch]), CompareOptions(), T0)
    return [f.kind for f in outcome.findings], outcome.unresolved


def test_an_order_missing_from_the_working_list_stays_until_proven_terminal() -> None:
    mirror = mirror_with(order(1))
    kinds, unresolved = run(mirror, AccountFetch(ACCOUNT, working=[], recent=[], lookup_failed={1}))
    assert kinds == [] and unresolved == {ACCOUNT}
    assert [o.id for o in mirror.working_orders()] == [1]


def test_a_lookup_proves_the_end_and_infers_the_fill() -> None:
    mirror = mirror_with(order(1, fill=1, at=1))
    kinds, unresolved = run(mirror, AccountFetch(ACCOUNT, working=[], recent=[],
                                                 lookups={1: order(1, OrderStatus.FILLED, fill=2, at=5)}))
    assert kinds == ["missed_order_filled", "inferred_fill"] and unresolved == set()
    assert mirror.is_terminal(1)


def test_an_order_the_gateway_does_not_know_vanishes() -> None:
    mirror = mirror_with(order(1))
    kinds, _ = run(mirror, AccountFetch(ACCOUNT, working=[], recent=[], lookups={1: None}))
    assert kinds == ["order_vanished"] and mirror.working_orders() == []


def test_failed_parts_change_nothing() -> None:
    mirror = mirror_with(order(1))
    before = mirror.snapshot()
    kinds, _ = run(mirror, AccountFetch(ACCOUNT))  # every list None: every fetch failed
    assert kinds == [] and mirror.snapshot() == before


def test_a_terminal_order_never_comes_back_from_an_older_list() -> None:
    mirror = mirror_with(order(1))
    mirror.apply_order(order(1, OrderStatus.CANCELLED, at=2), "stream")
    kinds, _ = run(mirror, AccountFetch(ACCOUNT, working=[order(1)], recent=[order(1)]))
    assert kinds == [] and mirror.working_orders() == []


def test_first_sync_applies_quietly() -> None:
    mirror = StateMirror()
    outcome = apply_snapshot(mirror, Fetched(
        [TradingAccountModel(id=ACCOUNT, name="A", balance=1.0, can_trade=True, is_visible=True)],
        [AccountFetch(ACCOUNT, initial=True, working=[order(2)], recent=[order(2), order(3, OrderStatus.FILLED, 2)],
                      positions=[])]), CompareOptions(), T0, first_sync=True)
    assert outcome.findings == []
    assert [o.id for o in mirror.working_orders()] == [2] and mirror.is_terminal(3)


def test_an_account_gone_from_the_list_is_removed_with_its_state() -> None:
    mirror = mirror_with(order(1))
    outcome = apply_snapshot(mirror, Fetched([], []), CompareOptions(), T0)
    assert [f.kind for f in outcome.findings] == ["missed_account_removed"]
    assert mirror.snapshot() == {"accounts": [], "positions": [], "orders": []}
    assert mirror.watched_contracts() == frozenset()
