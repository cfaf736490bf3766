"""Property tests of the order lifecycle: terminal states absorb, fills only grow and never exceed the size."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from machines import GatewayOrderStatus, OrderLifecycle, OrderState, TransitionNotAllowed
from machines.order import TERMINAL_STATES
from tests.machines.conftest import Recorder, assert_chained

STATUSES = st.sampled_from([s for s in GatewayOrderStatus if s is not GatewayOrderStatus.NONE])
TRADE_IDS = st.integers(1, 8)  # a small pool, so duplicates are common
PRICES = st.sampled_from([99.75, 100.0, 100.25])


class OrderProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rec = Recorder()
        self.order = OrderLifecycle(1)
        self.trades: dict[int, int] = {}
        self.last_filled = 0
        self.terminal_state: OrderState | None = None

    @initialize(size=st.integers(1, 5))
    def build(self, size: int) -> None:
        self.order = OrderLifecycle(size, listeners=[self.rec])

    def snapshot(self) -> tuple[object, ...]:
        o = self.order
        return o.state, o.filled_quantity, o.average_price, o.order_id, o.gateway_status, len(self.rec.transitions)

    def attempt(self, event: Callable[[], object]) -> object:
        """Run an event; a refused one (not allowed, over-fill, bad value) must change nothing."""
        before = self.snapshot()
        try:
            return event()
        except (TransitionNotAllowed, ValueError):
            assert self.snapshot() == before
            return None

    @rule()
    def submit(self) -> None:
        self.attempt(self.order.submit)

    @rule()
    def accepted(self) -> None:
        self.attempt(lambda: self.order.accepted(77))

    @rule(code=st.integers(1, 9))
    def rejected(self, code: int) -> None:
        self.attempt(lambda: self.order.rejected(code, "rejected"))

    @rule()
    def ambiguous(self) -> None:
        self.attempt(lambda: self.order.ambiguous("read timeout"))

    @rule()
    def verification_started(self) -> None:
        self.attempt(self.order.verification_started)

    @rule()
    def verification_inconclusive(self) -> None:
        self.attempt(lambda: self.order.verification_inconclusive("search failed"))

    @rule(status=STATUSES, volume=st.integers(0, 6))
    def found(self, status: GatewayOrderStatus, volume: int) -> None:
        self.attempt(lambda: self.order.found(77, status, volume, 100.0))

    @rule()
    def proven_absent(self) -> None:
        self.attempt(self.order.proven_absent)

    @rule(quantity=st.integers(1, 3), price=PRICES, trade_id=TRADE_IDS)
    def fill(self, quantity: int, price: float, trade_id: int) -> None:
        duplicate = trade_id in self.trades
        counted = self.attempt(lambda: self.order.fill(quantity, price, trade_id))
        if duplicate:
            assert counted in (False, None)
        elif counted:
            self.trades[trade_id] = quantity

    @rule(status=STATUSES, volume=st.integers(0, 6))
    def status_update(self, status: GatewayOrderStatus, volume: int) -> None:
        self.attempt(lambda: self.order.status_update(status, volume, 100.0))

    @rule()
    def cancel_requested(self) -> None:
        self.attempt(self.order.cancel_requested)

    @rule()
    def cancel_failed(self) -> None:
        self.attempt(lambda: self.order.cancel_failed("not cancellable"))

    @rule()
    def cancel_confirmed(self) -> None:
        self.attempt(self.order.cancel_confirmed)

    @invariant()
    def terminal_states_absorb(self) -> None:
        if self.terminal_state is not None:
            assert self.order.state is self.terminal_state
        elif self.order.state in TERMINAL_STATES:
            self.terminal_state = self.order.state
        assert self.order.is_terminal == (self.order.state in TERMINAL_STATES)

    @invariant()
    def filled_quantity_grows_within_the_size(self) -> None:
        filled = self.order.filled_quantity
        assert self.last_filled <= filled <= self.order.size
        assert self.order.remaining == self.order.size - filled
        assert filled >= sum(self.trades.values())  # every distinct trade counts, once
        self.last_filled = filled

    @invariant()
    def a_filled_order_is_complete(self) -> None:
        if self.order.state is OrderState.FILLED:
            assert self.order.filled_quantity == self.order.size
        if self.order.filled_quantity and self.order.average_price is not None:
            assert 99.75 <= self.order.average_price <= 100.25

    @invariant()
    def transitions_are_reported_as_one_path(self) -> None:
        assert_chained(self.rec.transitions, "created", self.order.state)


TestOrderProperties = OrderProperties.TestCase
