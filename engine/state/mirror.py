"""The account state mirror: accounts, working orders, open positions and trades per account, fed by hub events.

Why it is built this way
------------------------
* **Synchronous and single-owner.** Every mutation is a plain method call that finishes before it returns (no
  ``await`` inside), so a reconciliation can apply a whole comparison atomically and a cancelled task can never
  leave half an update behind. The event dispatcher and the reconciler run in the same Trio thread.
* **Never fatal.** A payload the mirror cannot read is logged and counted (:attr:`StateMirror.counters`), a listener
  that raises is logged and counted; the event path keeps going.
* **The stream's own rules, enforced here.** Trades are deduplicated by id; a position of size 0 is closed; an order
  is keyed by id and leaves the working set when its status is terminal, but is remembered (bounded memory) so a
  late or duplicated event can never resurrect it; an order event older than what the mirror holds (earlier
  ``updateTimestamp`` or smaller ``fillVolume``) is ignored as stale.
* **Bounded, compact memories** (the engine runs for weeks; see :data:`DEFAULT_TERMINAL_MEMORY` and the others):
  a finished order is remembered as its id and final status only (enough to refuse every late event, and what the
  reconciler asks: :meth:`StateMirror.is_terminal`, :meth:`StateMirror.knows_order`), with the full model kept
  for the most recent few only (:meth:`StateMirror.order`); a trade is remembered as its id for deduplication
  (:meth:`StateMirror.has_trade`), and kept in full only among the account's most recent ones
  (:meth:`StateMirror.trades`, what the risk layer sums for the trading day). A full record (with its strings and
  timestamps) costs ~0.4-0.5 KB, an id ~90 bytes: 100,000 finished orders and 100,000 trades cost ~18 MB instead of
  ~90 MB.
* **Watched contracts by reference count.** Each account counts its working orders per contract plus its open
  position, so an order event changes a count instead of rebuilding the account's contract set.
* **Holding for reconciliation.** While :meth:`StateMirror.holding` is active, user-hub events are buffered in
  arrival order instead of applied; when the hold ends they are applied in that order. The reconciler applies its
  snapshot inside the hold, so a stream event that arrived during the reconciliation always lands *after* the
  snapshot: a snapshot older than a stream event never undoes it. User-hub events are never dropped or reordered;
  quotes are not held (they only ever keep the latest value per contract).
* **Gateway shape out.** :meth:`StateMirror.snapshot` is ``{"accounts", "positions", "orders"}`` with the Gateway's
  own field names and enum values: the shape ``python -m engine run --state-out`` writes and ``Store.save_state``
  takes.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pydantic

from engine.protocol.enums import OrderStatus
from engine.protocol.models import (
    GatewayQuote,
    HalfTradeModel,
    OrderModel,
    PositionModel,
    TradingAccountModel,
)
from engine.protocol.records import WireRecord
from engine.protocol.user_events import (
    ACCOUNT_EVENT,
    ORDER_EVENT,
    POSITION_EVENT,
    TRADE_EVENT,
    USER_RECORDS,
    StreamPayload,
)
from engine.state.changes import (
    AccountChanged,
    Change,
    FillInferred,
    OrderChanged,
    PositionChanged,
    QuoteChanged,
    Source,
    TradeAdded,
    WatchedContractsChanged,
)
from engine.state.payloads import (
    MARKET_EVENTS,
    QUOTE_EVENT,
    USER_VALIDATORS,
    Malformed,
    parse_quote,
    single_object,
    summarise,
    unwrap,
)
from engine.state.trade_times import TradeTimes

log = logging.getLogger(__name__)

Listener = Callable[[Change], None]
_UserReader = tuple[type[WireRecord], Callable[[dict[str, Any]], Any], Callable[[Any, Source], object]]
"""A user event's (record class, validate a payload object into that record, apply the record to the mirror)."""

