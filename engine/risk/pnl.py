"""Profit and loss of an account's trading day: realized from its trades, unrealized from open positions at quotes.

Why these formulas: the Gateway reports ``profitAndLoss`` on the closing half of a round turn (``null`` on an
opening fill) and ``fees`` on every fill; an open position has only ``averagePrice``, ``size`` and ``type``, so its
value comes from a quote and the contract's tick economics (Contract/searchById ``tickSize``/``tickValue``):

    unrealized = (mark - averagePrice) / tickSize * tickValue * size * sign      (sign +1 long, -1 short)

A position without a usable quote or contract spec is reported as *unpriced*, never silently valued at zero.
Pure functions of their arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from engine.protocol.enums import PositionType
from engine.protocol.models import ContractModel, GatewayQuote, HalfTradeModel, PositionModel

MarkMode = Literal["last", "bidAsk"]


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """What the P&L of a contract needs (from Contract/searchById)."""

    contract_id: str
    tick_size: float
    tick_value: float
    symbol_id: str | None = None

    def __post_init__(self) -> None:
        if not self.tick_size > 0:
            raise ValueError(f"contract {self.contract_id}: tickSize must be > 0, got {self.tick_size}")

    @classmethod
    def from_model(cls, contract: ContractModel) -> ContractSpec:
        return cls(contract.id, contract.tick_size, contract.tick_value, contract.symbol_id)


def direction(position: PositionModel) -> int:
    """+1 long, -1 short, 0 when the Gateway says ``Undefined``."""
    if position.type == PositionType.LONG:
        return 1
    if position.type == PositionType.SHORT:
        return -1
    return 0


def mark_price(quote: GatewayQuote | None, position: PositionModel, mode: MarkMode) -> float | None:
    """The price an open position is valued at: the last trade, or the side a close would hit; each falls back on
    the other when the quote lacks it."""
    if quote is None:
        return None
    close_side = quote.best_bid if direction(position) > 0 else quote.best_ask
    first, second = (quote.last_price, close_side) if mode == "last" else (close_side, quote.last_price)
    return first if first is not None else second


def position_pnl(position: PositionModel, mark: float, spec: ContractSpec) -> float:
    ticks = (mark - position.average_price) / spec.tick_size
    return ticks * spec.tick_value * position.size * direction(position)


def realized_pnl(trades: Iterable[HalfTradeModel]) -> float:
    """Sum of ``profitAndLoss`` minus ``fees`` over the trades (voided trades excluded)."""
    return sum(((t.profit_and_loss or 0.0) - t.fees) for t in trades if not t.voided)


@dataclass(frozen=True, slots=True)
class Unrealized:
    total: float
    by_contract: Mapping[str, float]
    unpriced: tuple[str, ...]
    """Contracts with an open position but no quote, no contract spec or an undefined position type."""
    missing_quotes: tuple[str, ...]
    missing_specs: tuple[str, ...]


def unrealized_pnl(
    positions: Iterable[PositionModel],
    quotes: Mapping[str, GatewayQuote],
    specs: Mapping[str, ContractSpec],
    mode: MarkMode = "last",
) -> Unrealized:
    by_contract: dict[str, float] = {}
    unpriced: list[str] = []
    missing_quotes: list[str] = []
    missing_specs: list[str] = []
    for position in sorted(positions, key=lambda p: p.contract_id):
        if position.size == 0:
            continue
        spec = specs.get(position.contract_id)
        mark = mark_price(quotes.get(position.contract_id), position, mode)
        if spec is None:
            missing_specs.append(position.contract_id)
        if mark is None:
            missing_quotes.append(position.contract_id)
        if spec is None or mark is None or direction(position) == 0:
            unpriced.append(position.contract_id)
            continue
        by_contract[position.contract_id] = by_contract.get(position.contract_id, 0.0) + position_pnl(
            position, mark, spec
        )
    return Unrealized(
        sum(by_contract.values()), by_contract, tuple(unpriced), tuple(missing_quotes), tuple(missing_specs)
    )
