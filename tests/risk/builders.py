"""Small constructors of Gateway models for the risk tests (real models, validated as the mirror would hold them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.models import GatewayQuote, HalfTradeModel, OrderModel, PositionModel
from engine.risk import ContractSpec, RiskRules
from settings import load_settings

ACCOUNT = 7
MNQ = "CON.F.US.MNQ.U25"
ES = "CON.F.US.EP.U25"
SPECS = {
    MNQ: ContractSpec(MNQ, tick_size=0.25, tick_value=0.5, symbol_id="F.US.MNQ"),
    ES: ContractSpec(ES, tick_size=0.25, tick_value=12.5, symbol_id="F.US.EP"),
}
T0 = datetime(2025, 7, 15, 14, 0, tzinfo=UTC)
"""A Tuesday, 09:00 in Chicago (CDT), inside a 08:30-15:10 session."""


def position(contract: str = MNQ, size: int = 1, long: bool = True, avg: float = 20_000.0, **kw: Any) -> PositionModel:
    return PositionModel(
        id=kw.pop("id", abs(hash(contract)) % 10_000),
        account_id=kw.pop("account_id", ACCOUNT),
        contract_id=contract,
        creation_timestamp=kw.pop("at", T0),
        type=PositionType.LONG if long else PositionType.SHORT,
        size=size,
        average_price=avg,
        **kw,
    )


def order(order_id: int, contract: str = MNQ, status: OrderStatus = OrderStatus.OPEN, **kw: Any) -> OrderModel:
    return OrderModel(
        id=order_id,
        account_id=kw.pop("account_id", ACCOUNT),
        contract_id=contract,
        creation_timestamp=kw.pop("at", T0),
        status=status,
        type=kw.pop("type", OrderType.LIMIT),
        side=kw.pop("side", OrderSide.BID),
        size=kw.pop("size", 1),
        limit_price=kw.pop("limit_price", 19_990.0),
        **kw,
    )


def trade(
    trade_id: int, order_id: int, pnl: float | None = None, fees: float = 0.0, at: datetime = T0, **kw: Any
) -> HalfTradeModel:
    return HalfTradeModel(
        id=trade_id,
        account_id=kw.pop("account_id", ACCOUNT),
        contract_id=kw.pop("contract", MNQ),
        creation_timestamp=at,
        price=kw.pop("price", 20_000.0),
        profit_and_loss=pnl,
        fees=fees,
        side=kw.pop("side", OrderSide.BID),
        size=kw.pop("size", 1),
        voided=kw.pop("voided", False),
        order_id=order_id,
    )


def quote(last: float | None = None, bid: float | None = None, ask: float | None = None) -> GatewayQuote:
    return GatewayQuote(last_price=last, best_bid=bid, best_ask=ask)


def rules(per_symbol: Any = None, **overrides: Any) -> RiskRules:
    """Compiled rules from dotted camelCase overrides of ``riskRules`` (through the real settings loader).

    ``per_symbol`` goes through the environment (JSON): flag overrides split dotted keys such as ``F.US.MNQ``."""
    env = {} if per_symbol is None else {"ENGINE_RISK_RULES__MAX_CONTRACTS__PER_SYMBOL": json.dumps(per_symbol)}
    return RiskRules.from_settings(
        load_settings(env=env, overrides={f"riskRules.{k}": v for k, v in overrides.items()}).risk_rules
    )
