"""What the risk evaluator looks at: one account's state at one instant, as plain immutable values.

Why a snapshot and not the mirror itself: the evaluator is pure and deterministic, so it takes a value that a test
can build in one line and that cannot change under it. The models are the Gateway's own (``PositionModel``,
``OrderModel``, ``HalfTradeModel``, ``GatewayQuote``), exactly what :class:`engine.state.mirror.StateMirror` holds,
so :meth:`AccountSnapshot.from_mirror` is a handful of reads. Contract specs come from a contract cache the driver
fills from Contract/searchById (the mirror does not hold them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from engine.protocol.models import GatewayQuote, HalfTradeModel, OrderModel, PositionModel
from engine.risk.calendar import require_aware
from engine.risk.pnl import ContractSpec


class MirrorView(Protocol):
    """The read side of the state mirror that a snapshot needs (``StateMirror`` satisfies it)."""

    def positions(self, account_id: int | None = None) -> list[PositionModel]: ...

    def working_orders(self, account_id: int | None = None) -> list[OrderModel]: ...

    def trades(self, account_id: int) -> list[HalfTradeModel]: ...

    def last_quote(self, contract_id: str) -> GatewayQuote | None: ...


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account at ``now``: open positions, working orders, trades (any day: the evaluator keeps the current
    trading day's; :meth:`from_mirror` can pass on that day's only), the latest quote and the contract spec per
    contract."""

    account_id: int
    now: datetime
    positions: tuple[PositionModel, ...] = ()
    orders: tuple[OrderModel, ...] = ()
    """Orders in any status; only working ones (Open, Pending, PendingCancellation, Suspended) matter."""
    trades: tuple[HalfTradeModel, ...] = ()
    quotes: Mapping[str, GatewayQuote] = field(default_factory=dict)
    contracts: Mapping[str, ContractSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", require_aware(self.now, "AccountSnapshot.now"))
        for kind, items in (("position", self.positions), ("order", self.orders), ("trade", self.trades)):
            for item in items:
                if item.account_id != self.account_id:
                    raise ValueError(
                        f"{kind} of account {item.account_id} in the snapshot of account {self.account_id}"
                    )

    @property
    def open_positions(self) -> tuple[PositionModel, ...]:
        return tuple(p for p in self.positions if p.size != 0)

    @property
    def working_orders(self) -> tuple[OrderModel, ...]:
        return tuple(o for o in self.orders if o.status.is_working)

    @property
    def is_flat(self) -> bool:
        """No open position and no working order."""
        return not self.open_positions and not self.working_orders

    @classmethod
    def from_mirror(
        cls,
        mirror: MirrorView,
        account_id: int,
        *,
        now: datetime,
        contracts: Mapping[str, ContractSpec],
        since: datetime | None = None,
    ) -> AccountSnapshot:
        """``since``: keep only the trades made at or after it (the driver passes the current trading day's start).

        Why: the mirror holds up to ``trade_memory`` (10,000) trades per account across days, and the evaluator
        looks only at the trading day's (daily loss, max trades). Every evaluation copied and checked all of them
        (and the evaluator tested every one against the day's bounds): at the cap, milliseconds per evaluation on
        the path from an event to its enforcement. One comparison per trade here is the cheapest way to hand on only
        the day; trades arrive roughly but not strictly in time order (a reconciliation adds missed ones late), so
        no early stop is safe."""
        positions = tuple(mirror.positions(account_id))
        orders = tuple(mirror.working_orders(account_id))
        held = sorted({p.contract_id for p in positions})
        quotes = {cid: q for cid in held if (q := mirror.last_quote(cid)) is not None}
        return cls(
            account_id=account_id,
            now=now,
            positions=positions,
            orders=orders,
            trades=tuple(mirror.trades(account_id) if since is None else _since(mirror.trades(account_id), since)),
            quotes=quotes,
            contracts=dict(contracts),
        )


def _since(trades: list[HalfTradeModel], since: datetime) -> list[HalfTradeModel]:
    start = require_aware(since, "AccountSnapshot.from_mirror since")
    return [t for t in trades if t.creation_timestamp >= start]
