"""The order manager: the Trio driver of the order machines, one machine per placed order (exactly-once placement).

The path of a place intent (see the package docstring for the whole story)::

    PlaceIntent -> customTag (random, or stable for a caller key) -> intent + tag durably committed
      -> Order/place (shielded from outside cancellation, own deadline) -> outcome
         accepted  -> working (order id adopted; early stream events replayed)
         rejected  -> rejected (a documented code)           "tag already in use" -> verify, expecting the order
         denied    -> never sent
         ambiguous -> verify: stream cache, then Order/v2/query over the window, matched by tag
                      found -> adopt the real id and state | proven absent -> re-send with the SAME tag
                      inconclusive after maxRetries -> unknown, handed to the reconciler

Cancels, modifies and closes have no tag, but each is committed to the store as an intent of its kind before it is
sent (:mod:`engine.orders.opintents`), so a crash mid-way leaves it unresolved for :meth:`OrderManager.recover`; an
ambiguous one (or one found unresolved after a restart) is verified by reading the order (or the position and the
orders created since the send) and is sent again only when the read proves it did not happen. Cancel and modify
are idempotent anyway (absolute values); a close is sent again only after proving no close order appeared and the
position did not change, so a position can never be closed twice. The position is read before a close so that
verification has something to compare with; a whole close whose position the caller already knows (``known_size``,
e.g. the risk driver's mirror) skips that read, since closeContract closes whatever the server holds.

Stream events (``on_order_event`` / ``on_trade_event``, or ``on_user_event`` with raw hub arguments) come from the
mirror; events that arrive before the order's id is known (the Gateway publishes the order while Order/place is
still answering) are held and replayed once the id is adopted.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import trio
from statemachine.exceptions import TransitionNotAllowed

from engine.gateway.errors import CircuitOpenError, GatewayError
from engine.gateway.outcome import MutationOutcome, OutcomeKind
from engine.orders.intents import IntentResult, PlaceIntent, ResultKind
from engine.orders.opintents import op_intent, settled
from engine.orders.policy import OrderPolicy
from engine.orders.port import OrderClient
from engine.orders.search import match_fingerprint, match_tag, orders_since
from engine.orders.tags import is_sent_tag, new_tag, tag_in_use, untagged_key
from engine.orders.tracked import STORE_STATUS, TrackedOrder, transition_recorder
from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.errors import ClosePositionErrorCode
from engine.protocol.timebase import WallClock
from engine.store import UNRESOLVED_STATUSES, Fill, OrderIntent, Store, StoredIntent, StoreError
from machines.order import GatewayOrderStatus, OrderState, OverfillError

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

_PRE_ID_STATES = frozenset({OrderState.CREATED, OrderState.SUBMITTING, OrderState.AMBIGUOUS, OrderState.VERIFYING})
_WORKING_STATUSES = [OrderStatus.OPEN, OrderStatus.PENDING, OrderStatus.SUSPENDED, OrderStatus.PENDING_CANCELLATION]
_EARLY_TRADES_CAP = 10_000
"""Hard cap of trades held for orders whose id is not known yet (the time bound below normally keeps far fewer)."""
_CLOSE_WINDOW_SLACK_S = 5.0
_MAX_BREAKER_WAIT_S = 300.0
_RESOLVE_BACKOFF_S = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
"""Pauses of the background re-verification of an intent left unknown (the last one repeats)."""


class Verdict(StrEnum):
    FOUND = "found"
    ABSENT = "absent"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Handoff:
    """Something the reconciler must look at: ``kind`` is ``unresolved`` (verification could not decide) or
    ``incomplete`` (an order not complete within ``partialFills.completeTimeout``)."""

    kind: str
    intent: str
    account_id: int
    reason: str
    intent_id: str | None = None
    custom_tag: str | None = None
    order_id: int | None = None
    state: str | None = None
    filled_qty: int | None = None
    remaining: int | None = None


class ManagerNotRunning(RuntimeError):
    """An intent was submitted before ``run`` finished recovery (or after it stopped)."""


class OrderManager:
    """See the module docstring. Start with ``await nursery.start(manager.run)`` (recovery runs first)."""

    def __init__(
        self,
        client: OrderClient,
        store: Store,
        *,
        policy: OrderPolicy | None = None,
        wall_clock: WallClock | None = None,
        on_handoff: Callable[[Handoff], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.policy = policy if policy is not None else OrderPolicy()
        self.clock = wall_clock if wall_clock is not None else WallClock()
        self.on_handoff = on_handoff
        self.handoffs: list[Handoff] = []
        self._nursery: trio.Nursery | None = None
        self._by_tag: dict[tuple[int, str], TrackedOrder] = {}
        self._by_order_id: dict[int, TrackedOrder] = {}
        self._keys: dict[tuple[int, str], tuple[float, TrackedOrder]] = {}
        self._stream_orders: dict[tuple[int, str], m.OrderModel] = {}
        self._early_trades: OrderedDict[int, tuple[float, m.HalfTradeModel]] = OrderedDict()
        """trade id -> (Trio time received, trade) of trades whose order is unknown, held while an order of ours
        still awaits its id and for at most ``early_trade_ttl_s`` (see :meth:`on_trade_event`)."""
        self._awaiting_id: set[TrackedOrder] = set()
        """Our orders that were (or may have been) sent and whose Gateway id is not known yet."""
        self._live_ops: set[str] = set()
        """Cancel / modify / close intents being driven by this process (recover() leaves them to their driver)."""
        self._unwritten_ops: dict[str, OrderIntent] = {}
        """Priority (risk enforcement) cancel / close intents, written with their outcome (see _record_op)."""
        self.early_trade_ttl_s = max(10.0, 2 * self.policy.verification_timeout_s
                                * (self.policy.verification_max_retries + 1))

    @classmethod
    def from_settings(
        cls, settings: EngineSettings, client: OrderClient, store: Store, *, wall_clock: WallClock | None = None,
        on_handoff: Callable[[Handoff], None] | None = None, **policy_overrides: Any,
    ) -> OrderManager:
        return cls(client, store, policy=OrderPolicy.from_settings(settings, **policy_overrides),
                   wall_clock=wall_clock, on_handoff=on_handoff)

    # ================================================================================================ lifecycle
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the verification and completion tasks; resolve the store's unresolved intents, then report started."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self.recover()
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._nursery is None:
            raise ManagerNotRunning("the order manager is not running: start it with nursery.start(manager.run)")
        self._nursery.start_soon(fn, *args)

    async def recover(self) -> list[IntentResult]:
        """Verify every intent the store lists as unresolved (submitted / ambiguous / verifying) and return the
        outcomes. Called by :meth:`run` before anything else; safe to call again (e.g. by the reconciler)."""
        stored = await self.store.unresolved_intents()
        orders: list[TrackedOrder] = []
        ops = [i for i in stored if i.kind != "place" and i.intent_id not in self._live_ops]
        for intent in stored:
            if intent.kind != "place":
                continue
            existing = self._by_tag.get((intent.account_id, intent.custom_tag))
            if existing is not None and existing.driving:
                orders.append(existing)  # already being driven (or re-verified in the background)
                continue
            orders.append(self._resume(intent))
        if orders or ops:
            log.info("order recovery: %d unresolved intent(s) to verify", len(orders) + len(ops))
        op_results: dict[str, IntentResult] = {}
        async with trio.open_nursery() as nursery:  # cancels, modifies and closes beside the places' verification
            for op in ops:
                nursery.start_soon(self._resume_op, op, op_results)
            results = [await self._wait(order) for order in orders]
        results += [op_results[op.intent_id] for op in ops]
        if ops:
            await self._flush()  # the ops' outcomes are journalled: on record before recovery reports done
        for result in results:
            log.info("order recovery: %s %s %s -> %s (%s)", result.intent,
                     result.intent_id or result.details.get("op_intent_id"), result.custom_tag or "",
                     result.kind.value, result.state or result.reason)
        return results

    def _resume(self, intent: StoredIntent) -> TrackedOrder:
        request = m.PlaceOrderRequest(
            account_id=intent.account_id, contract_id=intent.contract_id, type=intent.order_type, side=intent.side,
            size=intent.size, limit_price=intent.limit_price, stop_price=intent.stop_price,
            trail_price=intent.trail_price, custom_tag=intent.custom_tag if is_sent_tag(intent.custom_tag) else None,
        )
        order = TrackedOrder(intent.intent_id, intent.custom_tag, request, intent.created_at, row_exists=True)
        lifecycle = order.new_lifecycle(transition_recorder(self.store, order, self.clock.now))
        self._register_tag(order)
        if intent.gateway_order_id is not None:
            self._by_order_id[intent.gateway_order_id] = order
        lifecycle.submit()
        lifecycle.ambiguous(f"outcome unknown after a restart (stored status {intent.status!r})")
        order.last_send_end = trio.current_time()
        self._awaiting_id.add(order)
        self._spawn(self._drive_place, order, True)
        return order

    async def _resume_op(self, intent: StoredIntent, results: dict[str, IntentResult]) -> None:
        """Finish a cancel / modify / close the store lists as unresolved: verify first, send only if it did not
        take effect (a cancel of an order already cancelled or filled is done; a close of a flat position is done)."""
        self._live_ops.add(intent.intent_id)
        account_id, order_id = intent.account_id, intent.gateway_order_id
        try:
            if intent.kind in ("cancel", "modify") and order_id is None:
                result = IntentResult(intent.kind, ResultKind.REJECTED, account_id,
                                      reason="the stored intent names no order: nothing to verify or send")
            elif intent.kind == "cancel":
                assert order_id is not None
                result = await self._cancel_rounds(account_id, order_id, True, self._tracked_on(account_id, order_id),
                                                   verify_first=True)
            elif intent.kind == "modify":
                assert order_id is not None
                request = m.ModifyOrderRequest(account_id=account_id, order_id=order_id, size=intent.size or None,
                                               limit_price=intent.limit_price, stop_price=intent.stop_price)
                result = await self._modify_rounds(request, False, self._tracked_on(account_id, order_id),
                                                   verify_first=True, intended_at=intent.created_at)
            else:
                size = intent.size if intent.kind == "partial_close" else None
                result = await self._close_rounds(
                    account_id, intent.contract_id, size, intent.position_before, True,
                    {"contract_id": intent.contract_id, "position_before": intent.position_before,
                     "before_from": "store"}, resumed_since=intent.created_at)
        except Exception as exc:
            log.exception("recovery of %s intent %s failed", intent.kind, intent.intent_id)
            result = IntentResult(intent.kind, ResultKind.UNKNOWN, account_id,
                                  reason=f"internal error: {type(exc).__name__}: {exc}")
        results[intent.intent_id] = self._settle_op(intent.intent_id, result)

    async def _record_op(self, intent: OrderIntent, *, wait: bool = True) -> bool:
        """Commit a cancel / modify / close intent before its request goes out; False if the store refused it.

        Not forced to survive a power loss (a place intent is): these requests undo risk, and what a lost row
        leaves behind is safe to redo (a cancel of an order that is no longer working, a closeContract of a flat
        position change nothing; after a restart the reconciler and the risk rules see what the Gateway holds).

        ``wait`` False (risk enforcement: ``record_first=False``) does not wait at all: the row is written together
        with its outcome (:meth:`_settle_op`). Waiting cost the enforcement benchmark ~4 ms at p50 (the store's
        writer thread, behind the lockout's own commit), doubling the time from breach to close; and enforcement
        needs no row to be finished after a crash: the lockout is stored and restored, and a restored lockout
        cancels and closes whatever the account still holds."""
        if not wait:
            self._unwritten_ops[intent.intent_id] = intent
            self._live_ops.add(intent.intent_id)
            return True
        try:
            await self.store.record_intent(intent, power_safe=False)
        except StoreError as exc:
            log.error("%s intent %s on account %s could not be recorded: %s", intent.kind, intent.intent_id,
                      intent.account_id, exc)
            return False
        self._live_ops.add(intent.intent_id)
        return True

    def _settle_op(self, intent_id: str | None, result: IntentResult) -> IntentResult:
        """Write the outcome back (fire-and-forget: if it is lost, the intent stays unresolved and the next recovery
        merely verifies it again) and name the intent in the result."""
        if intent_id is None:
            return result
        self._live_ops.discard(intent_id)
        unwritten = self._unwritten_ops.pop(intent_id, None)
        outcome = settled(intent_id, result, self.clock.now())
        if not self.store.journal(*((unwritten, outcome) if unwritten is not None else (outcome,))):
            log.warning("outcome of %s intent %s not recorded: it will be verified again at the next start",
                        result.intent, intent_id)
        return replace(result, details={**result.details, "op_intent_id": intent_id})

    @staticmethod
    async def _wait(order: TrackedOrder) -> IntentResult:
        await order.done.wait()
        assert order.result is not None
        return order.result

    # ================================================================================================ place
    async def place(self, intent: PlaceIntent, *, key: str | None = None, priority: bool = False) -> IntentResult:
        """Place one order exactly once and return its final outcome (verification included).

        ``key``: a caller idempotency key; the same key on the same account never places twice (within
        ``cacheTTL`` the first result is returned from memory, after it from the store). ``priority``: enforcement
        (the rate limiter's priority lane). Cancelling the caller does not stop the intent: it continues in the
        manager's nursery until its outcome is known and stored.
        """
        if self._nursery is None:
            raise ManagerNotRunning("the order manager is not running: start it with nursery.start(manager.run)")
        self._evict_expired()
        policy = self.policy
        use_key = key if policy.idempotency_enabled else None
        if use_key is not None:
            cached = self._keys.get((intent.account_id, use_key))
            if cached is not None:
                log.info("place with key %r: returning the outcome of intent %s", use_key, cached[1].intent_id)
                return await self._wait(cached[1])
        intent_id = uuid.uuid4().hex
        tag = new_tag(policy.tag_prefix, use_key) if policy.idempotency_enabled else untagged_key(intent_id)
        request = m.PlaceOrderRequest(
            account_id=intent.account_id, contract_id=intent.contract_id, type=int(intent.order_type),
            side=int(intent.side), size=intent.size, limit_price=intent.limit_price, stop_price=intent.stop_price,
            custom_tag=tag if policy.idempotency_enabled else None,
        )
        order = TrackedOrder(intent_id, tag, request, self.clock.now(), priority=priority, key=use_key)
        lifecycle = order.new_lifecycle(transition_recorder(self.store, order, self.clock.now))
        if use_key is not None:
            # claim the key before the first await, so a concurrent call with the same key waits for this one
            self._keys[(intent.account_id, use_key)] = (trio.current_time() + policy.cache_ttl_s, order)
            stored = await self.store.get_intent(account_id=intent.account_id, custom_tag=tag)
            if stored is not None:
                self._finish(order, await self._from_stored(stored))
                return await self._wait(order)
        self._register_tag(order)
        lifecycle.submit()
        try:
            await self.store.record_intent(OrderIntent(
                intent_id=intent_id, account_id=intent.account_id, contract_id=intent.contract_id,
                side=int(intent.side), size=intent.size, order_type=int(intent.order_type), custom_tag=tag,
                created_at=order.created_at, limit_price=intent.limit_price, stop_price=intent.stop_price,
                status=STORE_STATUS[OrderState.SUBMITTING],
            ))
        except StoreError as exc:
            log.error("intent %s not recorded, so not sent: %s", intent_id, exc)
            lifecycle.rejected(-1, f"not sent: the store refused the intent ({type(exc).__name__})")
            self._finish(order, self._result(order, ResultKind.DENIED, reason=f"store refused the intent: {exc}"))
            return await self._wait(order)
        order.row_exists = True
        self._awaiting_id.add(order)
        self._spawn(self._drive_place, order, False)
        return await self._wait(order)

    async def _from_stored(self, stored: StoredIntent) -> IntentResult:
        if stored.status in UNRESOLVED_STATUSES:
            existing = self._by_tag.get((stored.account_id, stored.custom_tag))
            order = existing if existing is not None and existing.driving else self._resume(stored)
            return await self._wait(order)
        kind = {
            "rejected": ResultKind.REJECTED, "absent": ResultKind.ABSENT,
        }.get(stored.status, ResultKind.ACCEPTED)
        return IntentResult(
            "place", kind, stored.account_id, intent_id=stored.intent_id, custom_tag=stored.custom_tag,
            order_id=stored.gateway_order_id, state=stored.status, filled_qty=stored.filled_qty,
            avg_price=stored.avg_price, reason="this key was already used: stored outcome returned, nothing sent",
        )

    async def _drive_place(self, order: TrackedOrder, verify_first: bool) -> None:
        order.driving = True
        try:
            await self._drive_place_inner(order, verify_first)
        finally:
            order.driving = False

    async def _drive_place_inner(self, order: TrackedOrder, verify_first: bool) -> None:
        result: IntentResult | None = None
        try:
            result = await self._place_loop(order, verify_first)
        except Exception as exc:
            log.exception("intent %s: unexpected failure", order.intent_id)
            result = self._result(order, ResultKind.UNKNOWN, reason=f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if result is None:  # cancelled (shutdown): the store keeps the intent unresolved for recover()
                result = self._result(order, ResultKind.UNKNOWN, reason="the order manager stopped before the "
                                      "outcome was known; recover() verifies it at the next start")
            self._finish(order, result)
        if result.kind is ResultKind.UNKNOWN and self.policy.verification_enabled:
            await self._resolve_later(order)

    async def _resolve_later(self, order: TrackedOrder) -> None:
        """The caller already got ``unknown``; keep verifying in the background (slower) until the outcome is
        known, so the store converges on the Gateway's truth without waiting for a restart."""
        for round_no in itertools.count():
            await trio.sleep(_RESOLVE_BACKOFF_S[min(round_no, len(_RESOLVE_BACKOFF_S) - 1)])
            if order.lifecycle.state is not OrderState.AMBIGUOUS:
                return
            try:
                result = await self._place_loop(order, True, quiet=True)
            except Exception:
                log.exception("intent %s: background verification failed", order.intent_id)
                continue
            if result.known:
                log.info("intent %s resolved in the background: %s (%s)", order.intent_id, result.kind.value,
                         result.state)
                order.result = result
                return

    async def _place_loop(self, order: TrackedOrder, verify_first: bool, *, quiet: bool = False) -> IntentResult:
        policy = self.policy
        expect_present = False
        resends = 0
        verify = verify_first
        while True:
            if not verify:
                order.attempts += 1
                outcome = await self._mutate(
                    "/api/Order/place", lambda: self.client.place_order(order.request, enforcement=order.priority)
                )
                order.last_send_end = trio.current_time()
                lifecycle = order.lifecycle
                if outcome.accepted and outcome.order_id is not None:
                    lifecycle.accepted(outcome.order_id)
                    self._adopted(order)
                    await self._flush()
                    return self._result(order, ResultKind.ACCEPTED)
                if tag_in_use(outcome) and order.sends_tag:
                    expect_present = True
                    lifecycle.ambiguous("customTag already in use: an earlier attempt of this intent landed")
                elif outcome.rejected:
                    lifecycle.rejected(outcome.code if outcome.code is not None else -1,
                                       outcome.message or outcome.reason)
                    if outcome.order_id is not None:  # created-then-rejected: keep following its events
                        self._by_order_id[outcome.order_id] = order
                    await self._flush()
                    return self._result(order, ResultKind.REJECTED, reason=outcome.reason)
                elif outcome.denied:
                    lifecycle.rejected(-1, f"denied locally, never sent: {outcome.reason}")
                    await self._flush()
                    return self._result(order, ResultKind.DENIED, reason=outcome.reason)
                else:
                    why = outcome.reason or "accepted without an order id"
                    lifecycle.ambiguous(why)
                await self._flush()
            verify = False
            if not policy.verification_enabled:
                return self._unresolved(order, "verification is disabled: the outcome stays unknown")
            verdict = await self._verify_place(order, expect_present)
            await self._flush()
            if verdict is Verdict.FOUND:
                kind = ResultKind.REJECTED if order.lifecycle.state is OrderState.REJECTED else ResultKind.ACCEPTED
                return self._result(order, kind, reason="found by verification")
            if verdict is Verdict.INCONCLUSIVE:
                reason = "verification could not decide whether the order exists"
                if quiet:
                    return self._result(order, ResultKind.UNKNOWN, reason=reason)
                return self._unresolved(order, reason)
            # proven absent
            if expect_present:
                return self._result(order, ResultKind.REJECTED, reason="the customTag was already used by an "
                                    "attempt that left no order (the Gateway refused that attempt)")
            if not order.sends_tag:
                return self._result(order, ResultKind.ABSENT, reason="proven absent; not re-sent (no customTag: "
                                    "idempotency is disabled, a re-send could duplicate the order)")
            if resends > policy.verification_max_retries:
                return self._result(order, ResultKind.ABSENT, reason=f"proven absent after {resends} re-sends")
            resends += 1
            log.info("intent %s proven absent: re-sending with the same customTag %s", order.intent_id, order.tag)
            order.new_lifecycle(transition_recorder(self.store, order, self.clock.now)).submit()
            self._awaiting_id.add(order)  # may have been forgotten while it was proven absent
            await self._flush()  # the re-send is on record before it goes out

    async def _verify_place(self, order: TrackedOrder, expect_present: bool) -> Verdict:
        policy = self.policy
        rounds = policy.verification_max_retries + 1
        for round_no in range(rounds):
            lifecycle = order.lifecycle
            if lifecycle.state is OrderState.AMBIGUOUS:
                lifecycle.verification_started()
            hit, failure, hint_s = await self._search_place(order)
            lifecycle = order.lifecycle
            if lifecycle.state is not OrderState.VERIFYING:  # pragma: no cover - defensive
                return Verdict.FOUND
            if hit is not None:
                try:
                    self._adopt_found(order, hit)
                except (ValueError, TransitionNotAllowed) as exc:
                    failure = f"found order {hit.id} could not be adopted: {exc}"
                else:
                    return Verdict.FOUND
            last = round_no == rounds - 1
            if failure is None:
                waited = trio.current_time() - order.last_send_end
                if waited >= policy.absence_grace_s and (not expect_present or last):
                    lifecycle.proven_absent()
                    return Verdict.ABSENT
                failure = ("the tag is in use but its order is not visible yet" if expect_present
                           else "not found yet; too early to trust a miss")
            lifecycle.verification_inconclusive(failure)
            if not last:
                pause = self._round_pause(round_no)
                pause = max(pause, hint_s, policy.absence_grace_s - (trio.current_time() - order.last_send_end))
                await trio.sleep(pause)
        return Verdict.INCONCLUSIVE

    async def _search_place(self, order: TrackedOrder) -> tuple[m.OrderModel | None, str | None, float]:
        """(the order, None) | (None, None) for a successful search that missed | (None, why the search failed);
        plus how long to wait before searching again (the breaker's time to its next probe when it refused)."""
        key = (order.account_id, order.tag)
        cached = self._stream_orders.get(key)
        if cached is not None:
            return cached, None, 0.0
        since = order.created_at - timedelta(seconds=self.policy.search_margin_s)
        try:
            with trio.fail_after(self.policy.verification_timeout_s):
                orders = await orders_since(self.client, order.account_id, since,
                                            contract_id=order.request.contract_id)
        except trio.TooSlowError:
            return None, f"search timed out after {self.policy.verification_timeout_s:g} s", 0.0
        except CircuitOpenError as exc:
            return None, f"search refused: {exc}", min(exc.retry_in_s or 0.0, _MAX_BREAKER_WAIT_S)
        except GatewayError as exc:
            return None, f"search failed: {exc}", 0.0
        cached = self._stream_orders.get(key)
        if cached is not None:
            return cached, None, 0.0
        if order.sends_tag:
            return match_tag(orders, order.tag), None, 0.0
        claimed = {oid for oid, other in self._by_order_id.items() if other is not order}
        return match_fingerprint(orders, order.request, claimed), None, 0.0

    def _adopt_found(self, order: TrackedOrder, model: m.OrderModel) -> None:
        self._stream_orders.pop((order.account_id, order.tag), None)
        order.lifecycle.found(model.id, GatewayOrderStatus(int(model.status)), model.fill_volume, model.filled_price)
        self._adopted(order)

    def _adopted(self, order: TrackedOrder) -> None:
        """The order's id is known: index it, replay held stream events, watch its completion."""
        lifecycle = order.lifecycle
        assert lifecycle.order_id is not None
        self._by_order_id[lifecycle.order_id] = order
        held = self._stream_orders.pop((order.account_id, order.tag), None)
        if held is not None and held.id == lifecycle.order_id:
            self._apply_status(order, held)
        self._awaiting_id.discard(order)
        for trade_id in [t for t, (_, trade) in self._early_trades.items() if trade.order_id == lifecycle.order_id]:
            self._apply_trade(order, self._early_trades.pop(trade_id)[1])
        if int(order.request.type) == OrderType.MARKET:
            self._watch_completion(order)

    # ================================================================================================ stream
    def on_user_event(self, target: str, arguments: Sequence[Any]) -> None:
        """Raw user-hub Invocation (``GatewayUserOrder`` / ``GatewayUserTrade``), its payload as dicts or as the user
        hub's codec reads it (a :class:`~engine.protocol.user_events.StreamPayload`); other targets are ignored."""
        from engine.state.payloads import parse_user_event

        if target not in ("GatewayUserOrder", "GatewayUserTrade"):
            return
        for model in parse_user_event(target, arguments):
            if isinstance(model, m.HalfTradeModel):
                self.on_trade_event(model)
            elif isinstance(model, m.OrderModel):
                self.on_order_event(model)

    def on_order_event(self, model: m.OrderModel) -> bool:
        """A GatewayUserOrder (or a reconciled order). Returns whether it concerned one of this manager's orders."""
        order = self._by_order_id.get(model.id)
        if order is None and model.custom_tag is not None:
            order = self._by_tag.get((model.account_id, model.custom_tag))
        if order is None or order.account_id != model.account_id:
            return False
        lifecycle = order.lifecycle
        if lifecycle.order_id is None or lifecycle.state in _PRE_ID_STATES:
            if model.custom_tag == order.tag:
                self._stream_orders[(order.account_id, order.tag)] = model  # replayed once the id is adopted
            return True
        if model.id != lifecycle.order_id:
            return False
        self._apply_status(order, model)
        return True

    def on_trade_event(self, trade: m.HalfTradeModel) -> bool:
        """A GatewayUserTrade (deduplicated by trade id). Trades of orders not known yet are held (bounded).

        Why bounded by time and by need: a trade of one of our orders can arrive before that order's id is known
        (the Gateway publishes while Order/place is still answering), so it is held and replayed on adoption. But
        most trades of unknown orders belong to other front ends: they are held only while an order of ours awaits
        its id (otherwise nothing could ever claim them), and for at most ``early_trade_ttl_s`` (twice the foreground
        verification: an order found later still takes its fill volume from the order it is found as)."""
        order = self._by_order_id.get(trade.order_id)
        if order is None or order.lifecycle.order_id != trade.order_id:
            self._hold_early(trade)
            return False
        self._apply_trade(order, trade)
        return True

    def _hold_early(self, trade: m.HalfTradeModel) -> None:
        early = self._early_trades
        if not self._still_awaiting_id():
            early.clear()
            return
        now = trio.current_time()
        if trade.id not in early:
            early[trade.id] = (now, trade)
        horizon = now - self.early_trade_ttl_s
        while early and (len(early) > _EARLY_TRADES_CAP or next(iter(early.values()))[0] < horizon):
            early.popitem(last=False)

    def _still_awaiting_id(self) -> bool:
        """Whether an order of ours may still be adopted (forgetting the ones that have an id or never will)."""
        awaiting = self._awaiting_id
        if awaiting:
            done = [o for o in awaiting if o.lifecycle.order_id is not None or o.lifecycle.state not in _PRE_ID_STATES]
            awaiting.difference_update(done)
        return bool(awaiting)

    @property
    def early_trades_held(self) -> int:
        """Trades held for orders whose id is not known yet (see :meth:`on_trade_event`)."""
        return len(self._early_trades)

    def _apply_status(self, order: TrackedOrder, model: m.OrderModel) -> None:
        lifecycle = order.lifecycle
        try:
            status = GatewayOrderStatus(int(model.status))
            if status is GatewayOrderStatus.NONE:
                return
            lifecycle.status_update(status, model.fill_volume, model.filled_price)
        except (ValueError, TransitionNotAllowed) as exc:  # OverfillError is a ValueError
            log.warning("order %s: status update %s ignored: %s", model.id, model.status, exc)
        self._after_progress(order)

    def _apply_trade(self, order: TrackedOrder, trade: m.HalfTradeModel) -> None:
        if trade.voided:
            return
        try:
            added = order.lifecycle.fill(trade.size, trade.price, trade.id)
        except (OverfillError, ValueError, TransitionNotAllowed) as exc:
            log.warning("order %s: trade %s ignored: %s", trade.order_id, trade.id, exc)
            return
        if added:
            self.store.journal(Fill(
                trade_id=trade.id, account_id=trade.account_id, order_id=trade.order_id,
                contract_id=trade.contract_id, side=int(trade.side), price=trade.price, size=trade.size,
                fees=trade.fees, at=trade.creation_timestamp, pnl=trade.profit_and_loss,
                commissions=trade.commissions, voided=trade.voided,
            ))
        self._after_progress(order)

    def _after_progress(self, order: TrackedOrder) -> None:
        lifecycle = order.lifecycle
        if lifecycle.is_terminal:
            if order.completion_scope is not None:
                order.completion_scope.cancel()
        elif lifecycle.filled_quantity > 0:
            self._watch_completion(order)

    # ================================================================================================ completion
    def _watch_completion(self, order: TrackedOrder) -> None:
        if not self.policy.tracking_enabled or order.completion_scope is not None or order.lifecycle.is_terminal:
            return
        if self._nursery is None:
            return
        order.completion_scope = trio.CancelScope()
        self._nursery.start_soon(self._completion_deadline, order)

    async def _completion_deadline(self, order: TrackedOrder) -> None:
        scope = order.completion_scope
        assert scope is not None
        with scope:
            await trio.sleep(self.policy.complete_timeout_s)
            lifecycle = order.lifecycle
            if not lifecycle.is_terminal:
                self._handoff(Handoff(
                    "incomplete", "place", order.account_id,
                    f"not complete within {self.policy.complete_timeout_s:g} s", intent_id=order.intent_id,
                    custom_tag=order.tag, order_id=lifecycle.order_id, state=lifecycle.state.value,
                    filled_qty=lifecycle.filled_quantity, remaining=lifecycle.remaining,
                ))

    # ================================================================================================ cancel/modify
    async def cancel(self, account_id: int, order_id: int, *, priority: bool = False,
                     record_first: bool = True) -> IntentResult:
        """Cancel one order (any order of the account; this manager's own ones also drive their machine).

        ``record_first`` False: send without waiting for the intent's row (see :meth:`_record_op`)."""
        tracked = self._tracked_on(account_id, order_id)
        if tracked is not None and tracked.lifecycle.is_terminal:
            return self._op_result("cancel", ResultKind.REJECTED, account_id, order_id, tracked,
                                   message=f"order already {tracked.lifecycle.state.value}: nothing sent")
        contract_id = tracked.request.contract_id if tracked is not None else ""
        intent = op_intent("cancel", account_id, self.clock.now(), order_id=order_id, contract_id=contract_id)
        # a cancel only ever reduces risk: if the store refuses the intent it is still sent (logged), not denied
        intent_id = intent.intent_id if await self._record_op(intent, wait=record_first) else None
        if tracked is not None and tracked.lifecycle.state is OrderState.WORKING:
            tracked.lifecycle.cancel_requested()
        result = await self._cancel_rounds(account_id, order_id, priority, tracked, verify_first=False)
        return self._settle_op(intent_id, result)

    async def _cancel_rounds(self, account_id: int, order_id: int, priority: bool, tracked: TrackedOrder | None, *,
                             verify_first: bool) -> IntentResult:
        """Send the cancel until its outcome is known; ``verify_first``: read the order before sending anything
        (recovery: an order already cancelled, or filled, means the cancel is done)."""
        attempts = 0
        verify = verify_first
        for _ in range(self.policy.verification_max_retries + 1):
            if not verify:
                attempts += 1
                outcome = await self._mutate(
                    "/api/Order/cancel", lambda: self.client.cancel_order(account_id, order_id, enforcement=priority)
                )
                if outcome.accepted or outcome.rejected or outcome.denied:
                    return await self._cancel_answered(account_id, order_id, tracked, outcome, attempts)
            verify = False
            answered, model = await self._read_order_verified(account_id, order_id)
            if not answered:
                break
            if model is None:
                return self._op_result("cancel", ResultKind.REJECTED, account_id, order_id, tracked,
                                       attempts=attempts, message="the Gateway does not know the order")
            self._observe(tracked, model)
            if model.status is OrderStatus.CANCELLED:
                return self._op_result("cancel", ResultKind.ACCEPTED, account_id, order_id, tracked, model,
                                       attempts=attempts, reason="verified cancelled (the send's outcome was unknown)")
            if model.status.is_terminal:
                return self._op_result("cancel", ResultKind.REJECTED, account_id, order_id, tracked, model,
                                       attempts=attempts, message=f"order already {model.status.name.lower()}")
            log.info("cancel of %s not applied (outcome unknown) and the order still works: sending it", order_id)
        handoff = Handoff("unresolved", "cancel", account_id, "cancel outcome could not be verified",
                          order_id=order_id)
        self._handoff(handoff)
        return self._op_result("cancel", ResultKind.UNKNOWN, account_id, order_id, tracked, attempts=attempts,
                               reason=handoff.reason)

    async def _cancel_answered(self, account_id: int, order_id: int, tracked: TrackedOrder | None,
                               outcome: MutationOutcome, attempts: int) -> IntentResult:
        """The Gateway answered the cancel (accepted, rejected, or it was denied locally): read the order once."""
        model = await self._read_order(account_id, order_id)
        self._observe(tracked, model)
        if outcome.accepted:
            return self._op_result("cancel", ResultKind.ACCEPTED, account_id, order_id, tracked, model,
                                   attempts=attempts)
        if tracked is not None and tracked.lifecycle.state is OrderState.CANCELLING:
            tracked.lifecycle.cancel_failed(outcome.reason or "cancel refused")
        kind = ResultKind.REJECTED if outcome.rejected else ResultKind.DENIED
        return self._op_result("cancel", kind, account_id, order_id, tracked, model, outcome=outcome,
                               attempts=attempts)

    async def modify(
        self, account_id: int, order_id: int, *, size: int | None = None, limit_price: float | None = None,
        stop_price: float | None = None, priority: bool = False,
    ) -> IntentResult:
        """Modify a working order to absolute values (idempotent, so a proven-unapplied modify is sent again).

        The intent is committed before the send; unlike a cancel or close, a modify the store refuses is not sent
        (``denied``): it may add risk, and an unrecorded one could not be finished after a crash."""
        if size is None and limit_price is None and stop_price is None:
            raise ValueError("modify needs at least one of size, limit_price, stop_price")
        request = m.ModifyOrderRequest(account_id=account_id, order_id=order_id, size=size, limit_price=limit_price,
                                       stop_price=stop_price)
        tracked = self._tracked_on(account_id, order_id)
        intent = op_intent("modify", account_id, self.clock.now(), order_id=order_id, size=size,
                           limit_price=limit_price, stop_price=stop_price,
                           contract_id=tracked.request.contract_id if tracked is not None else "")
        if not await self._record_op(intent):
            return self._op_result("modify", ResultKind.DENIED, account_id, order_id, tracked,
                                   reason="not sent: the store refused the intent")
        result = await self._modify_rounds(request, priority, tracked, verify_first=False)
        return self._settle_op(intent.intent_id, result)

    async def _modify_rounds(self, request: m.ModifyOrderRequest, priority: bool, tracked: TrackedOrder | None, *,
                             verify_first: bool, intended_at: datetime | None = None) -> IntentResult:
        """Send the modify until its outcome is known; ``verify_first``: read the order before sending anything
        (recovery: an order that already shows the new values, or is final, means the modify is done).

        ``intended_at`` (recovery): when the modify was asked for. An order the Gateway shows as updated after that
        instant without the modify's values was changed since by someone else (another front end, a fill): the old
        modify is not re-sent over it, hours later it would undo the trader's own change; it is reported
        ``rejected`` as superseded instead."""
        account_id, order_id, size = request.account_id, request.order_id, request.size
        attempts = 0
        verify = verify_first
        for _ in range(self.policy.verification_max_retries + 1):
            if not verify:
                attempts += 1
                outcome = await self._mutate(
                    "/api/Order/modify", lambda: self.client.modify_order(request, enforcement=priority)
                )
                if outcome.accepted:
                    self._resize(tracked, size)
                    return self._op_result("modify", ResultKind.ACCEPTED, account_id, order_id, tracked,
                                           attempts=attempts)
                if outcome.rejected or outcome.denied:
                    kind = ResultKind.REJECTED if outcome.rejected else ResultKind.DENIED
                    return self._op_result("modify", kind, account_id, order_id, tracked, outcome=outcome,
                                           attempts=attempts)
            verify = False
            answered, model = await self._read_order_verified(account_id, order_id)
            if not answered:
                break
            if model is None:
                return self._op_result("modify", ResultKind.REJECTED, account_id, order_id, tracked,
                                       attempts=attempts, message="the Gateway does not know the order")
            self._observe(tracked, model)
            if _modify_applied(model, request):
                self._resize(tracked, size)
                return self._op_result("modify", ResultKind.ACCEPTED, account_id, order_id, tracked, model,
                                       attempts=attempts, reason="verified applied (the send's outcome was unknown)")
            if model.status.is_terminal:
                return self._op_result("modify", ResultKind.REJECTED, account_id, order_id, tracked, model,
                                       attempts=attempts, message=f"order already {model.status.name.lower()}")
            if intended_at is not None and model.update_timestamp is not None \
                    and model.update_timestamp > intended_at:
                return self._op_result("modify", ResultKind.REJECTED, account_id, order_id, tracked, model,
                                       attempts=attempts, message=(
                                           f"superseded: the order was changed at {model.update_timestamp.isoformat()}"
                                           f", after this modify was asked for at {intended_at.isoformat()}; not "
                                           "re-sent"))
        handoff = Handoff("unresolved", "modify", account_id, "modify outcome could not be verified",
                          order_id=order_id)
        self._handoff(handoff)
        return self._op_result("modify", ResultKind.UNKNOWN, account_id, order_id, tracked, attempts=attempts,
                               reason=handoff.reason)

    @staticmethod
    def _resize(tracked: TrackedOrder | None, size: int | None) -> None:
        if tracked is not None and size is not None and size >= tracked.lifecycle.filled_quantity:
            tracked.lifecycle.size = size

    def _tracked_on(self, account_id: int, order_id: int) -> TrackedOrder | None:
        """This manager's order with that id, if it belongs to that account (a cancel/modify also drives it)."""
        order = self._by_order_id.get(order_id)
        return order if order is not None and order.account_id == account_id else None

    def _observe(self, tracked: TrackedOrder | None, model: m.OrderModel | None) -> None:
        if tracked is not None and model is not None and model.id == tracked.lifecycle.order_id:
            self._apply_status(tracked, model)

    async def _try_read_order(self, account_id: int, order_id: int) -> tuple[bool, m.OrderModel | None]:
        """One bounded read of an order: (answered, the order or None when the Gateway does not know it)."""
        try:
            with trio.fail_after(self.policy.verification_timeout_s):
                return True, await self.client.order_by_id(account_id, order_id)
        except (trio.TooSlowError, GatewayError) as exc:
            log.info("reading order %s failed: %s", order_id, exc)
            return False, None

    async def _read_order(self, account_id: int, order_id: int) -> m.OrderModel | None:
        """One bounded read of an order; None if it failed or the order is unknown (best effort)."""
        return (await self._try_read_order(account_id, order_id))[1]

    async def _read_order_verified(self, account_id: int, order_id: int) -> tuple[bool, m.OrderModel | None]:
        """Read the order, retrying failed reads: (False, None) if no read got an answer; (True, None) when the
        Gateway answered that it does not know the order (OrderNotFound): no order works under that id, which is
        an outcome, not a reason to verify again (at every start, for an intent recovery finds)."""
        for round_no in range(self.policy.verification_max_retries + 1):
            answered, model = await self._try_read_order(account_id, order_id)
            if answered:
                return answered, model
            await trio.sleep(self._round_pause(round_no))
        return False, None

    # ================================================================================================ positions
    async def close_position(
        self, account_id: int, contract_id: str, *, size: int | None = None, priority: bool = False,
        known_size: int | None = None, record_first: bool = True,
    ) -> IntentResult:
        """Close a position (``size=None``) or reduce it by ``size``; never closes twice (see module docstring).

        ``known_size``: the signed size of the position (negative when short) the caller already knows, e.g. from
        the state mirror. For a whole close it replaces the read of the position before the send, so the close goes
        out at once (enforcement: a full REST round trip less between a breach and its close). That is safe because
        ``closeContract`` closes whatever the server holds when it executes: sending it twice can at worst close a
        position that reopened in between (or be refused because it is flat), never trade the other way. Only the
        ambiguous-outcome verification compares against the size, and it reads the server as always: a stale
        ``known_size`` makes it inconclusive rather than wrong (an unchanged position is the one proof of "not
        executed" and needs the server to show exactly that size). A partial close is not idempotent in effect, so
        it always reads the position first; ``known_size`` is ignored there.
        """
        kind = "close" if size is None else "partial_close"
        if size is not None and size < 1:
            raise ValueError(f"partial close size must be >= 1, got {size}")
        if known_size is not None and known_size == 0:
            raise ValueError("known_size must be the signed size of an open position, got 0 (flat)")
        if size is None and known_size is not None:
            before: int | None = known_size
            source = "caller"
        else:
            before = await self._position(account_id, contract_id)
            source = "server"
        details: dict[str, Any] = {"contract_id": contract_id, "position_before": before, "before_from": source}
        if size is not None:
            details["size"] = size
        intent = op_intent(kind, account_id, self.clock.now(), contract_id=contract_id, size=size,
                           position_before=before)
        # a close only ever reduces risk: if the store refuses the intent it is still sent (logged), not denied
        intent_id = intent.intent_id if await self._record_op(intent, wait=record_first) else None
        result = await self._close_rounds(account_id, contract_id, size, before, priority, details)
        return self._settle_op(intent_id, result)

    async def _close_rounds(
        self, account_id: int, contract_id: str, size: int | None, before: int | None, priority: bool,
        details: dict[str, Any], *, resumed_since: datetime | None = None,
    ) -> IntentResult:
        """Send the close until its outcome is known. ``resumed_since`` (recovery: when the intent was recorded):
        verify first whether a close since then took effect (the position is flat or at its target, or a close
        order appeared) and send only when the position is proven unchanged, so it is never closed twice."""
        intent = "close" if size is None else "partial_close"
        attempts = 0
        if resumed_since is not None and before is None:
            return await self._close_without_before(account_id, contract_id, size, details)
        verify_since = resumed_since
        for _ in range(self.policy.verification_max_retries + 1):
            if verify_since is None:
                attempts += 1
                sent_at = self.clock.now()
                if size is None:
                    call: Callable[[], Awaitable[MutationOutcome]] = lambda: self.client.close_position(  # noqa: E731
                        account_id, contract_id, enforcement=priority)
                    path = "/api/Position/closeContract"
                else:
                    call = lambda: self.client.partial_close_position(  # noqa: E731
                        account_id, contract_id, size, enforcement=priority)
                    path = "/api/Position/partialCloseContract"
                outcome = await self._mutate(path, call)
                send_end = trio.current_time()
                if outcome.accepted:
                    return IntentResult(intent, ResultKind.ACCEPTED, account_id, attempts=attempts, details=details)
                if outcome.rejected:
                    if ((attempts > 1 or resumed_since is not None) and size is None
                            and outcome.code == ClosePositionErrorCode.POSITION_NOT_FOUND):
                        return IntentResult(intent, ResultKind.ACCEPTED, account_id, attempts=attempts,
                                            details=details, reason="flat: an earlier attempt closed the position")
                    return IntentResult(intent, ResultKind.REJECTED, account_id, code=outcome.code,
                                        message=outcome.message, reason=outcome.reason, attempts=attempts,
                                        details=details)
                if outcome.denied:
                    return IntentResult(intent, ResultKind.DENIED, account_id, reason=outcome.reason,
                                        attempts=attempts, details=details)
                if before is None:
                    break  # without the size before, an unchanged position cannot be told from a closed one
            else:  # recovery: whatever was sent went out at or after the intent was recorded
                sent_at, send_end, verify_since = verify_since, trio.current_time(), None
            assert before is not None
            verdict = await self._verify_close(account_id, contract_id, before, size, sent_at, send_end)
            if verdict is Verdict.FOUND:
                return IntentResult(intent, ResultKind.ACCEPTED, account_id, attempts=attempts, details=details,
                                    reason="verified executed (the send's outcome was unknown)")
            if verdict is Verdict.INCONCLUSIVE:
                break
            log.info("%s of %s on %s proven not executed: sending it", intent, contract_id, account_id)
        handoff = Handoff("unresolved", intent, account_id, f"{intent} of {contract_id} could not be verified")
        self._handoff(handoff)
        return IntentResult(intent, ResultKind.UNKNOWN, account_id, reason=handoff.reason, attempts=attempts,
                            details=details)

    async def _close_without_before(self, account_id: int, contract_id: str, size: int | None,
                                    details: dict[str, Any]) -> IntentResult:
        """Recovery of a close whose starting position was never known: flat means done; anything else cannot be
        told from "not executed", so it is handed to the reconciler rather than risk closing twice."""
        intent = "close" if size is None else "partial_close"
        now_size = await self._position(account_id, contract_id)
        if now_size == 0 and size is None:
            return IntentResult(intent, ResultKind.ACCEPTED, account_id, details=details,
                                reason="flat: the close took effect (or the position was closed otherwise)")
        handoff = Handoff("unresolved", intent, account_id,
                          f"{intent} of {contract_id}: the position before it is unknown, so it cannot be verified")
        self._handoff(handoff)
        return IntentResult(intent, ResultKind.UNKNOWN, account_id, reason=handoff.reason, details=details)

    async def _position(self, account_id: int, contract_id: str) -> int | None:
        """Signed size of the position (0 when flat), or None if it could not be read."""
        try:
            with trio.fail_after(self.policy.verification_timeout_s):
                positions = await self.client.search_open_positions(account_id)
        except (trio.TooSlowError, GatewayError) as exc:
            log.info("reading positions of %s failed: %s", account_id, exc)
            return None
        return _signed_size(positions, contract_id)

    async def _verify_close(
        self, account_id: int, contract_id: str, before: int, size: int | None, sent_at: datetime, send_end: float
    ) -> Verdict:
        qty = abs(before) if size is None else size
        closing_side = OrderSide.ASK if before > 0 else OrderSide.BID
        since = sent_at - timedelta(seconds=_CLOSE_WINDOW_SLACK_S)
        policy = self.policy
        for round_no in range(policy.verification_max_retries + 1):
            try:
                with trio.fail_after(policy.verification_timeout_s):
                    orders = await orders_since(self.client, account_id, since, contract_id=contract_id)
                    positions = await self.client.search_open_positions(account_id)
            except (trio.TooSlowError, GatewayError) as exc:
                log.info("close verification read failed: %s", exc)
            else:
                now_size = _signed_size(positions, contract_id)
                close_order = any(
                    o.custom_tag is None and o.type is OrderType.MARKET and o.side is closing_side and o.size == qty
                    and o.parent_order_id is None and o.status is not OrderStatus.REJECTED for o in orders
                )
                target = 0 if size is None else before - (size if before > 0 else -size)
                if close_order or (before != 0 and now_size == target):
                    return Verdict.FOUND
                if now_size == before and trio.current_time() - send_end >= policy.absence_grace_s:
                    return Verdict.ABSENT
            await trio.sleep(max(self._round_pause(round_no),
                                 policy.absence_grace_s - (trio.current_time() - send_end)))
        return Verdict.INCONCLUSIVE

    async def flatten(self, account_id: int, *, priority: bool = True) -> IntentResult:
        """Cancel every working order (Suspended bracket children included), close every position, verify flat."""
        actions: list[dict[str, Any]] = []
        remaining: dict[str, Any] = {}
        for round_no in range(self.policy.verification_max_retries + 2):
            try:
                working = await self._working_orders(account_id)
                positions = await self.client.search_open_positions(account_id)
            except GatewayError as exc:
                remaining = {"error": str(exc)}
            else:
                remaining = {"orders": [o.id for o in working], "positions": [p.contract_id for p in positions]}
                if not working and not positions:
                    return IntentResult("flatten", ResultKind.ACCEPTED, account_id, attempts=round_no + 1,
                                        details={"actions": actions}, reason="verified flat")
                # parents first: cancelling an entry also cancels its suspended children
                for model in sorted(working, key=lambda o: (o.parent_order_id is not None, o.id)):
                    if model.status is OrderStatus.PENDING_CANCELLATION:
                        continue
                    result = await self.cancel(account_id, model.id, priority=priority)
                    actions.append({"cancel": model.id, "kind": result.kind.value})
                for position in positions:  # just read from the server: no second read before each close
                    result = await self.close_position(account_id, position.contract_id, priority=priority,
                                                       known_size=_signed_size([position], position.contract_id)
                                                       or None)
                    actions.append({"close": position.contract_id, "kind": result.kind.value})
            await trio.sleep(self._round_pause(round_no))
        return IntentResult("flatten", ResultKind.UNKNOWN, account_id, reason="could not verify the account flat",
                            details={"actions": actions, "remaining": remaining})

    async def _working_orders(self, account_id: int) -> list[m.OrderModel]:
        with trio.fail_after(self.policy.verification_timeout_s * 2):
            try:
                request = m.OrderQueryRequest(
                    filter=m.OrderQueryFilter(account_id=account_id, statuses=list(_WORKING_STATUSES)),
                    page_size=100)
                response = await self.client.query_orders_v2(request)
                return [o for o in response.orders if o.status in _WORKING_STATUSES]
            except GatewayError as exc:
                if exc.status not in (404, 405):
                    raise
                return await self.client.search_open_orders(account_id)

    # ================================================================================================ helpers
    async def _mutate(self, path: str, call: Callable[[], Awaitable[MutationOutcome]]) -> MutationOutcome:
        """The in-flight request is shielded from outside cancellation and bounded by its own deadline."""
        outcome: MutationOutcome | None = None
        deadline_s = self.policy.mutation_deadline_s
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + deadline_s
            outcome = await call()
        if outcome is None:
            return MutationOutcome(OutcomeKind.AMBIGUOUS, path,
                                   reason=f"no answer within the mutation deadline ({deadline_s:g} s)")
        return outcome

    def _round_pause(self, round_no: int) -> float:
        """Pause between verification reads: 0.5 s doubling per round, never longer than one read's timeout."""
        return min(self.policy.verification_timeout_s, 0.5 * 2.0**round_no)

    async def _flush(self) -> None:
        await self.store.flush()

    def _register_tag(self, order: TrackedOrder) -> None:
        self._by_tag[(order.account_id, order.tag)] = order

    def _unresolved(self, order: TrackedOrder, reason: str) -> IntentResult:
        lifecycle = order.lifecycle
        self._handoff(Handoff("unresolved", "place", order.account_id, reason, intent_id=order.intent_id,
                              custom_tag=order.tag, order_id=lifecycle.order_id, state=lifecycle.state.value))
        return self._result(order, ResultKind.UNKNOWN, reason=reason)

    def _handoff(self, handoff: Handoff) -> None:
        log.warning("handed to the reconciler: %s %s on account %s: %s", handoff.kind, handoff.intent,
                    handoff.account_id, handoff.reason)
        self.handoffs.append(handoff)
        if self.on_handoff is not None:
            self.on_handoff(handoff)

    def _result(self, order: TrackedOrder, kind: ResultKind, *, reason: str | None = None) -> IntentResult:
        lifecycle = order.lifecycle
        return IntentResult(
            "place", kind, order.account_id, intent_id=order.intent_id,
            custom_tag=order.tag if order.sends_tag else None, order_id=lifecycle.order_id,
            state=lifecycle.state.value, filled_qty=lifecycle.filled_quantity, avg_price=lifecycle.average_price,
            code=lifecycle.reject_code, message=lifecycle.reject_message, reason=reason, attempts=order.attempts,
        )

    @staticmethod
    def _op_result(
        intent: str, kind: ResultKind, account_id: int, order_id: int, tracked: TrackedOrder | None,
        model: m.OrderModel | None = None, *, outcome: MutationOutcome | None = None, attempts: int = 0,
        message: str | None = None, reason: str | None = None,
    ) -> IntentResult:
        state: str | None = None
        if tracked is not None:
            state = tracked.lifecycle.state.value
        elif model is not None:
            state = model.status.name.lower()
        return IntentResult(
            intent, kind, account_id, intent_id=tracked.intent_id if tracked else None, order_id=order_id,
            state=state, code=outcome.code if outcome else None,
            message=message or (outcome.message if outcome else None),
            reason=reason or (outcome.reason if outcome else None), attempts=attempts,
        )

    def _finish(self, order: TrackedOrder, result: IntentResult) -> None:
        order.result = result
        order.done.set()

    def _evict_expired(self) -> None:
        """Forget finished, terminal orders older than ``cacheTTL`` (late stream events for them go to the mirror)."""
        now = trio.current_time()
        ttl = self.policy.cache_ttl_s
        for key, (expires, _) in list(self._keys.items()):
            if expires <= now:
                del self._keys[key]
        for tag_key, order in list(self._by_tag.items()):
            if not order.done.is_set() or not order.lifecycle.is_terminal:
                continue
            if order.evicted_at is None:
                order.evicted_at = now + ttl
            elif order.evicted_at <= now:
                del self._by_tag[tag_key]
                if order.lifecycle.order_id is not None:
                    self._by_order_id.pop(order.lifecycle.order_id, None)

    # ================================================================================================ views
    def tracked(self, account_id: int, custom_tag: str) -> TrackedOrder | None:
        return self._by_tag.get((account_id, custom_tag))

    def tracked_by_order_id(self, order_id: int) -> TrackedOrder | None:
        return self._by_order_id.get(order_id)


def _signed_size(positions: list[m.PositionModel], contract_id: str) -> int:
    for position in positions:
        if position.contract_id == contract_id:
            return -position.size if position.type is PositionType.SHORT else position.size
    return 0


def _modify_applied(model: m.OrderModel, request: m.ModifyOrderRequest) -> bool:
    return (
        (request.size is None or model.size == request.size)
        and (request.limit_price is None or model.limit_price == request.limit_price)
        and (request.stop_price is None or model.stop_price == request.stop_price)
    )


__all__ = ["Handoff", "ManagerNotRunning", "OrderManager", "Verdict"]
