"""Compare a fetched REST snapshot with the mirror; apply the difference as synthetic events in one synchronous step.

Why synchronous: the caller (the reconciler) fetches everything first, with the mirror on hold, and only then calls
:func:`apply_snapshot`, which contains no ``await``. A reconciliation cancelled at any point therefore either applied
its whole comparison or nothing, and the mirror is always consistent.

Rules (NautilusTrader-style reconciliation, docs/lessons-from-peers.md):
- A part whose fetch failed is ``None`` here and is skipped: a missing list is never an empty one.
- The snapshot is authoritative for what it covers: positions open/closed/changed, accounts, working orders.
- A working order of the mirror that is no longer working must be *proven* terminal (by the recent-orders window or
  a lookup by id) before it leaves the working set; if the proof failed to arrive the order stays and the orders part
  is retried. Only the Gateway saying "no such order" makes it vanish.
- Every ``fillVolume`` increase becomes an inferred fill (a :class:`~engine.state.changes.FillInferred` change and an
  ``inferred_fill`` finding), so a fill missed by the stream is never missed by the risk layer.
- On an account's first synchronisation nothing is "missed" (there was no stream to miss it): state is applied,
  terminal orders are remembered quietly, and no finding is produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.protocol.enums import OrderStatus
from engine.protocol.models import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel
from engine.state.changes import FillInferred
from engine.state.mirror import StateMirror
from engine.store.records import ReconcileFinding

TERMINAL_KINDS = {
    OrderStatus.FILLED: "missed_order_filled",
    OrderStatus.CANCELLED: "missed_order_cancelled",
    OrderStatus.EXPIRED: "missed_order_expired",
    OrderStatus.REJECTED: "missed_order_rejected",
}


@dataclass(frozen=True, slots=True)
class CompareOptions:
    positions: bool = True
    orders: bool = True
    accounts: bool = True


@dataclass(slots=True)
class AccountFetch:
    """What was fetched for one account; ``None`` means that fetch failed (the part is skipped)."""

    account_id: int
    initial: bool = False
    """True when this account was never synchronised before (no findings: nothing was missed)."""
    positions: Sequence[PositionModel] | None = None
    working: Sequence[OrderModel] | None = None
    recent: Sequence[OrderModel] | None = None
    lookups: dict[int, OrderModel | None] = field(default_factory=dict)
    """Orders looked up by id (None: the Gateway does not know it)."""
    lookup_failed: set[int] = field(default_factory=set)
    trades: Sequence[HalfTradeModel] | None = None


@dataclass(slots=True)
class Fetched:
    accounts: Sequence[TradingAccountModel] | None
    """None: Account/search failed (or was not asked); accounts are then not compared."""
    per_account: list[AccountFetch]


@dataclass(slots=True)
class Outcome:
    findings: list[ReconcileFinding] = field(default_factory=list)
    unresolved: set[int] = field(default_factory=set)
    """Accounts whose orders part could not be settled completely (retry it)."""


def absent_working_orders(mirror: StateMirror, account_id: int, working: Sequence[OrderModel] | None,
                          recent: Sequence[OrderModel] | None) -> list[int]:
    """Working orders of the mirror that neither fetched list mentions: their fate must be looked up by id."""
    seen = {o.id for o in working or ()} | {o.id for o in recent or ()}
    return [o.id for o in mirror.working_orders(account_id) if o.id not in seen]


def _newest(a: OrderModel, b: OrderModel) -> OrderModel:
    """The later of two versions of one order (fillVolume, then terminal status, then updateTimestamp)."""
    def rank(o: OrderModel) -> tuple[int, int, float]:
        stamp = o.update_timestamp.timestamp() if o.update_timestamp is not None else float("-inf")
        return o.fill_volume, int(o.status.is_terminal), stamp

    return b if rank(b) >= rank(a) else a


def _diff(before: Any, after: Any) -> dict[str, Any]:
    """Changed wire fields ``{field: [before, after]}`` between two models of one kind."""
    old, new = before.wire(), after.wire()
    return {k: [old.get(k), new[k]] for k in new if old.get(k) != new[k]}


class _Applier:
    def __init__(self, mirror: StateMirror, at: datetime) -> None:
        self.mirror = mirror
        self.at = at
        self.outcome = Outcome()

    def find(self, kind: str, account_id: int | None, quiet: bool, **details: Any) -> None:
        if not quiet:
            self.outcome.findings.append(ReconcileFinding(kind=kind, details=details, at=self.at,
                                                          account_id=account_id))

    # --- accounts -----------------------------------------------------------------------------------------------
    def accounts(self, fetched: Sequence[TradingAccountModel], first_sync: bool) -> None:
        mirror = self.mirror
        listed = {a.id for a in fetched}
        for account in fetched:
            before = mirror.account(account.id)
            if before == account:
                continue
            mirror.apply_account(account, "reconcile")
            if mirror.account(account.id) != account:
                continue  # not watched
            if before is None:
                self.find("missed_account_added", account.id, first_sync, name=account.name)
            else:
                self.find("missed_account_update", account.id, first_sync, changed=_diff(before, account))
        for account_id in sorted(mirror.account_ids - listed):
            self.find("missed_account_removed", account_id, first_sync)
            mirror.remove_account(account_id, "reconcile")

    # --- positions ----------------------------------------------------------------------------------------------
    def positions(self, fetch: AccountFetch, fetched: Sequence[PositionModel]) -> None:
        mirror, acct, quiet = self.mirror, fetch.account_id, fetch.initial
        listed = {p.contract_id: p for p in fetched if p.account_id == acct and p.size > 0}
        for held in mirror.positions(acct):
            if held.contract_id not in listed:
                self.find("missed_position_closed", acct, quiet, contractId=held.contract_id, size=held.size,
                          type=int(held.type))
                mirror.close_position(acct, held.contract_id, "reconcile")
        for contract_id, position in sorted(listed.items()):
            before = mirror.position(acct, contract_id)
            if before == position:
                continue
            if before is None:
                self.find("missed_position_opened", acct, quiet, contractId=contract_id, size=position.size,
                          type=int(position.type), averagePrice=position.average_price)
            else:
                self.find("missed_position_changed", acct, quiet, contractId=contract_id,
                          changed=_diff(before, position))
            mirror.apply_position(position, "reconcile")

    # --- orders -------------------------------------------------------------------------------------------------
    def orders(self, fetch: AccountFetch) -> None:
        mirror, acct = self.mirror, fetch.account_id
        latest: dict[int, OrderModel] = {}
        for source in (fetch.working, fetch.recent, [o for o in fetch.lookups.values() if o is not None]):
            for o in source or ():
                if o.account_id != acct:
                    continue
                latest[o.id] = _newest(latest[o.id], o) if o.id in latest else o
        working_ids = {o.id for o in fetch.working or ()}
        for order_id in sorted(latest):
            found = latest[order_id]
            if fetch.working is not None and order_id not in working_ids and not found.status.is_terminal \
                    and mirror.knows_order(order_id):
                # Listed as working by an older read but absent from the working list: settle it next time.
                self.outcome.unresolved.add(acct)
                continue
            self.order(fetch, found)
        if fetch.working is None:
            return
        for order_id in absent_working_orders(mirror, acct, fetch.working, fetch.recent):
            if order_id in fetch.lookups and fetch.lookups[order_id] is None:
                held = mirror.order(order_id)
                self.find("order_vanished", acct, fetch.initial, orderId=order_id,
                          status=int(held.status) if held is not None else None)
                mirror.forget_order(order_id, "reconcile")
            elif order_id not in fetch.lookups:
                self.outcome.unresolved.add(acct)

    def order(self, fetch: AccountFetch, found: OrderModel) -> None:
        mirror, acct, quiet = self.mirror, fetch.account_id, fetch.initial
        if mirror.is_terminal(found.id):
            return  # already final; a terminal order never comes back
        held = mirror.order(found.id)
        if held == found:
            return
        details: dict[str, Any] = {"orderId": found.id, "contractId": found.contract_id, "status": int(found.status),
                                   "fillVolume": found.fill_volume, "customTag": found.custom_tag}
        if held is None and found.status.is_terminal and quiet:
            mirror.remember_terminal(found)  # history from before the engine watched: nothing was missed
            return
        if found.status.is_terminal:
            self.find(TERMINAL_KINDS.get(found.status, "missed_order_terminal"), acct, quiet,
                      seenWorking=held is not None, **details)
        elif held is None:
            self.find("missed_order_created", acct, quiet, **details)
        else:
            self.find("missed_order_update", acct, quiet, changed=_diff(held, found), **details)
        before_fill = held.fill_volume if held is not None else 0
        applied = mirror.apply_order(found, "reconcile")
        delta = found.fill_volume - before_fill
        if delta > 0 and applied:
            self.find("inferred_fill", acct, quiet, orderId=found.id, contractId=found.contract_id, quantity=delta,
                      fillVolume=found.fill_volume, filledPrice=found.filled_price)
            mirror.note_fill(FillInferred(found.id, acct, found.contract_id, delta, found.filled_price))

    # --- trades -------------------------------------------------------------------------------------------------
    def trades(self, fetch: AccountFetch, fetched: Sequence[HalfTradeModel]) -> None:
        mirror, acct = self.mirror, fetch.account_id
        for trade in sorted(fetched, key=lambda t: (t.creation_timestamp, t.id)):
            if trade.account_id != acct or mirror.has_trade(acct, trade.id):
                continue
            if mirror.apply_trade(trade, "reconcile"):
                self.find("missed_trade", acct, fetch.initial, tradeId=trade.id, orderId=trade.order_id,
                          contractId=trade.contract_id, side=int(trade.side), size=trade.size, price=trade.price,
                          profitAndLoss=trade.profit_and_loss)


def apply_snapshot(mirror: StateMirror, fetched: Fetched, options: CompareOptions, at: datetime, *,
                   first_sync: bool = False) -> Outcome:
    """Bring ``mirror`` to the fetched state, emitting synthetic events; returns the findings and unsettled accounts.

    Synchronous on purpose (see the module docstring). ``at`` stamps the findings."""
    applier = _Applier(mirror, at)
    if options.accounts and fetched.accounts is not None:
        applier.accounts(fetched.accounts, first_sync)
    for fetch in fetched.per_account:
        if options.accounts and fetched.accounts is not None and fetch.account_id not in mirror.account_ids:
            continue  # the account is gone (or not watched)
        if options.positions and fetch.positions is not None:
            applier.positions(fetch, fetch.positions)
        if options.orders and (fetch.working is not None or fetch.recent is not None):
            applier.orders(fetch)
        if fetch.trades is not None:
            applier.trades(fetch, fetch.trades)
    return applier.outcome
