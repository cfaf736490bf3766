"""Unit tests of the order lifecycle: every transition of OrderChart, fills, the cancel race and absorption."""

from __future__ import annotations

import pytest

from machines import GatewayOrderStatus, OrderChart, OrderLifecycle, OrderState, OverfillError, TransitionNotAllowed
from tests.machines.conftest import Recorder, chart_edges, run_all_recording_tests

S = GatewayOrderStatus

#: Gateway status -> the state an order reaches from working, with no fill volume reported.
STATUS_TARGETS = [
    (S.OPEN, OrderState.WORKING),
    (S.PENDING, OrderState.WORKING),
    (S.SUSPENDED, OrderState.WORKING),
    (S.PENDING_CANCELLATION, OrderState.CANCELLING),
    (S.FILLED, OrderState.FILLED),
    (S.CANCELLED, OrderState.CANCELLED),
    (S.EXPIRED, OrderState.EXPIRED),
    (S.REJECTED, OrderState.REJECTED),
]


def order_in(state: OrderState, rec: Recorder, size: int = 3) -> OrderLifecycle:
    """An order brought into a non-terminal ``state`` through the public API."""
    order = OrderLifecycle(size, name="order:k1", listeners=[rec])
    if state is OrderState.CREATED:
        return order
    order.submit()
    if state in (OrderState.AMBIGUOUS, OrderState.VERIFYING):
        order.ambiguous("read timeout")
        if state is OrderState.VERIFYING:
            order.verification_started()
    elif state in (OrderState.WORKING, OrderState.CANCELLING):
        order.accepted(4242)
        if state is OrderState.CANCELLING:
            order.cancel_requested()
    assert order.state is state
    return order


def test_accepted_order_fills_partially_then_completely(rec: Recorder) -> None:
    order = order_in(OrderState.SUBMITTING, rec)
    order.accepted(4242)
    assert (order.state, order.order_id, order.filled_quantity, order.remaining) == (OrderState.WORKING, 4242, 0, 3)
    assert order.fill(1, 100.0, 1) is True
    assert (order.state, order.filled_quantity, order.remaining) == (OrderState.WORKING, 1, 2)
    assert order.fill(2, 103.0, 2) is True
    assert (order.state, order.filled_quantity, order.remaining) == (OrderState.FILLED, 3, 0)
    assert order.average_price == pytest.approx(102.0)
    assert order.is_terminal
    assert [t.target for t in rec.transitions[-3:]] == ["working", "working", "filled"]


def test_rejected_order_keeps_the_code_and_message(rec: Recorder) -> None:
    order = order_in(OrderState.SUBMITTING, rec)
    order.rejected(2, "insufficient margin")
    assert (order.state, order.reject_code, order.reject_message) == (OrderState.REJECTED, 2, "insufficient margin")
    assert rec.transitions[-1].cause == "error code 2: insufficient margin"


def test_ambiguous_order_is_verified_then_proven_absent(rec: Recorder) -> None:
    order = order_in(OrderState.SUBMITTING, rec)
    order.ambiguous("connection reset after send")
    assert order.state is OrderState.AMBIGUOUS
    order.verification_started()
    order.verification_inconclusive("search failed: HTTP 503")
    assert order.state is OrderState.AMBIGUOUS
    order.verification_started()
    order.proven_absent()
    assert (order.state, order.is_terminal, order.order_id) == (OrderState.ABSENT, True, None)


@pytest.mark.parametrize(("status", "target"), STATUS_TARGETS)
def test_found_order_adopts_the_real_state(rec: Recorder, status: GatewayOrderStatus, target: OrderState) -> None:
    order = order_in(OrderState.VERIFYING, rec)
    order.found(4242, status)
    assert (order.state, order.order_id, order.gateway_status) == (target, 4242, status)
    if status is S.FILLED:
        assert order.filled_quantity == 3


def test_found_with_partial_fill_volume_and_price(rec: Recorder) -> None:
    order = order_in(OrderState.VERIFYING, rec)
    order.found(4242, S.OPEN, fill_volume=2, filled_price=99.5)
    assert (order.state, order.filled_quantity, order.average_price) == (OrderState.WORKING, 2, 99.5)
    order.fill(1, 100.0, "t1")  # the trades behind the reported volume arrive: not counted twice
    order.fill(1, 99.0, "t2")
    assert (order.state, order.filled_quantity, order.average_price) == (OrderState.WORKING, 2, 99.5)
    order.fill(1, 101.0, "t3")
    assert (order.state, order.filled_quantity) == (OrderState.FILLED, 3)
    assert order.average_price == pytest.approx(100.0)


def test_found_with_the_whole_size_filled_is_filled_even_if_the_status_lags(rec: Recorder) -> None:
    order = order_in(OrderState.VERIFYING, rec)
    order.found(4242, S.OPEN, fill_volume=3)
    assert order.state is OrderState.FILLED


@pytest.mark.parametrize(("status", "target"), STATUS_TARGETS)
def test_status_update_while_working(rec: Recorder, status: GatewayOrderStatus, target: OrderState) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.status_update(status)
    assert (order.state, order.gateway_status) == (target, status)


@pytest.mark.parametrize(
    ("status", "target"), [(s, OrderState.CANCELLING if t is OrderState.WORKING else t) for s, t in STATUS_TARGETS]
)
def test_status_update_while_cancelling(rec: Recorder, status: GatewayOrderStatus, target: OrderState) -> None:
    order = order_in(OrderState.CANCELLING, rec)
    order.status_update(status)
    assert order.state is target


