"""Pydantic models of every Gateway REST request and response (docs/projectx-gateway.md §3-§5, §7.5).

One definition serves both sides: the simulator validates incoming requests with them (``extra="forbid"`` and strict
types, so an unknown or mistyped field is a 400 as ASP.NET answers it), and the engine's client parses responses
with them (lenient: unknown fields ignored, timestamps in any of the formats seen live).

Attributes are snake_case; the wire names are camelCase aliases (``model_dump(by_alias=True)``), integer enums come
from :mod:`engine.protocol.enums`. Prices are floats (the wire carries JSON numbers).

The four entities every stream event carries (account, order, position, trade) are not pydantic models but compiled
msgspec records with the same fields and the same reading (:mod:`engine.protocol.records`); they are re-exported here
and nest in the response models like any field. Timestamps: :mod:`engine.protocol.timestamps`.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from engine.protocol.enums import (
    AggregateBarUnit,
    DomType,
    OrderSortField,
    OrderStatus,
    OrderType,
    SortDirection,
    TradeLogType,
)
from engine.protocol.records import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel
from engine.protocol.timestamps import Timestamp, format_timestamp, parse_timestamp


class WireModel(BaseModel):
    """Base of responses and payloads: camelCase on the wire, unknown fields ignored (newer API versions add some)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """JSON-ready dict with wire names (``exclude_none`` for stream payloads, which omit nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=exclude_none)


class RequestModel(BaseModel):
    """Base of requests: camelCase, unknown fields rejected (the simulator also validates with ``strict=True``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON body to send (optional fields left out when unset)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Envelope(WireModel):
    success: bool
    error_code: int = 0
    error_message: str | None = None


# --- Auth ---------------------------------------------------------------------------------------------------------
class LoginApiKeyRequest(RequestModel):
    user_name: str
    api_key: str


class LoginAppRequest(RequestModel):
    user_name: str
    password: str
    device_id: str
    app_id: str
    verify_key: str


class LoginResponse(Envelope):
    token: str | None = None


class ValidateResponse(Envelope):
    new_token: str | None = None


class LogoutResponse(Envelope):
    pass


# --- Accounts -----------------------------------------------------------------------------------------------------
class SearchAccountRequest(RequestModel):
    only_active_accounts: bool


# TradingAccountModel: engine.protocol.records (a compiled msgspec Struct; see there why)


class SearchAccountResponse(Envelope):
    accounts: list[TradingAccountModel] = Field(default_factory=list)


# --- Contracts ----------------------------------------------------------------------------------------------------
class SearchContractRequest(RequestModel):
    search_text: str
    live: bool


class SearchContractByIdRequest(RequestModel):
    contract_id: str


class ListAvailableContractRequest(RequestModel):
    live: bool


class ContractModel(WireModel):
    id: str
    name: str
    description: str
    tick_size: float
    tick_value: float
    active_contract: bool
    symbol_id: str | None = None


class SearchContractResponse(Envelope):
    contracts: list[ContractModel] = Field(default_factory=list)


class SearchContractByIdResponse(Envelope):
    contract: ContractModel | None = None


class ListAvailableContractResponse(Envelope):
    contracts: list[ContractModel] = Field(default_factory=list)


# --- History ------------------------------------------------------------------------------------------------------
class RetrieveBarRequest(RequestModel):
    contract_id: str
    live: bool
    start_time: Timestamp
    end_time: Timestamp
    unit: int
    """An :class:`AggregateBarUnit` value; kept as int so an unknown unit is a business error (UnitInvalid), not 400."""
    unit_number: int
    limit: int
    include_partial_bar: bool


class AggregateBarModel(WireModel):
    t: Timestamp
    o: float
    h: float
    l: float  # noqa: E741 - the wire name
    c: float
    v: int


class RetrieveBarResponse(Envelope):
    bars: list[AggregateBarModel] = Field(default_factory=list)


# --- Orders -------------------------------------------------------------------------------------------------------
class BracketModel(RequestModel):
    ticks: int
    type: OrderType


class PlaceOrderRequest(RequestModel):
    account_id: int
    contract_id: str
    type: int
    """An :class:`OrderType` value; an unsupported one is a business rejection (errorCode 2), not a 400."""
    side: int
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None
    custom_tag: str | None = None
    stop_loss_bracket: BracketModel | None = None
    take_profit_bracket: BracketModel | None = None
    linked_order_id: int | None = None


class PlaceOrderResponse(Envelope):
    order_id: int | None = None


class ModifyOrderRequest(RequestModel):
    account_id: int
    order_id: int
    size: int | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    trail_price: float | None = None


class ModifyOrderResponse(Envelope):
    pass


class CancelOrderRequest(RequestModel):
    account_id: int
    order_id: int


class CancelOrderResponse(Envelope):
    pass


class SearchOrderRequest(RequestModel):
    account_id: int
    start_timestamp: Timestamp
    end_timestamp: Timestamp | None = None


class SearchOpenOrderRequest(RequestModel):
    account_id: int


class SearchOrderByIdRequest(RequestModel):
    account_id: int
    order_id: int


# OrderModel: engine.protocol.records (a compiled msgspec Struct; see there why)


class SearchOrderResponse(Envelope):
    orders: list[OrderModel] = Field(default_factory=list)


class SearchOrderByIdResponse(Envelope):
    order: OrderModel | None = None


class OrderQueryFilter(RequestModel):
    account_id: int
    statuses: list[OrderStatus] | None = None
    contract_id: str | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None


class OrderQueryRequest(RequestModel):
    filter: OrderQueryFilter
    page_size: int | None = None
    page_offset: int | None = None
    sort_by: OrderSortField | None = None
    sort_direction: SortDirection | None = None
    include_total_count: bool | None = None


class OrderQueryResponse(Envelope):
    orders: list[OrderModel] = Field(default_factory=list)
    total_count: int | None = None


# --- Positions ----------------------------------------------------------------------------------------------------
class SearchPositionRequest(RequestModel):
    account_id: int


# PositionModel: engine.protocol.records (a compiled msgspec Struct; see there why)


class SearchPositionResponse(Envelope):
    positions: list[PositionModel] = Field(default_factory=list)


class CloseContractPositionRequest(RequestModel):
    account_id: int
    contract_id: str


class CloseContractPositionResponse(Envelope):
    pass


class PartialCloseContractPositionRequest(RequestModel):
    account_id: int
    contract_id: str
    size: int


class PartialCloseContractPositionResponse(Envelope):
    pass


# --- Trades -------------------------------------------------------------------------------------------------------
class SearchTradeRequest(RequestModel):
    account_id: int
    start_timestamp: Timestamp | None = None
    end_timestamp: Timestamp | None = None


# HalfTradeModel: engine.protocol.records (a compiled msgspec Struct; see there why)


class SearchTradeResponse(Envelope):
    trades: list[HalfTradeModel] = Field(default_factory=list)


# --- Validation failures (HTTP 400) -------------------------------------------------------------------------------
class ProblemDetails(WireModel):
    """ASP.NET Core's validation body: ``{"type","title","status","errors":{field:[msgs]},"traceId"}``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")
    type: str | None = None
    title: str | None = None
    status: int | None = None
    errors: dict[str, list[str]] = Field(default_factory=dict)
    trace_id: str | None = Field(default=None, validation_alias=AliasChoices("traceId", "trace_id"))


# --- Realtime payloads (the ``data`` of user-hub wrappers, the items of market-hub events) ------------------------
class GatewayUserAccount(TradingAccountModel):
    pass


class GatewayUserOrder(OrderModel):
    pass


class GatewayUserPosition(PositionModel):
    pass


class GatewayUserTrade(HalfTradeModel):
    pass


class GatewayQuote(WireModel):
    """May be partial: only the fields that changed."""

    symbol: str | None = None
    symbol_name: str | None = None
    last_price: float | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    change: float | None = None
    change_percent: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: int | None = None
    last_updated: Timestamp | None = None
    timestamp: Timestamp | None = None


class GatewayTrade(WireModel):
    symbol_id: str | None = None
    price: float
    timestamp: Timestamp
    type: TradeLogType
    volume: int


class GatewayDepth(WireModel):
    timestamp: Timestamp
    type: DomType
    price: float
    volume: int
    current_volume: int


__all__ = [
    "AggregateBarModel",
    "AggregateBarUnit",
    "CancelOrderRequest",
    "CancelOrderResponse",
    "CloseContractPositionRequest",
    "CloseContractPositionResponse",
    "ContractModel",
    "Envelope",
    "GatewayDepth",
    "GatewayQuote",
    "GatewayTrade",
    "GatewayUserAccount",
    "GatewayUserOrder",
    "GatewayUserPosition",
    "GatewayUserTrade",
    "HalfTradeModel",
    "ListAvailableContractRequest",
    "ListAvailableContractResponse",
    "LoginApiKeyRequest",
    "LoginAppRequest",
    "LoginResponse",
    "LogoutResponse",
    "ModifyOrderRequest",
    "ModifyOrderResponse",
    "OrderModel",
    "OrderQueryFilter",
    "OrderQueryRequest",
    "OrderQueryResponse",
    "PartialCloseContractPositionRequest",
    "PartialCloseContractPositionResponse",
    "PlaceOrderRequest",
    "PlaceOrderResponse",
    "PositionModel",
    "ProblemDetails",
    "RetrieveBarRequest",
    "RetrieveBarResponse",
    "SearchAccountRequest",
    "SearchAccountResponse",
    "SearchContractByIdRequest",
    "SearchContractByIdResponse",
    "SearchContractRequest",
    "SearchContractResponse",
    "SearchOpenOrderRequest",
    "SearchOrderByIdRequest",
    "SearchOrderByIdResponse",
    "SearchOrderRequest",
    "SearchOrderResponse",
    "SearchPositionRequest",
    "SearchPositionResponse",
    "SearchTradeRequest",
    "SearchTradeResponse",
    "Timestamp",
    "TradingAccountModel",
    "ValidateResponse",
    "format_timestamp",
    "parse_timestamp",
]
