"""What the risk evaluator looks at: one account's state at one instant, as plain immutable values.

Why a snapshot and not the mirror itself: the evaluator is pure and deterministic, so it takes a value that a test
can build in one line and that cannot change under it. The models are the Gateway's own (``PositionModel``,
``OrderModel``, ``HalfTradeModel``, ``GatewayQuote``), exactly what :class:`engine.state.mirror.StateMirror` holds,
so :meth:`AccountSnapshot.from_mirror` is a handful of reads. Contract specs come from a contract cache the driver
fills from Contract/searchById (the mirror does not hold them).

The trading day's trades are the one read that could cost more than a few items: the mirror holds up to
``trade_memory`` (10,000) per account across days, and the driver evaluates on every quote. The mirror hands out the
trades since an instant from a time index (:meth:`~engine.state.mirror.StateMirror.trades_since`, O(the day's)), and
a :class:`DayTrades` cache keeps them between evaluations while the account's trade version and the day start are
unchanged: an evaluation on a quote then costs O(1) for its trades.
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

    def trades_since(self, account_id: int, start: datetime) -> list[HalfTradeModel]: ...

    def trade_version(self, account_id: int) -> int: ...

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
        day_trades: DayTrades | None = None,
    ) -> AccountSnapshot:
        """``since``: keep only the trades made at or after it (the driver passes the current trading day's start),
        in the mirror's arrival order; ``day_trades``: where to keep them between evaluations (with ``since`` only).

        Why: the mirror holds up to ``trade_memory`` (10,000) trades per account across days, and the evaluator
        looks only at the trading day's (daily loss, max trades). Copying and filtering all of them on every
        evaluation cost milliseconds at the cap, on the path from a quote to a breach decision; the mirror's time
        index returns the day's alone, and the cache skips even that while no trade changed."""
        positions = tuple(mirror.positions(account_id))
        orders = tuple(mirror.working_orders(account_id))
        held = sorted({p.contract_id for p in positions})
        quotes = {cid: q for cid in held if (q := mirror.last_quote(cid)) is not None}
        return cls(
            account_id=account_id,
            now=now,
            positions=positions,
            orders=orders,
            trades=_trades(mirror, account_id, since, day_trades),
            quotes=quotes,
            contracts=dict(contracts),
        )


def _trades(mirror: MirrorView, account_id: int, since: datetime | None, day_trades: DayTrades | None) \
        -> tuple[HalfTradeModel, ...]:
    if since is None:
        return tuple(mirror.trades(account_id))
    start = require_aware(since, "AccountSnapshot.from_mirror since")
    if day_trades is None:
        return tuple(mirror.trades_since(account_id, start))
    return day_trades.since(mirror, account_id, start)


class DayTrades:
    """The trades of each account since a day start, kept while the account's trade version and the start stay the
    same: what the enforcement driver reads on every evaluation, re-read from the mirror only when a trade changed.

    Why the mirror's version and not the change notifications: the mirror replaces a known trade quietly when it comes
    again with new content (e.g. ``voided``) and forgets its oldest trades quietly; the version changes on both.
    One entry per account read (:meth:`forget` drops a removed account's)."""

    __slots__ = ("_held", "hits", "reads")

    def __init__(self) -> None:
        self._held: dict[int, tuple[int, datetime, tuple[HalfTradeModel, ...]]] = {}
        """account id -> (trade version, day start, the trades since it) as last read from the mirror."""
        self.reads = 0
        """Readings from the mirror (a new trade version or day start)."""
        self.hits = 0
        """Readings answered from the cache."""

    def since(self, mirror: MirrorView, account_id: int, start: datetime) -> tuple[HalfTradeModel, ...]:
        """``mirror.trades_since(account_id, start)`` as a tuple; ``start`` timezone-aware."""
        version = mirror.trade_version(account_id)
        held = self._held.get(account_id)
        if held is not None and held[0] == version and held[1] == start:
            self.hits += 1
            return held[2]
        trades = tuple(mirror.trades_since(account_id, start))
        self._held[account_id] = (version, start, trades)
        self.reads += 1
        return trades

    def forget(self, account_id: int) -> None:
        """Drop what is kept for the account (it left the mirror)."""
        self._held.pop(account_id, None)
