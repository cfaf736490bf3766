"""One placed intent as the manager tracks it: its exact request (same tag on every attempt), its order machine, and
the listener that writes every machine transition to the store.

Why the listener lives here: "every transition is written to the store (time, from, to, cause)" must hold for every
path (place, verification, stream events, late fills) without each path remembering to do it. The listener journals
an ``OrderTransition`` and the intent's new current row (status, order id, filled quantity, average price) in one
fire-and-forget batch; the manager awaits ``store.flush()`` at the points where the caller must be able to rely on
it (before sending, and before returning a result).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import trio

from engine.orders.intents import IntentResult
from engine.protocol import models as m
from engine.store import OrderTransition, OrderUpdate, Record, Store
from machines.observe import Transition
from machines.order import OrderLifecycle, OrderState

log = logging.getLogger(__name__)

#: The store's status for a machine state. ``submitting`` is stored as ``submitted`` (the store's unresolved set).
STORE_STATUS: dict[OrderState, str] = {state: state.value for state in OrderState}
STORE_STATUS[OrderState.SUBMITTING] = "submitted"


@dataclass(eq=False)
class TrackedOrder:
    intent_id: str
    tag: str
    request: m.PlaceOrderRequest
    created_at: datetime
    """Wall instant the intent was first recorded (start of every search window)."""
    priority: bool = False
    key: str | None = None
    lifecycle: OrderLifecycle = field(init=False)
    generation: int = 0
    """Lifecycles so far: a proven-absent attempt ends one, the re-send (same tag) starts the next."""
    attempts: int = 0
    last_send_end: float = float("-inf")
    """Trio time the last request ended (a search miss only counts as absence some time after it)."""
    row_exists: bool = False
    done: trio.Event = field(default_factory=trio.Event)
    result: IntentResult | None = None
    evicted_at: float | None = None
    driving: bool = False
    """A task is driving this intent (first pass or background re-verification)."""
    completion_scope: trio.CancelScope | None = None

    @property
    def account_id(self) -> int:
        return self.request.account_id

    @property
    def sends_tag(self) -> bool:
        return self.request.custom_tag is not None

    def new_lifecycle(self, listener: Callable[[Transition], None]) -> OrderLifecycle:
        self.generation += 1
        suffix = "" if self.generation == 1 else f"#{self.generation}"
        self.lifecycle = OrderLifecycle(self.request.size, name=f"order:{self.intent_id}{suffix}", listeners=[listener])
        return self.lifecycle


def transition_recorder(store: Store, order: TrackedOrder, now: Callable[[], datetime]) -> Callable[[Transition], None]:
    """The listener of ``order``'s machines: journal each transition and the intent's new current row."""

    def record(transition: Transition) -> None:
        lifecycle = order.lifecycle
        at = now()
        records: list[Record] = [
            OrderTransition(
                order_ref=order.intent_id,
                from_state=transition.source,
                to_state=transition.target,
                cause=transition.cause or transition.event,
                at=at,
                account_id=order.account_id,
            )
        ]
        if order.row_exists:
            records.append(
                OrderUpdate(
                    intent_id=order.intent_id,
                    at=at,
                    status=STORE_STATUS[lifecycle.state],
                    gateway_order_id=lifecycle.order_id,
                    filled_qty=lifecycle.filled_quantity,
                    avg_price=lifecycle.average_price,
                )
            )
        if not store.journal(*records):
            log.error("store queue full: transition %s -> %s of %s not recorded", transition.source,
                      transition.target, order.intent_id)

    return record
