"""The mirror's compact memories and incremental bookkeeping: terminal orders by id and status (full models only for
the most recent), trades in full only up to ``trade_memory`` with their ids kept longer for deduplication, watched
contracts by reference count (checked against a recomputation), and the payload fast path (checked against the
general walk)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.protocol.enums import OrderStatus
from engine.state.changes import Change, WatchedContractsChanged
from engine.state.mirror import StateMirror
from engine.state.payloads import _walk, unwrap
from tests.state.test_mirror import ES, NQ, T0, order, position, trade, wrap


def test_old_terminal_orders_are_remembered_by_id_and_status_only() -> None:
    mirror = StateMirror(terminal_memory=5, recent_terminal=2)
    for oid in (1, 2, 3):
        mirror.on_user_event("GatewayUserOrder", [order(oid, status=OrderStatus.CANCELLED)])
    assert mirror.order(1) is None and mirror.is_terminal(1) and mirror.knows_order(1)
    assert mirror.terminal_status(1) is OrderStatus.CANCELLED
    held = mirror.order(3)
    assert held is not None and held.status is OrderStatus.CANCELLED
    mirror.on_user_event("GatewayUserOrder", [order(1, at=timedelta(hours=1))])  # late, newer-looking
    assert mirror.working_orders() == [] and mirror.counters.late_terminal == 1
    mirror.on_user_event("GatewayUserOrder", [order(3, status=OrderStatus.CANCELLED)])  # an exact duplicate
    assert mirror.counters.late_terminal == 1
    for oid in (4, 5, 6):
        mirror.on_user_event("GatewayUserOrder", [order(oid, status=OrderStatus.FILLED, fill=2)])
    assert not mirror.is_terminal(1) and not mirror.knows_order(1) and mirror.is_terminal(2)


def test_apply_order_says_whether_the_mirror_holds_the_order() -> None:
    mirror = StateMirror(watch_accounts=[1001])
    from engine.protocol.models import OrderModel

    first = OrderModel.model_validate(order(1))
    assert mirror.apply_order(first, "reconcile") and mirror.apply_order(first, "reconcile")
    older = OrderModel.model_validate(order(1, at=timedelta(seconds=-1)))
    assert not mirror.apply_order(older, "reconcile")  # stale
    assert not mirror.apply_order(OrderModel.model_validate(order(2, account=1002)), "reconcile")  # not watched
    filled = OrderModel.model_validate(order(1, status=OrderStatus.FILLED, fill=2, at=timedelta(seconds=1)))
    assert mirror.apply_order(filled, "reconcile") and mirror.order(1) == filled


def test_trades_kept_in_full_are_bounded_and_ids_dedupe_beyond_them(caplog: pytest.LogCaptureFixture) -> None:
    mirror = StateMirror(trade_memory=2, trade_id_memory=4)
    seen: list[Change] = []
    mirror.subscribe(seen.append)
    with caplog.at_level(logging.WARNING, logger="engine.state.mirror"):
        for tid in range(1, 6):
            mirror.on_user_event("GatewayUserTrade", [wrap(trade(tid), action=0)])
    assert [t.id for t in mirror.trades(1001)] == [4, 5]
    assert mirror.has_trade(1001, 2) and not mirror.has_trade(1001, 1)  # the id memory holds the last 4
    mirror.on_user_event("GatewayUserTrade", [{**trade(2), "voided": True}])  # known id, no longer held in full
    assert [t.id for t in mirror.trades(1001)] == [4, 5] and mirror.counters.duplicate_trades == 1
    assert len(seen) == 5
    warnings = [r for r in caplog.records if "trade_memory" in r.getMessage()]
    assert len(warnings) == 1 and "1001" in warnings[0].getMessage()  # once per account, the trades are same-day


def test_trades_older_than_a_day_are_forgotten_quietly(caplog: pytest.LogCaptureFixture) -> None:
    mirror = StateMirror(trade_memory=1)
    old = {**trade(1), "creationTimestamp": (T0 - timedelta(days=2)).isoformat()}
    with caplog.at_level(logging.WARNING, logger="engine.state.mirror"):
        mirror.on_user_event("GatewayUserTrade", [old])
        mirror.on_user_event("GatewayUserTrade", [trade(2)])
    assert [t.id for t in mirror.trades(1001)] == [2]
    assert not [r for r in caplog.records if "trade_memory" in r.getMessage()]


def test_removing_an_account_releases_its_contracts_and_trade_ids() -> None:
    mirror = StateMirror()
    mirror.on_user_event("GatewayUserOrder", [order(1, account=1001, contract=ES)])
    mirror.on_user_event("GatewayUserPosition", [position(account=1001, contract=NQ)])
    mirror.on_user_event("GatewayUserTrade", [trade(9)])
    mirror.remove_account(1001, "reconcile")
    assert mirror.watched_contracts() == frozenset() and mirror.contracts_of(1001) == frozenset()
    assert not mirror.has_trade(1001, 9) and mirror.trades(1001) == []


_ACCOUNTS = st.sampled_from([1001, 1002])
_CONTRACTS = st.sampled_from([ES, NQ, "CON.F.US.MES.Z26"])
_STEP = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 6), _ACCOUNTS, _CONTRACTS,
              st.sampled_from([OrderStatus.OPEN, OrderStatus.OPEN, OrderStatus.FILLED, OrderStatus.CANCELLED])),
    st.tuples(st.just("position"), st.integers(0, 2), _ACCOUNTS, _CONTRACTS, st.none()),
    st.tuples(st.just("forget"), st.integers(1, 6), _ACCOUNTS, _CONTRACTS, st.none()),
    st.tuples(st.just("remove"), st.integers(0, 0), _ACCOUNTS, _CONTRACTS, st.none()),
)


@settings(max_examples=150)
@given(st.lists(_STEP, max_size=40))
def test_watched_contracts_match_a_recomputation(steps: list[tuple[Any, ...]]) -> None:
    mirror = StateMirror()
    replayed: set[str] = set()

    def on_change(change: Change) -> None:
        if isinstance(change, WatchedContractsChanged):
            assert not change.added & change.removed
            replayed.update(change.added)
            replayed.difference_update(change.removed)
            assert replayed == change.contracts

    mirror.subscribe(on_change)
    for n, (kind, number, account_id, contract, status) in enumerate(steps):
        if kind == "order":
            data = order(number, account=account_id, contract=contract, status=status, at=timedelta(seconds=n))
            mirror.on_user_event("GatewayUserOrder", [data])
        elif kind == "position":
            mirror.on_user_event("GatewayUserPosition", [position(account=account_id, contract=contract,
                                                                  size=number)])
        elif kind == "forget":
            mirror.forget_order(number, "reconcile")
        else:
            mirror.remove_account(account_id, "reconcile")
        for a in (1001, 1002):
            expected = {o.contract_id for o in mirror.working_orders(a)} | {p.contract_id for p in mirror.positions(a)}
            assert mirror.contracts_of(a) == expected
        union = {o.contract_id for o in mirror.working_orders()} | {p.contract_id for p in mirror.positions()}
        assert mirror.watched_contracts() == union == replayed


_PAYLOAD = st.recursive(
    st.fixed_dictionaries({"id": st.integers(1, 9)}) | st.integers() | st.none(),
    lambda inner: st.lists(inner, max_size=3)
    | st.fixed_dictionaries({"data": inner}, optional={"action": st.integers(0, 3) | st.booleans() | st.none()})
    | st.fixed_dictionaries({"data": inner, "x": st.integers()}),
    max_leaves=6,
)


@given(st.lists(_PAYLOAD, min_size=1, max_size=2) | st.tuples(_PAYLOAD))
def test_the_payload_fast_path_unwraps_like_the_walk(arguments: Any) -> None:
    reference: list[Any] = []
    for argument in arguments:
        _walk(argument, None, 0, reference)
    assert unwrap(arguments) == reference