DEFAULT_TERMINAL_MEMORY = 100_000
"""How many terminal orders are remembered by id and final status (oldest forgotten first): far more than a day of
trading, ~90 bytes each."""
DEFAULT_RECENT_TERMINAL = 1_000
"""How many of the most recent terminal orders are also kept as full models (:meth:`StateMirror.order`)."""
DEFAULT_TRADE_MEMORY = 10_000
"""Trades kept in full per account (oldest forgotten first; ~0.4 KB each): what :meth:`StateMirror.trades` returns
and the risk layer sums for the trading day's realized P&L and trade count. Ten thousand fills on one account in one
day is far beyond what a prop account trades; if a fill still inside the last 24 hours has to be forgotten, the
mirror logs a warning once per account (the day's figures would then be incomplete: raise the bound)."""
DEFAULT_TRADE_ID_MEMORY = 100_000
"""Trade ids remembered per account for deduplication (oldest forgotten first; ~90 bytes each): covers every trade
a reconciliation's Trade/search can return again."""
_DAY = timedelta(hours=24)


@dataclass
class MirrorCounters:
    """What the mirror did with its input; every field only grows."""

    applied: Counter[str] = field(default_factory=Counter)
    """User-hub items applied, per event target."""
    malformed: int = 0
    """Payload items that could not be read (logged)."""
    unknown_events: int = 0
    """Invocations with a target the mirror does not know (e.g. GatewayLogout): ignored."""
    duplicate_trades: int = 0
    stale_orders: int = 0
    """Order events older than the order the mirror holds (earlier updateTimestamp or smaller fillVolume)."""
    late_terminal: int = 0
    """Events for orders already terminal: ignored, the order stays terminal."""
    ignored_accounts: int = 0
    """Items for accounts outside the watched set."""
    buffered: int = 0
    """User-hub events held during a reconciliation (each applied afterwards, in order)."""
    quotes: int = 0
    market_ignored: int = 0
    """Market-hub events the mirror does not keep (tape, depth)."""
    listener_errors: int = 0
    reconcile_changes: int = 0
    """Changes applied by the reconciler's synthetic events."""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if k != "applied"}
        out["applied"] = dict(self.applied)
        return out


