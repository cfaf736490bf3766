"""Unit tests of the state mirror: every payload form, dedupe, closes, terminal orders, stale events, malformed input,
holding, contracts, quotes and the Gateway-shaped snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.models import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel
from engine.state.changes import (
    AccountChanged,
    Change,
    OrderChanged,
    PositionChanged,
    QuoteChanged,
    TradeAdded,
    WatchedContractsChanged,
)
from engine.state.mirror import StateMirror

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ES = "CON.F.US.EP.Z26"
NQ = "CON.F.US.ENQ.Z26"


def order(oid: int = 1, *, account: int = 1001, contract: str = ES, status: OrderStatus = OrderStatus.OPEN,
          fill: int = 0, size: int = 2, at: timedelta = timedelta(0)) -> dict[str, Any]:
    return OrderModel(
        id=oid, account_id=account, contract_id=contract, symbol_id="F.US.EP", creation_timestamp=T0,
        update_timestamp=T0 + at, status=status, type=OrderType.LIMIT, side=OrderSide.BID, size=size,
        limit_price=6300.0, fill_volume=fill,
    ).wire(exclude_none=True)


def position(*, account: int = 1001, contract: str = ES, size: int = 1, avg: float = 6300.0) -> dict[str, Any]:
    return PositionModel(
        id=700, account_id=account, contract_id=contract, creation_timestamp=T0,
        type=PositionType.LONG if size else PositionType.UNDEFINED, size=size, average_price=avg,
    ).wire(exclude_none=True)


def trade(tid: int, *, account: int = 1001, order_id: int = 1) -> dict[str, Any]:
    return HalfTradeModel(
        id=tid, account_id=account, contract_id=ES, creation_timestamp=T0, price=6300.0, fees=1.4,
        side=OrderSide.BID, size=1, order_id=order_id,
    ).wire(exclude_none=True)


def account(aid: int = 1001, balance: float = 50_000.0) -> dict[str, Any]:
    return TradingAccountModel(id=aid, name=f"A{aid}", balance=balance, can_trade=True, is_visible=True).wire()


def wrap(data: Any, action: int = 1) -> dict[str, Any]:
    return {"action": action, "data": data}


@pytest.fixture
def mirror() -> StateMirror:
    return StateMirror()


@pytest.fixture
def changes(mirror: StateMirror) -> list[Change]:
    seen: list[Change] = []
    mirror.subscribe(seen.append)
    return seen


# --- payload forms -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param([wrap(order(1))], id="wrapped"),
        pytest.param([order(1)], id="bare"),
        pytest.param([[wrap(order(1))]], id="list-of-wrappers"),
        pytest.param([[order(1)]], id="list-of-bare"),
        pytest.param([wrap([order(1)])], id="wrapper-of-list"),
        pytest.param([wrap(order(1), action=0)], id="action-0"),
        pytest.param([{"data": order(1)}], id="wrapper-without-action"),
    ],
)
def test_every_payload_form_applies_the_order(mirror: StateMirror, arguments: list[Any]) -> None:
    mirror.on_user_event("GatewayUserOrder", arguments)
    assert [o.id for o in mirror.working_orders()] == [1]
    assert mirror.counters.malformed == 0
    assert mirror.counters.applied["GatewayUserOrder"] == 1


def test_a_list_carries_several_objects_applied_in_order(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_user_event("GatewayUserOrder", [[wrap(order(1)), order(2), wrap(order(1, fill=1, at=timedelta(1)))]])
    assert [o.id for o in mirror.working_orders()] == [1, 2]
    assert mirror.order(1) is not None and mirror.order(1).fill_volume == 1  # type: ignore[union-attr]
    assert [c.order_id for c in changes if isinstance(c, OrderChanged)] == [1, 2, 1]


def test_every_user_event_kind(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_user_event("GatewayUserAccount", [wrap(account())])
    mirror.on_user_event("GatewayUserPosition", [position(size=2)])
    mirror.on_user_event("GatewayUserTrade", [wrap(trade(50001), action=0)])
    assert [a.id for a in mirror.accounts()] == [1001]
    assert mirror.position(1001, ES) is not None
    assert [t.id for t in mirror.trades(1001)] == [50001]
    kinds = [type(c) for c in changes]
    assert AccountChanged in kinds and PositionChanged in kinds and TradeAdded in kinds


# --- trades, positions, orders -------------------------------------------------------------------------------------
def test_trades_are_deduplicated_by_id(mirror: StateMirror, changes: list[Change]) -> None:
    for _ in range(3):
        mirror.on_user_event("GatewayUserTrade", [wrap(trade(7), action=0)])
    mirror.on_user_event("GatewayUserTrade", [trade(8)])
    assert [t.id for t in mirror.trades(1001)] == [7, 8]
    assert mirror.counters.duplicate_trades == 2
    assert sum(isinstance(c, TradeAdded) for c in changes) == 2


def test_a_voided_copy_of_a_known_trade_replaces_it_without_a_new_trade(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayUserTrade", [trade(7)])
    mirror.on_user_event("GatewayUserTrade", [{**trade(7), "voided": True}])
    assert [t.voided for t in mirror.trades(1001)] == [True]


def test_a_position_of_size_zero_is_closed(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_user_event("GatewayUserPosition", [wrap(position(size=2))])
    assert mirror.contracts_of(1001) == {ES}
    mirror.on_user_event("GatewayUserPosition", [wrap(position(size=0), action=2)])
    assert mirror.positions() == []
    closes = [c for c in changes if isinstance(c, PositionChanged) and c.closed]
    assert len(closes) == 1 and closes[0].before is not None and closes[0].before.size == 2
    assert mirror.contracts_of(1001) == frozenset()
    # a second close of nothing is quiet
    mirror.on_user_event("GatewayUserPosition", [wrap(position(size=0), action=2)])
    assert len([c for c in changes if isinstance(c, PositionChanged)]) == 2


def test_terminal_orders_leave_the_working_set_and_are_never_resurrected(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayUserOrder", [wrap(order(1))])
    mirror.on_user_event("GatewayUserOrder", [wrap(order(1, status=OrderStatus.FILLED, fill=2, at=timedelta(1)))])
    assert mirror.working_orders() == []
    assert mirror.is_terminal(1)
    assert mirror.order(1) is not None and mirror.order(1).status is OrderStatus.FILLED  # type: ignore[union-attr]
    # a late (even newer-looking) working event for it does not bring it back
    mirror.on_user_event("GatewayUserOrder", [wrap(order(1, at=timedelta(5)))])
    assert mirror.working_orders() == []
    assert mirror.counters.late_terminal == 1


def test_a_terminal_order_never_seen_working_is_remembered(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_user_event("GatewayUserOrder", [wrap(order(9, status=OrderStatus.REJECTED))])
    assert mirror.working_orders() == [] and mirror.is_terminal(9)
    assert [c.before for c in changes if isinstance(c, OrderChanged)] == [None]


def test_stale_order_events_are_ignored(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayUserOrder", [order(1, fill=1, at=timedelta(seconds=2))])
    mirror.on_user_event("GatewayUserOrder", [order(1, fill=0, at=timedelta(seconds=3))])  # fillVolume went back
    mirror.on_user_event("GatewayUserOrder", [order(1, fill=1, size=5, at=timedelta(seconds=1))])  # older stamp
    held = mirror.order(1)
    assert held is not None and held.fill_volume == 1 and held.size == 2
    assert mirror.counters.stale_orders == 2


def test_terminal_memory_is_bounded() -> None:
    mirror = StateMirror(terminal_memory=2)
    for oid in (1, 2, 3):
        mirror.on_user_event("GatewayUserOrder", [order(oid, status=OrderStatus.CANCELLED)])
    assert not mirror.is_terminal(1) and mirror.is_terminal(2) and mirror.is_terminal(3)


def test_watched_accounts_filter_others(mirror: StateMirror) -> None:
    only = StateMirror(watch_accounts=[1002])
    only.on_user_event("GatewayUserOrder", [order(1, account=1001)])
    only.on_user_event("GatewayUserOrder", [order(2, account=1002)])
    assert [o.id for o in only.working_orders()] == [2]
    assert only.counters.ignored_accounts == 1


# --- malformed input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param([], id="no-arguments"),
        pytest.param([42], id="scalar"),
        pytest.param(["text"], id="string"),
        pytest.param([wrap({"id": 1})], id="missing-fields"),
        pytest.param([{**order(1), "status": "open"}], id="bad-enum"),
        pytest.param([{**order(1), "creationTimestamp": "yesterday"}], id="bad-timestamp"),
        pytest.param([[None]], id="list-of-null"),
        pytest.param("not-a-list", id="arguments-not-a-list"),
        pytest.param([[[[[[order(1)]]]]]], id="too-deep"),
    ],
)
def test_malformed_payloads_are_counted_never_fatal(mirror: StateMirror, arguments: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    mirror.on_user_event("GatewayUserOrder", arguments)
    assert mirror.counters.malformed == 1
    assert mirror.working_orders() == []
    assert "malformed GatewayUserOrder" in caplog.text


def test_one_bad_item_does_not_spoil_its_neighbours(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayUserOrder", [[order(1), {"id": "x"}, 5, order(2)]])
    assert [o.id for o in mirror.working_orders()] == [1, 2]
    assert mirror.counters.malformed == 2


def test_unknown_targets_are_counted(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayLogout", [])
    mirror.on_market_event("GatewaySomethingNew", ["x", {}])
    mirror.on_market_event("GatewayDepth", [ES, []])
    assert mirror.counters.unknown_events == 2
    assert mirror.counters.market_ignored == 1


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=True),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["action", "data", "id", "accountId", "size", "status", "contractId"]), children, max_size=4),
    max_leaves=12,
), st.sampled_from(["GatewayUserOrder", "GatewayUserPosition", "GatewayUserTrade", "GatewayUserAccount"]))
def test_arbitrary_garbage_never_raises(garbage: Any, target: str) -> None:
    mirror = StateMirror()
    mirror.on_user_event(target, [garbage])
    mirror.on_market_event("GatewayQuote", [garbage, garbage])
    assert mirror.snapshot() is not None


def test_a_failing_listener_is_counted_and_others_still_run(mirror: StateMirror) -> None:
    seen: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("boom")

    mirror.subscribe(broken)
    mirror.subscribe(seen.append)
    mirror.on_user_event("GatewayUserOrder", [order(1)])
    assert mirror.counters.listener_errors >= 1
    assert any(isinstance(c, OrderChanged) for c in seen)


# --- holding -------------------------------------------------------------------------------------------------------
def test_holding_buffers_then_applies_in_arrival_order(mirror: StateMirror, changes: list[Change]) -> None:
    with mirror.holding():
        mirror.on_user_event("GatewayUserOrder", [order(1)])
        mirror.on_user_event("GatewayUserOrder", [order(1, fill=1, at=timedelta(1))])
        mirror.on_user_event("GatewayUserOrder", [order(1, status=OrderStatus.FILLED, fill=2, at=timedelta(2))])
        assert mirror.working_orders() == [] and changes == []
    assert mirror.counters.buffered == 3
    assert [c.after.fill_volume for c in changes if isinstance(c, OrderChanged) and c.after] == [0, 1, 2]
    assert mirror.is_terminal(1)


def test_the_buffer_is_applied_even_when_the_holder_fails(mirror: StateMirror) -> None:
    with pytest.raises(RuntimeError), mirror.holding():
        mirror.on_user_event("GatewayUserOrder", [order(1)])
        raise RuntimeError("reconciliation cancelled")
    assert [o.id for o in mirror.working_orders()] == [1]


def test_nested_holds_drain_only_at_the_outermost(mirror: StateMirror) -> None:
    with mirror.holding():
        with mirror.holding():
            mirror.on_user_event("GatewayUserOrder", [order(1)])
        assert mirror.working_orders() == []
    assert len(mirror.working_orders()) == 1


# --- contracts, quotes, snapshot -----------------------------------------------------------------------------------
def test_contracts_held_or_worked_per_account_and_union(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_user_event("GatewayUserOrder", [order(1, account=1001, contract=ES)])
    mirror.on_user_event("GatewayUserPosition", [position(account=1002, contract=ES)])
    mirror.on_user_event("GatewayUserPosition", [position(account=1002, contract=NQ)])
    assert mirror.contracts_of(1001) == {ES} and mirror.contracts_of(1002) == {ES, NQ}
    assert mirror.watched_contracts() == {ES, NQ}
    mirror.on_user_event("GatewayUserOrder", [order(1, account=1001, status=OrderStatus.CANCELLED, at=timedelta(1))])
    assert mirror.watched_contracts() == {ES, NQ}  # 1002 still holds ES
    mirror.on_user_event("GatewayUserPosition", [position(account=1002, contract=ES, size=0)])
    assert mirror.watched_contracts() == {NQ}
    watched = [c for c in changes if isinstance(c, WatchedContractsChanged)]
    assert [(set(c.added), set(c.removed)) for c in watched] == [({ES}, set()), ({NQ}, set()), (set(), {ES})]


def test_partial_quotes_merge_with_the_last_one(mirror: StateMirror, changes: list[Change]) -> None:
    mirror.on_market_event("GatewayQuote", [ES, {"symbol": "F.US.EP", "bestBid": 6300.0, "bestAsk": 6300.25}])
    mirror.on_market_event("GatewayQuote", [ES, {"bestBid": 6300.25, "bestAsk": None}])
    quote = mirror.last_quote(ES)
    assert quote is not None and quote.best_bid == 6300.25 and quote.best_ask == 6300.25 and quote.symbol == "F.US.EP"
    assert mirror.last_quote(NQ) is None
    assert sum(isinstance(c, QuoteChanged) for c in changes) == 2
    mirror.on_market_event("GatewayQuote", [ES])
    mirror.on_market_event("GatewayQuote", [ES, {"bestBid": "high"}])
    assert mirror.counters.malformed == 2 and mirror.last_quote(ES) == quote


def test_snapshot_has_the_gateway_shape(mirror: StateMirror) -> None:
    mirror.on_user_event("GatewayUserAccount", [wrap(account(1002))])
    mirror.on_user_event("GatewayUserAccount", [wrap(account(1001))])
    mirror.on_user_event("GatewayUserOrder", [wrap(order(2))])
    mirror.on_user_event("GatewayUserOrder", [wrap(order(1, status=OrderStatus.SUSPENDED))])
    mirror.on_user_event("GatewayUserOrder", [wrap(order(3, status=OrderStatus.CANCELLED))])
    mirror.on_user_event("GatewayUserPosition", [wrap(position(size=3))])
    snap = mirror.snapshot()
    assert set(snap) == {"accounts", "positions", "orders"}
    assert [a["id"] for a in snap["accounts"]] == [1001, 1002]
    assert [o["id"] for o in snap["orders"]] == [1, 2]
    assert snap["orders"][0]["status"] == 8 and snap["orders"][0]["limitPrice"] == 6300.0
    assert snap["orders"][0]["filledPrice"] is None  # nulls back in, as the REST models write them
    assert snap["positions"][0] == PositionModel.model_validate(position(size=3)).wire()
    assert snap["positions"][0]["creationTimestamp"] == "2026-03-02T15:00:00.000000+00:00"