def test_partial_fill_volume_from_status_updates_grows_and_duplicates_are_quiet(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.status_update(S.OPEN, fill_volume=1, filled_price=10.0)
    count = len(rec.transitions)
    order.status_update(S.OPEN, fill_volume=1)
    assert len(rec.transitions) == count
    order.status_update(S.OPEN, fill_volume=2, filled_price=11.0)
    assert (order.state, order.filled_quantity, order.average_price) == (OrderState.WORKING, 2, 11.0)
    order.status_update(S.OPEN, fill_volume=3)
    assert order.state is OrderState.FILLED


def test_cancel_confirmed(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.cancel_requested()
    assert order.state is OrderState.CANCELLING
    order.cancel_confirmed()
    assert order.state is OrderState.CANCELLED


def test_cancel_failure_returns_to_working(rec: Recorder) -> None:
    order = order_in(OrderState.CANCELLING, rec)
    order.cancel_failed("order not cancellable")
    assert order.state is OrderState.WORKING
    assert rec.transitions[-1].cause == "order not cancellable"


def test_fill_wins_the_race_with_the_cancel(rec: Recorder) -> None:
    order = order_in(OrderState.CANCELLING, rec)
    order.fill(1, 50.0, 10)
    assert (order.state, order.filled_quantity) == (OrderState.CANCELLING, 1)
    order.fill(2, 50.0, 11)
    assert order.state is OrderState.FILLED
    count = len(rec.transitions)
    order.cancel_failed("already filled")
    order.cancel_confirmed()
    order.status_update(S.CANCELLED)
    assert order.state is OrderState.FILLED
    assert len(rec.transitions) == count


def test_late_fills_after_cancel_are_accepted_but_the_state_stays(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.fill(1, 20.0, 1)
    order.status_update(S.CANCELLED)
    assert order.state is OrderState.CANCELLED
    assert order.fill(1, 22.0, 2) is True
    assert (order.state, order.filled_quantity, order.average_price) == (OrderState.CANCELLED, 2, 21.0)
    last = rec.transitions[-1]
    assert (last.source, last.event, last.target) == ("cancelled", "late_fill", "cancelled")
    order.status_update(S.CANCELLED, fill_volume=3)
    assert (order.state, order.filled_quantity) == (OrderState.CANCELLED, 3)


def test_duplicate_trade_ids_count_once(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    assert order.fill(1, 10.0, "a") is True
    count = len(rec.transitions)
    assert order.fill(1, 10.0, "a") is False
    assert order.filled_quantity == 1
    assert len(rec.transitions) == count


def test_overfill_raises_and_changes_nothing(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.fill(2, 10.0, "a")
    with pytest.raises(OverfillError, match="size 3"):
        order.fill(2, 10.0, "b")
    with pytest.raises(OverfillError, match="exceeds the order size"):
        order.status_update(S.OPEN, fill_volume=4)
    with pytest.raises(ValueError, match="quantity"):
        order.fill(0, 10.0, "c")
    assert (order.state, order.filled_quantity) == (OrderState.WORKING, 2)
    assert order.fill(1, 10.0, "b") is True
    assert order.state is OrderState.FILLED


def test_bad_status_values_are_named(rec: Recorder) -> None:
    order = order_in(OrderState.WORKING, rec)
    with pytest.raises(ValueError, match="status 0"):
        order.status_update(S.NONE)
    with pytest.raises(ValueError, match="fill volume"):
        order.status_update(S.OPEN, fill_volume=-1)
    with pytest.raises(ValueError):
        order.status_update(GatewayOrderStatus(9))
    with pytest.raises(ValueError, match="order size"):
        OrderLifecycle(0)


@pytest.mark.parametrize("terminal", [S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED])
def test_terminal_states_absorb_every_later_event(rec: Recorder, terminal: GatewayOrderStatus) -> None:
    order = order_in(OrderState.WORKING, rec)
    order.status_update(terminal)
    state = order.state
    assert order.is_terminal
    order.accepted(4242)
    order.rejected(1, "late")
    order.cancel_failed("late")
    order.cancel_confirmed()
    for status in GatewayOrderStatus:
        if status is not S.NONE:
            order.status_update(status)
    assert order.state is state
    for event in (order.submit, order.cancel_requested, order.verification_started, order.proven_absent):
        with pytest.raises(TransitionNotAllowed):
            event()
    assert order.state is state


def test_events_out_of_order_raise_and_change_nothing(rec: Recorder) -> None:
    order = order_in(OrderState.CREATED, rec)
    with pytest.raises(TransitionNotAllowed):
        order.accepted(1)
    with pytest.raises(TransitionNotAllowed):
        order.fill(1, 1.0, 1)
    order.submit()
    with pytest.raises(TransitionNotAllowed):
        order.cancel_requested()
    with pytest.raises(TransitionNotAllowed):
        order.status_update(S.OPEN)
    with pytest.raises(TransitionNotAllowed):
        order.found(1, S.OPEN)
    assert (order.state, order.order_id, order.filled_quantity) == (OrderState.SUBMITTING, None, 0)


def test_every_transition_is_exercised() -> None:
    recorded = run_all_recording_tests(globals())
    missing = chart_edges(OrderChart) - recorded.edges
    assert not missing, f"transitions without a test: {sorted(missing)}"
