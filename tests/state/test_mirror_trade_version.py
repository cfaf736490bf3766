"""The mirror's read of the trades since an instant and its per-account trade version: ``trades_since`` is
``trades`` filtered (arrival order kept, whatever the timestamps' order), and the version changes on every change of
the trades held in full, including the quiet ones (a known trade replaced, the oldest forgotten, the account removed),
and only then. The random sequences are in ``tests/risk/test_day_trades.py``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.enums import OrderSide
from engine.protocol.models import HalfTradeModel
from engine.state.mirror import StateMirror
from tests.state.test_mirror import ES, T0


def model(trade_id: int, minutes: int = 0, *, account: int = 1001, voided: bool = False) -> HalfTradeModel:
    return HalfTradeModel(id=trade_id, account_id=account, contract_id=ES, price=6300.0, fees=1.4,
                          creation_timestamp=T0 + timedelta(minutes=minutes), side=OrderSide.BID, size=1,
                          order_id=trade_id, voided=voided)


def test_trades_since_filters_trades_in_arrival_order() -> None:
    mirror = StateMirror()
    for trade_id, minutes in ((1, 30), (2, -10), (3, 0), (4, 90), (5, -1)):  # a reconciliation's late ones too
        mirror.apply_trade(model(trade_id, minutes), "stream")
    assert [t.id for t in mirror.trades_since(1001, T0)] == [1, 3, 4]  # the start itself included
    assert [t.id for t in mirror.trades_since(1001, T0 - timedelta(days=1))] == [t.id for t in mirror.trades(1001)]
    assert mirror.trades_since(1001, T0 + timedelta(hours=2)) == [] and mirror.trades_since(1002, T0) == []
    mirror.apply_trade(model(2, 45), "reconcile")  # re-timed into the window: keeps its arrival place
    assert [t.id for t in mirror.trades_since(1001, T0)] == [1, 2, 3, 4]
    mirror.apply_trade(model(7, 90), "stream")  # the same time as trade 4, a greater id
    mirror.apply_trade(model(6, 90), "stream")  # the same time, a smaller id
    mirror.apply_trade(model(6, -5), "reconcile")  # re-timed out of the window
    mirror.apply_trade(model(7, 20), "reconcile")
    assert [t.id for t in mirror.trades_since(1001, T0)] == [1, 2, 3, 4, 7]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        StateMirror().trades_since(1001, T0.replace(tzinfo=None))


def test_the_version_changes_with_every_change_of_the_trades_held_and_only_then() -> None:
    mirror = StateMirror(trade_memory=2)
    assert mirror.trade_version(1001) == 0
    seen = [0]

    def changed() -> bool:
        version = mirror.trade_version(1001)
        new = version not in seen
        seen.append(version)
        return new

    mirror.apply_trade(model(1), "stream")
    assert changed()
    mirror.apply_trade(model(1), "stream")  # an exact duplicate
    assert not changed()
    mirror.apply_trade(model(1, voided=True), "stream")  # replaced quietly (no change notification)
    assert changed() and [t.voided for t in mirror.trades(1001)] == [True]
    mirror.apply_trade(model(2, 5), "stream")
    assert changed()
    mirror.apply_trade(model(3, 6), "stream")  # trade 1 forgotten
    assert changed() and [t.id for t in mirror.trades(1001)] == [2, 3]
    mirror.apply_trade(model(1, voided=False), "stream")  # known id, no longer held: ignored
    assert not changed()
    mirror.apply_trade(model(9, account=1002), "stream")  # another account
    assert not changed()
    mirror.remove_account(1001, "reconcile")
    assert mirror.trade_version(1001) == 0 and mirror.trades(1001) == [] and mirror.trades_since(1001, T0) == []
    mirror.apply_trade(model(4), "stream")  # after removal: a version never handed out before
    assert changed()


@given(st.lists(st.tuples(st.integers(1, 12), st.integers(-30, 30), st.booleans()), max_size=50),
       st.integers(1, 8))
def test_trades_since_is_trades_filtered_through_any_sequence(steps: list[tuple[int, int, bool]], memory: int) -> None:
    """New trades in and out of time order, known ones re-sent re-timed or voided, the oldest forgotten."""
    mirror = StateMirror(trade_memory=memory, trade_id_memory=memory + 3)
    for trade_id, minutes, voided in steps:
        mirror.apply_trade(model(trade_id, minutes, voided=voided), "stream")
        for start in range(-31, 32, 3):
            at = T0 + timedelta(minutes=start)
            assert mirror.trades_since(1001, at) == [t for t in mirror.trades(1001) if t.creation_timestamp >= at]
