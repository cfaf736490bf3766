"""Typed change notifications the mirror hands to its listeners (the risk layer, the quote subscriber, tests).

Why typed changes and not "something changed, re-read everything": risk rules react to *what* changed (a position
opened, an order filled a little more), and the reconciler's synthetic events must be distinguishable from live
ones (``source``), so a rule can, for example, treat a fill found by reconciliation as old news.

Every change carries the model before and after (``None`` when the thing did not exist / no longer exists), so a
listener never has to keep its own copy of the mirror.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.protocol.models import (
    GatewayQuote,
    HalfTradeModel,
    OrderModel,
    PositionModel,
    TradingAccountModel,
)

Source = Literal["stream", "reconcile"]
"""``stream``: a hub event; ``reconcile``: a synthetic event the reconciler emitted for something the stream missed."""


@dataclass(frozen=True, slots=True)
class AccountChanged:
    account_id: int
    before: TradingAccountModel | None
    after: TradingAccountModel | None
    """None: the account disappeared from the Gateway's account list (reconciliation only)."""
    source: Source


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order was created, updated, or left the working set (``after.status`` is terminal)."""

    order_id: int
    account_id: int
    before: OrderModel | None
    after: OrderModel | None
    """None only when reconciliation found the order gone without a trace (``order_vanished``)."""
    source: Source

    @property
    def fill_delta(self) -> int:
        """How much ``fillVolume`` grew with this change (0 when it did not)."""
        old = self.before.fill_volume if self.before is not None else 0
        new = self.after.fill_volume if self.after is not None else old
        return max(0, new - old)


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position opened, changed size or price, or closed (``after`` None)."""

    account_id: int
    contract_id: str
    before: PositionModel | None
    after: PositionModel | None
    source: Source

    @property
    def closed(self) -> bool:
        return self.after is None


@dataclass(frozen=True, slots=True)
class TradeAdded:
    """A trade (half-turn fill) not seen before; duplicates never produce one."""

    trade: HalfTradeModel
    source: Source


@dataclass(frozen=True, slots=True)
class FillInferred:
    """Reconciliation saw an order's ``fillVolume`` grow while the stream was away: ``quantity`` more was filled.

    The matching trades arrive separately (as :class:`TradeAdded`) when Trade/search has them; this change exists so
    a fill is never lost when the trade fetch failed or lags."""

    order_id: int
    account_id: int
    contract_id: str
    quantity: int
    average_price: float | None
    """The order's cumulative ``filledPrice`` after the fill (the Gateway gives no price per fill here)."""


@dataclass(frozen=True, slots=True)
class QuoteChanged:
    contract_id: str
    quote: GatewayQuote
    """The merged quote (a partial update filled in with earlier values)."""


@dataclass(frozen=True, slots=True)
class WatchedContractsChanged:
    """The union of contracts held or worked over all accounts changed (the market hub's subscription set)."""

    added: frozenset[str]
    removed: frozenset[str]
    contracts: frozenset[str]


Change = (
    AccountChanged
    | OrderChanged
    | PositionChanged
    | TradeAdded
    | FillInferred
    | QuoteChanged
    | WatchedContractsChanged
)
