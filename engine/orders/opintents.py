"""Cancel, modify and close intents in the store: what is committed before the request goes out, and how the
outcome is written back.

Why they are stored at all: a crash between "cancel sent" and "cancel confirmed" used to leave nothing behind, so
nobody ever learnt whether the order was still working (or whether a close went out). Now each of these mutations
is an ``order_intents`` row of its ``kind``, committed with the same awaited :meth:`Store.record_intent` as a place
and left ``submitted`` until the outcome is known; :meth:`OrderManager.recover` finds it among the unresolved
intents, verifies against the Gateway whether it took effect and finishes it exactly once.

The row: ``gateway_order_id`` names the order of a cancel or modify; a modify keeps its absolute values in ``size``
(0 = unchanged) and the prices; a close names its position by ``contract_id`` (a partial close: how many in
``size``) and keeps ``position_before``, the signed size the close started from, which is what a later verification
compares the position with. ``custom_tag`` holds a local key (never sent: these requests carry no tag).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from engine.orders.intents import IntentResult, ResultKind
from engine.store import OrderIntent, OrderUpdate

OP_KEY_PREFIX = "op:"
"""Start of the local key kept in ``custom_tag`` for a cancel / modify / close intent."""


def op_intent(
    kind: str, account_id: int, at: datetime, *, order_id: int | None = None, contract_id: str = "",
    size: int | None = None, limit_price: float | None = None, stop_price: float | None = None,
    position_before: int | None = None,
) -> OrderIntent:
    """The row to commit before sending a ``kind`` mutation (side and order type do not apply: stored as 0)."""
    intent_id = uuid.uuid4().hex
    return OrderIntent(
        intent_id=intent_id, account_id=account_id, contract_id=contract_id, side=0, size=size or 0, order_type=0,
        custom_tag=f"{OP_KEY_PREFIX}{kind}:{intent_id}", created_at=at, limit_price=limit_price,
        stop_price=stop_price, gateway_order_id=order_id, kind=kind, position_before=position_before,
    )


def settled(intent_id: str, result: IntentResult, at: datetime) -> OrderUpdate:
    """The row's new status once the outcome is in: the result kind, or ``ambiguous`` (still unresolved: the next
    recovery verifies it again) when it is unknown."""
    status = "ambiguous" if result.kind is ResultKind.UNKNOWN else result.kind.value
    return OrderUpdate(intent_id, at, status=status)
