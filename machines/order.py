"""Order lifecycle: the client's view of one order, fused with the Gateway's order statuses.

What it models (the seed's SCENARIO-001 "network interruption during placement" and SCENARIO-002 "partial fills"):

- ``created`` (the intent and its idempotency key are stored) -> ``submitting`` (the placeOrder request is in
  flight) -> ``working`` (the Gateway answered with an order id) | ``rejected`` (it answered with an error code) |
  ``ambiguous`` (no answer: timeout, dropped connection, 5xx after sending; the order may or may not exist).
- ``ambiguous`` -> ``verifying`` (the driver searches for the order, e.g. by its custom tag) -> ``found`` adopts the
  real Gateway state (working / cancelling / filled / cancelled / expired / rejected) | ``absent`` (proven not to
  exist: safe to place again under a NEW lifecycle) | back to ``ambiguous`` when the search was inconclusive.
- ``working`` covers the Gateway statuses Open (1), Pending (6) and Suspended (8, a staged bracket child); the
  exact status is kept in :attr:`OrderLifecycle.gateway_status`. PendingCancellation (7) is ``cancelling``.
- partial fills keep the order ``working`` with a growing filled quantity; the fill that completes the size makes it
  ``filled``. Fills are deduplicated by trade id, and the Gateway's cumulative ``fillVolume`` counts too (the filled
  quantity is the larger of the two views, so a fill seen both ways is never counted twice).
- ``working`` -> ``cancelling`` on a cancel request; -> ``cancelled`` when confirmed, back to ``working`` when the
  cancel failed, or ``filled`` when the fill wins the race.
- ``filled``, ``cancelled``, ``expired``, ``rejected`` and ``absent`` are terminal and absorb every later event
  without raising (races are normal: a cancel failure arriving after the fill). Late fills after a cancel are
  still accepted: the filled quantity and average price grow and a ``late_fill`` transition (terminal state to
  itself) is reported to the listeners, but the state stays.

Why a machine: ambiguity after a network failure is where duplicate or lost orders come from; the explicit
``ambiguous -> verifying`` path makes "never re-send before proving absence" a property of the design.

Invariants (property-tested): terminal states absorb; the filled quantity never decreases and never exceeds the
size (an over-fill raises :class:`OverfillError` and changes nothing); a trade id counts once.

Driver usage::

    order = OrderLifecycle(size=3, name=f"order:{key}")
    order.submit()
    ...  # order.accepted(order_id) | order.rejected(code, message) | order.ambiguous("read timeout")
    order.fill(quantity=1, price=21000.25, trade_id=777)      # from the user hub's trade events
    order.status_update(GatewayOrderStatus.OPEN, fill_volume=1)  # from the user hub's order events
    order.cancel_requested(); order.cancel_failed("...") / order.cancel_confirmed()
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum

from statemachine import State, StateMachine

from machines.observe import Lifecycle, Transition, TransitionListener


class GatewayOrderStatus(IntEnum):
    """ProjectX ``OrderStatus`` (see shared docs, projectx-gateway.md section 6)."""

    NONE = 0
    OPEN = 1
    FILLED = 2
    CANCELLED = 3
    EXPIRED = 4
    REJECTED = 5
    PENDING = 6
    PENDING_CANCELLATION = 7
    SUSPENDED = 8


class OrderState(StrEnum):
    CREATED = "created"
    SUBMITTING = "submitting"
    WORKING = "working"
    CANCELLING = "cancelling"
    AMBIGUOUS = "ambiguous"
    VERIFYING = "verifying"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    ABSENT = "absent"


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.REJECTED, OrderState.ABSENT}
)

_STATUS_TARGET: dict[GatewayOrderStatus, OrderState] = {
    GatewayOrderStatus.OPEN: OrderState.WORKING,
    GatewayOrderStatus.PENDING: OrderState.WORKING,
    GatewayOrderStatus.SUSPENDED: OrderState.WORKING,
    GatewayOrderStatus.PENDING_CANCELLATION: OrderState.CANCELLING,
    GatewayOrderStatus.FILLED: OrderState.FILLED,
    GatewayOrderStatus.CANCELLED: OrderState.CANCELLED,
    GatewayOrderStatus.EXPIRED: OrderState.EXPIRED,
    GatewayOrderStatus.REJECTED: OrderState.REJECTED,
}


class OverfillError(ValueError):
    """A fill (or a reported fill volume) would take the filled quantity beyond the order size."""


class OrderChart(StateMachine):
    """One order: submission, ambiguity and verification, partial fills, the cancel race."""

    created = State("Created", initial=True)
    submitting = State("Submitting")
    working = State("Working")
    cancelling = State("Cancelling")
    ambiguous = State("Ambiguous")
    verifying = State("Verifying")
    filled = State("Filled", final=True)
    cancelled = State("Cancelled", final=True)
    expired = State("Expired", final=True)
    rejected = State("Rejected", final=True)
    absent = State("Proven absent", final=True)

    submit = created.to(submitting)
    accept = submitting.to(working)
    reject = submitting.to(rejected)
    outcome_unknown = submitting.to(ambiguous)
    verify = ambiguous.to(verifying)
    verification_inconclusive = verifying.to(ambiguous)
    not_found = verifying.to(absent)
    found = (
        verifying.to(working, cond="to_working")
        | verifying.to(cancelling, cond="to_cancelling")
        | verifying.to(filled, cond="to_filled")
        | verifying.to(cancelled, cond="to_cancelled")
        | verifying.to(expired, cond="to_expired")
        | verifying.to(rejected, cond="to_rejected")
    )
    fill = (
        working.to(filled, cond="completes")
        | working.to.itself(unless="completes")
        | cancelling.to(filled, cond="completes")
        | cancelling.to.itself(unless="completes")
    )
    status_update = (
        working.to.itself(cond="to_working")
        | working.to(cancelling, cond="to_cancelling")
        | working.to(filled, cond="to_filled")
        | working.to(cancelled, cond="to_cancelled")
        | working.to(expired, cond="to_expired")
        | working.to(rejected, cond="to_rejected")
        | cancelling.to.itself(cond="to_cancelling")
        | cancelling.to(filled, cond="to_filled")
        | cancelling.to(cancelled, cond="to_cancelled")
        | cancelling.to(expired, cond="to_expired")
        | cancelling.to(rejected, cond="to_rejected")
    )
    cancel = working.to(cancelling)
    cancel_failed = cancelling.to(working)
    cancel_confirmed = cancelling.to(cancelled)

    def completes(self, completes: bool = False) -> bool:
        return completes

    def to_working(self, outcome: str = "") -> bool:
        return outcome == OrderState.WORKING

    def to_cancelling(self, outcome: str = "") -> bool:
        return outcome == OrderState.CANCELLING

    def to_filled(self, outcome: str = "") -> bool:
        return outcome == OrderState.FILLED

    def to_cancelled(self, outcome: str = "") -> bool:
        return outcome == OrderState.CANCELLED

    def to_expired(self, outcome: str = "") -> bool:
        return outcome == OrderState.EXPIRED

    def to_rejected(self, outcome: str = "") -> bool:
        return outcome == OrderState.REJECTED


class OrderLifecycle(Lifecycle):
    """Typed driver-facing API of :class:`OrderChart`; see the module docstring."""

    def __init__(self, size: int, *, name: str = "order", listeners: Iterable[TransitionListener] = ()) -> None:
        if size < 1:
            raise ValueError(f"order size must be >= 1, got {size}")
        super().__init__(OrderChart(), name, listeners)
        self.size = size
        self._order_id: int | None = None
        self._gateway_status: GatewayOrderStatus | None = None
        self._trades: dict[int | str, tuple[int, float]] = {}
        self._traded_quantity = 0
        self._traded_notional = 0.0
        self._reported_volume = 0
        self._reported_price: float | None = None
        self._reject_code: int | None = None
        self._reject_message: str | None = None

    # ----------------------------------------------------------------- queries
    @property
    def state(self) -> OrderState:
        return OrderState(self._state_id)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def order_id(self) -> int | None:
        return self._order_id

    @property
    def gateway_status(self) -> GatewayOrderStatus | None:
        """The last status the Gateway reported (``None`` before it reported any)."""
        return self._gateway_status

    @property
    def filled_quantity(self) -> int:
        return max(self._traded_quantity, self._reported_volume)

    @property
    def remaining(self) -> int:
        return self.size - self.filled_quantity

    @property
    def average_price(self) -> float | None:
        """Volume-weighted price of the deduplicated trades, else the Gateway's ``filledPrice``, else ``None``."""
        if self._traded_quantity:
            return self._traded_notional / self._traded_quantity
        return self._reported_price

    @property
    def reject_code(self) -> int | None:
        return self._reject_code

    @property
    def reject_message(self) -> str | None:
        return self._reject_message

    # ------------------------------------------------------------ submission
    def submit(self) -> None:
        """The placeOrder request is about to be sent (its idempotency key is stored)."""
        self._fire("submit")

    def accepted(self, order_id: int) -> None:
        """placeOrder answered success with ``order_id``. A repeat with the same id (after ``found``) is ignored."""
        if self._order_id == order_id and self.state is not OrderState.SUBMITTING:
            return
        if self._absorbs():
            return

        def update() -> None:
            self._order_id = order_id

        self._fire("accept", cause=f"order id {order_id}", update=update)

    def rejected(self, code: int, message: str | None = None) -> None:
        """placeOrder answered with an error code: the order does not exist."""
        if self._absorbs():
            return

        def update() -> None:
            self._reject_code = code
            self._reject_message = message

        self._fire("reject", cause=f"error code {code}: {message}" if message else f"error code {code}", update=update)

    def ambiguous(self, reason: str) -> None:
        """No trustworthy answer to placeOrder: the order may or may not exist."""
        self._fire("outcome_unknown", cause=reason)

    def verification_started(self) -> None:
        self._fire("verify")

    def verification_inconclusive(self, reason: str) -> None:
        """The search could not decide (it failed, or it is too early to trust a miss); verify again later."""
        self._fire("verification_inconclusive", cause=reason)

    def found(
        self,
        order_id: int,
        status: GatewayOrderStatus,
        fill_volume: int = 0,
        filled_price: float | None = None,
    ) -> None:
        """Verification found the order: adopt its real state."""
        target = self._target_of(status, fill_volume)

        def update() -> None:
            self._order_id = order_id
            self._adopt(status, fill_volume, filled_price)

        self._fire("found", cause=f"order id {order_id} status {status.name}", update=update, outcome=target)

    def proven_absent(self) -> None:
        """Verification proved the order does not exist: it may be placed again (under a new lifecycle)."""
        self._fire("not_found")

    # ------------------------------------------------------ fills and status
    def fill(self, quantity: int, price: float, trade_id: int | str) -> bool:
        """Record one trade. Returns ``False`` for a trade id already counted (nothing changes)."""
        if quantity < 1:
            raise ValueError(f"fill quantity must be >= 1, got {quantity}")
        if trade_id in self._trades:
            return False
        traded = self._traded_quantity + quantity
        if traded > self.size:
            raise OverfillError(f"trade {trade_id} of {quantity} would fill {traded} of an order of size {self.size}")
        before = self.filled_quantity

        def update() -> None:
            self._trades[trade_id] = (quantity, price)
            self._traded_quantity = traded
            self._traded_notional += quantity * price

        cause = f"trade {trade_id}: {quantity} @ {price}"
        if self.is_terminal:
            update()
            self._emit_late_fill(before, cause)
            return True
        self._fire("fill", cause=cause, update=update, completes=max(traded, self._reported_volume) >= self.size)
        return True

    def status_update(
        self,
        status: GatewayOrderStatus,
        fill_volume: int = 0,
        filled_price: float | None = None,
    ) -> None:
        """An order update from the user hub (or a search). Unchanged updates are ignored."""
        target = self._target_of(status, fill_volume)
        if self.is_terminal:
            before = self.filled_quantity
            self._adopt(self._gateway_status or status, fill_volume, filled_price)
            self._emit_late_fill(before, f"fill volume {fill_volume}")
            return
        if self.state is OrderState.CANCELLING and target is OrderState.WORKING:
            target = OrderState.CANCELLING  # an Open update while the cancel is pending changes nothing yet
        if status == self._gateway_status and fill_volume <= self._reported_volume and target is self.state:
            return

        def update() -> None:
            self._adopt(status, fill_volume, filled_price)

        self._fire("status_update", cause=f"status {status.name}", update=update, outcome=target)

    # ---------------------------------------------------------------- cancel
    def cancel_requested(self) -> None:
        self._fire("cancel")

    def cancel_failed(self, reason: str) -> None:
        """The cancel request failed (the order is still working). Absorbed if the order already ended."""
        if not self._absorbs():
            self._fire("cancel_failed", cause=reason)

    def cancel_confirmed(self) -> None:
        """The Gateway confirmed the cancel. Absorbed if the order already ended (e.g. the fill won the race)."""
        if not self._absorbs():
            self._fire("cancel_confirmed")

    # --------------------------------------------------------------- helpers
    def _absorbs(self) -> bool:
        return self.is_terminal

    def _target_of(self, status: GatewayOrderStatus, fill_volume: int) -> OrderState:
        status = GatewayOrderStatus(status)
        if status is GatewayOrderStatus.NONE:
            raise ValueError("gateway order status 0 (None) carries no state")
        if fill_volume < 0:
            raise ValueError(f"fill volume must be >= 0, got {fill_volume}")
        if fill_volume > self.size:
            raise OverfillError(f"reported fill volume {fill_volume} exceeds the order size {self.size}")
        target = _STATUS_TARGET[status]
        if fill_volume == self.size and target in (OrderState.WORKING, OrderState.CANCELLING):
            return OrderState.FILLED  # the whole size traded: the Filled status is only late
        return target

    def _adopt(self, status: GatewayOrderStatus, fill_volume: int, filled_price: float | None) -> None:
        self._gateway_status = GatewayOrderStatus(status)
        volume = self.size if status is GatewayOrderStatus.FILLED else fill_volume
        if volume > self._reported_volume:
            self._reported_volume = volume
            if filled_price is not None:
                self._reported_price = filled_price

    def _emit_late_fill(self, before: int, cause: str) -> None:
        if self.filled_quantity > before:
            state = self._state_id
            self._emit(Transition(self._name, state, state, "late_fill", cause))
