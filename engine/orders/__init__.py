"""Order manager: exactly-once orders over an unreliable network (seed GAP-API-SCENARIO-001 and -002).

Why it is built this way
------------------------
* **One idempotency key per intent, stored first.** Every place intent gets a ``customTag`` that is durably committed
  with the intent BEFORE the request goes out. The Gateway refuses a reused tag for good, so every attempt of the
  intent carries the same tag and at most one order can ever exist for it; after a crash the store lists the intent
  as unresolved and :meth:`OrderManager.recover` finds it again by that tag.
* **Ambiguity is verified, never resent blindly.** A mutation's outcome is accepted / rejected / denied / ambiguous
  (:mod:`engine.gateway.outcome`). Ambiguous places go to verification (stream cache, then ``Order/v2/query`` over the
  intent's window, matched by tag): found -> the real order id and state are adopted; proven absent (a successful
  search that missed, some time after the last send) -> re-sent with the SAME tag; "tag already in use" after an
  ambiguous attempt -> the first attempt landed, go and find it; still unknown after ``verification.maxRetries`` ->
  ``unknown``, kept unresolved in the store and handed to the reconciler.
* **Cancel, modify and close are durable intents too** (:mod:`engine.orders.opintents`): committed before the send
  and left unresolved until their outcome is known, so :meth:`OrderManager.recover` verifies them after a crash
  (the order's status, or the position and the close orders since) and sends only what did not take effect, once.
  A cancel or close the store refuses is still sent (it only reduces risk); a modify is not.
* **The in-flight request is shielded** from outside cancellation (``trio.CancelScope(shield=True)``) and bounded
  by its own deadline, so a shutdown never leaves a sent order unrecorded; the rest of an intent runs in the
  manager's nursery, so cancelling a caller never abandons an intent half-way.
* **One order machine per order** (:class:`machines.order.OrderLifecycle`), and every transition is written to the
  store (time, from, to, cause) together with the intent's current row.
* **Fills** come from ``GatewayUserOrder.fillVolume`` and ``GatewayUserTrade`` (deduplicated by trade id) with the
  average price and remaining size; events that arrive before the order id is known are held and replayed; an
  order not complete within ``partialFills.completeTimeout`` is handed to the reconciler; a fill after a cancel
  request is applied.

API::

    manager = OrderManager.from_settings(settings, client, store, wall_clock=clock, on_handoff=callback)
    await nursery.start(manager.run)                       # recover() first, then ready
    result = await manager.place(PlaceIntent(1001, "CON.F.US.MES.Z26", OrderSide.BID, 2), key=None, priority=False)
    await manager.cancel(account_id, order_id, priority=True)
    await manager.modify(account_id, order_id, size=None, limit_price=None, stop_price=None, priority=False)
    await manager.close_position(account_id, contract_id, size=None, priority=True)   # size: partial close
    await manager.close_position(account_id, contract_id, priority=True, known_size=-2)  # no pre-read
    await manager.flatten(account_id)
    manager.on_order_event(order_model); manager.on_trade_event(trade_model); manager.on_user_event(target, args)

Settings: see :mod:`engine.orders.policy` for what each ``orderManagement`` switch does when off.
"""

from __future__ import annotations

from engine.orders.intents import IntentResult, PlaceIntent, ResultKind
from engine.orders.manager import Handoff, ManagerNotRunning, OrderManager
from engine.orders.policy import OrderPolicy

__all__ = ["Handoff", "IntentResult", "ManagerNotRunning", "OrderManager", "OrderPolicy", "PlaceIntent", "ResultKind"]