class StateMirror:
    def __init__(
        self,
        *,
        watch_accounts: Collection[int] | None = None,
        terminal_memory: int = DEFAULT_TERMINAL_MEMORY,
        trade_memory: int = DEFAULT_TRADE_MEMORY,
        trade_id_memory: int = DEFAULT_TRADE_ID_MEMORY,
        recent_terminal: int = DEFAULT_RECENT_TERMINAL,
    ) -> None:
        if terminal_memory < 1 or trade_memory < 1:
            raise ValueError("terminal_memory and trade_memory must be at least 1")
        if recent_terminal < 0:
            raise ValueError("recent_terminal must be at least 0")
        self._watch = frozenset(watch_accounts) if watch_accounts is not None else None
        self._terminal_memory = terminal_memory
        self._recent_terminal = min(recent_terminal, terminal_memory)
        self._trade_memory = trade_memory
        self._trade_id_memory = max(trade_id_memory, trade_memory)
        self._accounts: dict[int, TradingAccountModel] = {}
        self._orders: dict[int, dict[int, OrderModel]] = {}
        """account id -> order id -> working order."""
        self._order_account: dict[int, int] = {}
        self._terminal: dict[int, OrderStatus] = {}
        """order id -> final status of every remembered terminal order."""
        self._terminal_order: deque[int] = deque()
        """The ids of :attr:`_terminal` oldest first (eviction order; a plain dict cannot pop its oldest in O(1))."""
        self._terminal_full: OrderedDict[int, OrderModel] = OrderedDict()
        """The most recent terminal orders as full models (a subset of :attr:`_terminal`)."""
        self._positions: dict[int, dict[str, PositionModel]] = {}
        """account id -> contract id -> open position (one row per contract, as the Gateway keeps them)."""
        self._trades: dict[int, OrderedDict[int, HalfTradeModel]] = {}
        """account id -> trade id -> trade, the most recent ``trade_memory`` trades of the account in full."""
        self._trade_ids: dict[int, tuple[set[int], deque[int]]] = {}
        """account id -> (known trade ids, the same oldest first): deduplication beyond the full trades."""
        self._trade_eviction_warned: set[int] = set()
        self._newest_trade_at: dict[int, datetime] = {}
        self._trade_times: dict[int, TradeTimes] = {}
        """account id -> its trades held in full by creation time (one entry per trade of :attr:`_trades`): what
        lets :meth:`trades_since` hand out one trading day without a pass over the ``trade_memory`` held."""
        self._trade_versions: dict[int, int] = {}
        """account id -> :attr:`_trade_stamp` at the last change of its trades held in full (:meth:`trade_version`)."""
        self._trade_stamp = 0
        """Counts every change of any account's trades held in full: arrival numbers and versions, never reused."""
        self._quotes: dict[str, dict[str, Any]] = {}
        self._quote_models: dict[str, GatewayQuote] = {}
        self._contract_refs: dict[int, Counter[str]] = {}
        """account id -> contract id -> working orders on it + 1 for an open position (never 0: removed instead)."""
        self._watched: Counter[str] = Counter()
        """contract id -> number of accounts holding or working it."""
        self._watch_added: set[str] = set()
        self._watch_removed: set[str] = set()
        self._listeners: list[Listener] = []
        self._hold = 0
        self._buffer: deque[tuple[str, Sequence[Any]]] = deque()
        self.counters = MirrorCounters()
        appliers: dict[str, Callable[[Any, Source], object]] = {
            ACCOUNT_EVENT: self.apply_account, ORDER_EVENT: self.apply_order, POSITION_EVENT: self.apply_position,
            TRADE_EVENT: self.apply_trade}
        self._user_readers: dict[str, _UserReader] = {
            target: (USER_RECORDS[target], USER_VALIDATORS[target], apply) for target, apply in appliers.items()}
        """User event target -> how its payload objects are read and applied (a table instead of a type switch)."""

    # ------------------------------------------------------------------------------------------------ listeners
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(change)`` for every change from now on; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                self.counters.listener_errors += 1
                log.exception("state mirror listener %r failed on %s", listener, type(change).__name__)

    # ------------------------------------------------------------------------------------------------ stream input
    def on_user_event(self, target: str, arguments: Sequence[Any]) -> None:
        """A user-hub Invocation (``GatewayUserOrder`` etc.) with its ``arguments`` as received. Never raises."""
        if self._hold:
            self.counters.buffered += 1
            self._buffer.append((target, arguments))
            return
        reader = self._user_readers.get(target)
        if reader is None:
            self.counters.unknown_events += 1
            log.debug("state mirror: ignoring unknown user event %r", target)
            return
        if type(arguments) is tuple and len(arguments) == 1 and type(arguments[0]) is StreamPayload:
            # the hot path: the codec read the usual shape straight into the record (engine.protocol.user_events)
            record = arguments[0].data
            if type(record) is not reader[0]:  # only a hand-made event can get here
                self._malformed(target, f"payload is a {type(record).__name__}, not a {reader[0].__name__}")
                return
            self.counters.applied[target] += 1
            reader[2](record, "stream")
            return
        data = single_object(arguments)
        if data is not None:  # the hot path: one object, bare or in one wrapper
            self._apply_object(target, reader, data)
            return
        for item in unwrap(arguments):
            if isinstance(item, Malformed):
                self._malformed(target, item.reason)
                continue
            self._apply_object(target, reader, item.data)

    def on_market_event(self, target: str, arguments: Sequence[Any]) -> None:
        """A market-hub Invocation; only ``GatewayQuote`` is kept (latest merged quote per contract). Never raises."""
        if target != QUOTE_EVENT:
            if target in MARKET_EVENTS:
                self.counters.market_ignored += 1
            else:
                self.counters.unknown_events += 1
            return
        parsed = parse_quote(arguments)
        if isinstance(parsed, Malformed):
            self._malformed(target, parsed.reason)
            return
        contract_id, data = parsed
        self.apply_quote(contract_id, data)

    def _apply_object(self, target: str, reader: _UserReader, data: dict[str, Any]) -> None:
        _, validate, apply = reader
        try:
            record = validate(data)
        except pydantic.ValidationError as exc:
            self._malformed(target, summarise(exc))
            return
        self.counters.applied[target] += 1
        apply(record, "stream")

    def _malformed(self, target: str, reason: str) -> None:
        self.counters.malformed += 1
        log.warning("state mirror: malformed %s payload ignored: %s", target, reason)

    # ------------------------------------------------------------------------------------------------ holding
    @contextmanager
    def holding(self) -> Iterator[None]:
        """Buffer user-hub events until the outermost hold ends, then apply them in arrival order.

        The buffer is applied even when the body raises or is cancelled, so no event is ever lost."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if self._hold == 0:
                self._drain()

    @property
    def held(self) -> bool:
        return self._hold > 0

    def _drain(self) -> None:
        # Applying may not re-enter holding (it is synchronous), but stay safe if a listener starts a hold.
        while self._buffer and not self._hold:  # on_user_event applies (not buffers) while nothing holds
            target, arguments = self._buffer.popleft()
            self.on_user_event(target, arguments)

    # ------------------------------------------------------------------------------------------------ typed apply
    def _watched_account(self, account_id: int) -> bool:
        if self._watch is None or account_id in self._watch:
            return True
        self.counters.ignored_accounts += 1
        return False

    def _count(self, source: Source) -> None:
        if source == "reconcile":
            self.counters.reconcile_changes += 1

    def apply_account(self, account: TradingAccountModel, source: Source) -> None:
        if not self._watched_account(account.id):
            return
        before = self._accounts.get(account.id)
        if before is not None and before.balance == account.balance and before == account:
            return
        self._accounts[account.id] = account
        self._count(source)
        if self._listeners:
            self._notify(AccountChanged(account.id, before, account, source))

    def remove_account(self, account_id: int, source: Source) -> None:
        """Forget an account and everything under it (the Gateway no longer lists it)."""
        before = self._accounts.pop(account_id, None)
        for order_id in list(self._orders.get(account_id, {})):
            self._order_account.pop(order_id, None)
        self._orders.pop(account_id, None)
        self._positions.pop(account_id, None)
        self._trades.pop(account_id, None)
        self._trade_ids.pop(account_id, None)
        self._newest_trade_at.pop(account_id, None)
        self._trade_times.pop(account_id, None)
        self._trade_versions.pop(account_id, None)  # back to 0: holds no trade, a state no cached reading has
        for contract_id in self._contract_refs.pop(account_id, {}):
            self._unwatch(contract_id)
        if before is not None:
            self._count(source)
            self._notify(AccountChanged(account_id, before, None, source))
        self._flush_watched()

    def apply_order(self, order: OrderModel, source: Source) -> bool:
        """Create or update a working order, or retire it (terminal status). Stale and late events are ignored.

        Returns True when the mirror now holds ``order`` as the order's latest state (applied now or already equal),
        False when it was ignored (unwatched account, stale, or the order is already terminal)."""
        if not self._watched_account(order.account_id):
            return False
        order_id = order.id
        final = self._terminal.get(order_id)
        if final is not None:
            remembered = self._terminal_full.get(order_id)
            if remembered is None or remembered != order:
                self.counters.late_terminal += 1
                return False
            return True
        account_id = order.account_id
        held_account = self._order_account.get(order_id)
        before = self._orders[held_account][order_id] if held_account is not None else None
        if before is not None:
            if self._stale(before, order):
                self.counters.stale_orders += 1
                return False
            if before.update_timestamp == order.update_timestamp and before.status == order.status \
                    and before == order:  # cheap fields first, then the whole record
                return True
            if before.account_id != account_id:
                self._drop_working(order_id)
        if order.status.is_terminal:
            self._drop_working(order_id)
            self.remember_terminal(order)
        else:
            orders = self._orders.get(account_id)
            if orders is None:
                orders = self._orders[account_id] = {}
            orders[order_id] = order
            if before is None or before.account_id != account_id:
                self._order_account[order_id] = account_id
                self._ref(account_id, order.contract_id)
            elif before.contract_id != order.contract_id:
                self._unref(account_id, before.contract_id)
                self._ref(account_id, order.contract_id)
        self._count(source)
        if self._listeners:
            self._notify(OrderChanged(order_id, account_id, before, order, source))
        self._flush_watched()
        return True

    def remember_terminal(self, order: OrderModel) -> None:
        """Remember a terminal order by id (no change notification): late events for it are then ignored."""
        order_id = order.id
        known = order_id in self._terminal
        self._terminal[order_id] = order.status
        if known:  # remembered already: keep its place, refresh the full copy if it is still held
            if order_id in self._terminal_full:
                self._terminal_full[order_id] = order
            return
        self._terminal_order.append(order_id)
        if len(self._terminal_order) > self._terminal_memory:
            del self._terminal[self._terminal_order.popleft()]
        if self._recent_terminal:
            self._terminal_full[order_id] = order
            if len(self._terminal_full) > self._recent_terminal:
                self._terminal_full.popitem(last=False)

    def forget_order(self, order_id: int, source: Source) -> None:
        """Drop a working order the Gateway no longer knows at all (reconciliation's ``order_vanished``)."""
        before = self._working(order_id)
        if before is None:
            return
        self._drop_working(order_id)
        self._count(source)
        self._notify(OrderChanged(order_id, before.account_id, before, None, source))
        self._flush_watched()

    def note_fill(self, fill: FillInferred) -> None:
        """Publish a fill the reconciler inferred from a ``fillVolume`` delta (the order itself is applied apart)."""
        self._notify(fill)

    def _working(self, order_id: int) -> OrderModel | None:
        account_id = self._order_account.get(order_id)
        if account_id is None:
            return None
        return self._orders.get(account_id, {}).get(order_id)

    def _drop_working(self, order_id: int) -> None:
        account_id = self._order_account.pop(order_id, None)
        if account_id is not None:
            orders = self._orders.get(account_id)
            if orders is not None:
                dropped = orders.pop(order_id, None)
                if not orders:
                    del self._orders[account_id]
                if dropped is not None:
                    self._unref(account_id, dropped.contract_id)
            self._flush_watched()

    @staticmethod
    def _stale(held: OrderModel, incoming: OrderModel) -> bool:
        if incoming.fill_volume < held.fill_volume:
            return True
        if incoming.update_timestamp is not None and held.update_timestamp is not None:
            return incoming.update_timestamp < held.update_timestamp
        return False

    def apply_position(self, position: PositionModel, source: Source) -> None:
        """Open or update a position; a size of 0 closes it (the Gateway's close event: ``type 0, size 0``)."""
        if not self._watched_account(position.account_id):
            return
        if position.size <= 0:
            self.close_position(position.account_id, position.contract_id, source)
            return
        held = self._positions.setdefault(position.account_id, {})
        before = held.get(position.contract_id)
        if before is not None and before.size == position.size and before.average_price == position.average_price \
                and before == position:
            return
        held[position.contract_id] = position
        if before is None:
            self._ref(position.account_id, position.contract_id)
        self._count(source)
        if self._listeners:
            self._notify(PositionChanged(position.account_id, position.contract_id, before, position, source))
        self._flush_watched()

    def close_position(self, account_id: int, contract_id: str, source: Source) -> None:
        held = self._positions.get(account_id)
        before = held.pop(contract_id, None) if held is not None else None
        if held is not None and not held:
            del self._positions[account_id]
        if before is None:
            return
        self._unref(account_id, contract_id)
        self._count(source)
        self._notify(PositionChanged(account_id, contract_id, before, None, source))
        self._flush_watched()

    def apply_trade(self, trade: HalfTradeModel, source: Source) -> bool:
        """Add a trade unless its id is known (a known id with new content, e.g. ``voided``, replaces it quietly when
        it is still held in full).

        Returns True when the trade was new."""
        account_id = trade.account_id
        if not self._watched_account(account_id):
            return False
        ids = self._trade_ids.get(account_id)
        if ids is None:
            ids = self._trade_ids[account_id] = (set(), deque())
        known_ids, id_order = ids
        trades = self._trades.get(account_id)
        if trades is None:
            trades = self._trades[account_id] = OrderedDict()
        if trade.id in known_ids:
            self.counters.duplicate_trades += 1
            known = trades.get(trade.id)
            if known is not None and known != trade:
                trades[trade.id] = trade
                self._trade_replaced(account_id, known, trade)
            return False
        known_ids.add(trade.id)
        id_order.append(trade.id)
        if len(id_order) > self._trade_id_memory:
            known_ids.discard(id_order.popleft())
        trades[trade.id] = trade
        self._trade_added(account_id, trade)
        newest = self._newest_trade_at.get(account_id)
        if newest is None or trade.creation_timestamp > newest:
            newest = self._newest_trade_at[account_id] = trade.creation_timestamp
        if len(trades) > self._trade_memory:
            _, forgotten = trades.popitem(last=False)
            self._trade_forgotten(account_id, forgotten)
            if newest - forgotten.creation_timestamp < _DAY and account_id not in self._trade_eviction_warned:
                self._trade_eviction_warned.add(account_id)
                log.warning("state mirror: account %d made more than %d trades within 24 hours; the oldest of them are "
                            "no longer held in full, so the day's realized P&L and trade count may be incomplete "
                            "(raise trade_memory)", account_id, self._trade_memory)
        self._count(source)
        if self._listeners:
            self._notify(TradeAdded(trade, source))
        return True

    # Why an index beside the trades: the risk layer reads the trading day's trades on every evaluation (several a
    # second, one per quote), out of up to ``trade_memory`` held; copying and filtering them all cost milliseconds.
    # Each change below bumps the account's version, so a reader can tell in O(1) that nothing changed, including
    # the quiet ones (a known trade replaced, e.g. voided, and evictions), which send no change notification.
    def _trade_added(self, account_id: int, trade: HalfTradeModel) -> None:
        self._trade_stamp += 1
        times = self._trade_times.get(account_id)
        if times is None:
            times = self._trade_times[account_id] = TradeTimes()
        times.add(trade.creation_timestamp, trade.id, self._trade_stamp)
        self._trade_versions[account_id] = self._trade_stamp

    def _trade_replaced(self, account_id: int, before: HalfTradeModel, after: HalfTradeModel) -> None:
        self._trade_stamp += 1
        if after.creation_timestamp != before.creation_timestamp:
            self._trade_times[account_id].moved(before.creation_timestamp, after.creation_timestamp, after.id)
        self._trade_versions[account_id] = self._trade_stamp

    def _trade_forgotten(self, account_id: int, trade: HalfTradeModel) -> None:
        self._trade_stamp += 1
        self._trade_times[account_id].remove(trade.creation_timestamp, trade.id)
        self._trade_versions[account_id] = self._trade_stamp

    def apply_quote(self, contract_id: str, data: dict[str, Any]) -> None:
        """Merge a (possibly partial) quote into the last one for ``contract_id``; nulls never erase a value."""
        merged = {**self._quotes.get(contract_id, {}), **{k: v for k, v in data.items() if v is not None}}
        try:
            model = GatewayQuote.model_validate(merged)
        except ValueError as exc:
            self._malformed(QUOTE_EVENT, str(exc).splitlines()[0])
            return
        self._quotes[contract_id] = merged
        self._quote_models[contract_id] = model
        self.counters.quotes += 1
        self._notify(QuoteChanged(contract_id, model))

    # ------------------------------------------------------------------------------------------------ contracts
    def _ref(self, account_id: int, contract_id: str) -> None:
        refs = self._contract_refs.get(account_id)
        if refs is None:
            refs = self._contract_refs[account_id] = Counter()
        count = refs[contract_id]
        refs[contract_id] = count + 1
        if count == 0:
            if self._watched[contract_id] == 0:
                if contract_id in self._watch_removed:
                    self._watch_removed.discard(contract_id)
                else:
                    self._watch_added.add(contract_id)
            self._watched[contract_id] += 1

    def _unref(self, account_id: int, contract_id: str) -> None:
        refs = self._contract_refs.get(account_id)
        if refs is None or contract_id not in refs:
            return
        count = refs[contract_id] - 1
        if count > 0:
            refs[contract_id] = count
            return
        del refs[contract_id]
        if not refs:
            del self._contract_refs[account_id]
        self._unwatch(contract_id)

    def _unwatch(self, contract_id: str) -> None:
        self._watched[contract_id] -= 1
        if self._watched[contract_id] <= 0:
            del self._watched[contract_id]
            if contract_id in self._watch_added:
                self._watch_added.discard(contract_id)
            else:
                self._watch_removed.add(contract_id)

    def _flush_watched(self) -> None:
        """Announce the change of the watched union since the last announcement (nothing when it did not change)."""
        if not self._watch_added and not self._watch_removed:
            return
        added, removed = frozenset(self._watch_added), frozenset(self._watch_removed)
        self._watch_added.clear()
        self._watch_removed.clear()
        self._notify(WatchedContractsChanged(added, removed, self.watched_contracts()))

    def contracts_of(self, account_id: int) -> frozenset[str]:
        """Contracts the account holds a position in or has a working order on."""
        return frozenset(self._contract_refs.get(account_id, ()))

    def watched_contracts(self) -> frozenset[str]:
        """The union of :meth:`contracts_of` over all accounts: what the market hub should subscribe to."""
        return frozenset(self._watched)

    # ------------------------------------------------------------------------------------------------ reads
    @property
    def account_ids(self) -> frozenset[int]:
        return frozenset(self._accounts)

    def account(self, account_id: int) -> TradingAccountModel | None:
        return self._accounts.get(account_id)

    def accounts(self) -> list[TradingAccountModel]:
        return [self._accounts[k] for k in sorted(self._accounts)]

    def order(self, order_id: int) -> OrderModel | None:
        """A working order, or one of the most recent terminal ones (older terminal orders are remembered by id and
        status only: :meth:`is_terminal`, :meth:`terminal_status`)."""
        return self._working(order_id) or self._terminal_full.get(order_id)

    def is_terminal(self, order_id: int) -> bool:
        """True while the order is remembered as finished (late events for it are ignored)."""
        return order_id in self._terminal

    def terminal_status(self, order_id: int) -> OrderStatus | None:
        """The final status of a remembered terminal order."""
        return self._terminal.get(order_id)

    def knows_order(self, order_id: int) -> bool:
        """The order is working or remembered as terminal."""
        return order_id in self._order_account or order_id in self._terminal

    def working_orders(self, account_id: int | None = None) -> list[OrderModel]:
        accounts = [account_id] if account_id is not None else sorted(self._orders)
        return [o for a in accounts for _, o in sorted(self._orders.get(a, {}).items())]

    def position(self, account_id: int, contract_id: str) -> PositionModel | None:
        return self._positions.get(account_id, {}).get(contract_id)

    def positions(self, account_id: int | None = None) -> list[PositionModel]:
        accounts = [account_id] if account_id is not None else sorted(self._positions)
        return [p for a in accounts for _, p in sorted(self._positions.get(a, {}).items())]

    def trades(self, account_id: int) -> list[HalfTradeModel]:
        """The account's most recent trades (up to ``trade_memory``) in arrival order."""
        return list(self._trades.get(account_id, {}).values())

    def trades_since(self, account_id: int, start: datetime) -> list[HalfTradeModel]:
        """The trades of :meth:`trades` made at or after ``start`` (timezone-aware), in the same arrival order, at a
        cost of O(log n + k) for the k returned, whatever the n held (the risk layer's trading day)."""
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"trades_since start must be timezone-aware, got naive {start.isoformat()}")
        times = self._trade_times.get(account_id)
        if not times:
            return []
        held = self._trades[account_id]
        return [held[trade_id] for _, trade_id, _ in times.since(start)]

    def trade_version(self, account_id: int) -> int:
        """Changes whenever the account's trades held in full change (added, replaced with new content, forgotten,
        the account removed) and never returns to an earlier value while it holds any: equal versions, equal
        :meth:`trades`. 0 while it holds none (never had any, or removed since)."""
        return self._trade_versions.get(account_id, 0)

    def has_trade(self, account_id: int, trade_id: int) -> bool:
        """The trade id is known (remembered for deduplication, held in full or not)."""
        ids = self._trade_ids.get(account_id)
        return ids is not None and trade_id in ids[0]

    def last_quote(self, contract_id: str) -> GatewayQuote | None:
        return self._quote_models.get(contract_id)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """``{"accounts", "positions" (open), "orders" (working)}`` with the Gateway's field names and enum values."""
        return {
            "accounts": [a.wire() for a in self.accounts()],
            "positions": [p.wire() for p in self.positions()],
            "orders": [o.wire() for o in self.working_orders()],
        }
