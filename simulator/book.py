"""The trading model: accounts, orders, positions and trades, matched against the simulator's price processes.

Synchronous and single-threaded (it runs inside the Trio task of whoever calls it), so REST requests from several
clients and the background matcher never interleave inside one operation. Every state change is published at once as
the user-hub event the real Gateway would send (``{"action", "data"}`` wrappers, nulls omitted).

Rules implemented (see docs/projectx-gateway.md §5.6-§5.15, §8):
- order types Market, Limit, Stop, StopLimit, TrailingStop, JoinBid, JoinAsk; statuses Pending -> Open -> Filled,
  Cancelled, Rejected, Suspended (bracket children);
- ``customTag`` unique per account forever, rejected orders' tags included (errorCode 2, "... already in use");
- partial fills: an order is filled over several trades ``partial_fill_interval_s`` apart, ``fillVolume`` growing;
- one netted position per account and contract with a weighted ``averagePrice``; closing fills carry
  ``profitAndLoss``; every fill carries fees; balances move by realized P&L minus fees;
- server-side brackets (Auto OCO accounts): signed ticks, Suspended children activated when the entry fills,
  one leg filling cancels the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType, StreamAction
from engine.protocol.errors import (
    CancelOrderErrorCode,
    ClosePositionErrorCode,
    ModifyOrderErrorCode,
    PartialClosePositionErrorCode,
    PlaceOrderErrorCode,
)
from engine.protocol.models import (
    HalfTradeModel,
    ModifyOrderRequest,
    OrderModel,
    PlaceOrderRequest,
    PositionModel,
    TradingAccountModel,
)
from simulator.bus import HubEvent
from simulator.config import AccountSpec, ContractSpec, SimConfig
from simulator.market import PriceProcess

Result = tuple[int, str | None]
"""(errorCode, errorMessage) of a business operation; (0, None) is success."""

SUPPORTED_TYPES = {
    OrderType.LIMIT,
    OrderType.MARKET,
    OrderType.STOP_LIMIT,
    OrderType.STOP,
    OrderType.TRAILING_STOP,
    OrderType.JOIN_BID,
    OrderType.JOIN_ASK,
}
MAX_TRAIL_TICKS = 1000


@dataclass(slots=True)
class Account:
    spec: AccountSpec
    balance: float
    can_trade: bool
    used_tags: set[str] = field(default_factory=set)

    def model(self) -> TradingAccountModel:
        s = self.spec
        return TradingAccountModel(
            id=s.id, name=s.name, balance=round(self.balance, 2), can_trade=self.can_trade,
            is_visible=s.is_visible, simulated=s.simulated,
        )


@dataclass(slots=True)
class Bracket:
    ticks: int
    type: OrderType


@dataclass(slots=True)
class Order:
    id: int
    account_id: int
    contract: ContractSpec
    created: datetime
    updated: datetime
    status: OrderStatus
    type: OrderType
    side: OrderSide
    size: int
    limit_price: float | None = None
    stop_price: float | None = None
    trail_ticks: int | None = None
    custom_tag: str | None = None
    fill_volume: int = 0
    filled_price: float | None = None
    parent_order_id: int | None = None
    linked_order_id: int | None = None
    triggered: bool = False
    extreme: float | None = None
    next_fill_at: float = 0.0
    stop_loss: Bracket | None = None
    take_profit: Bracket | None = None
    children: list[int] = field(default_factory=list)
    leg: str | None = None
    """``-SL`` or ``-TP`` on a bracket child."""

    @property
    def remaining(self) -> int:
        return self.size - self.fill_volume

    def model(self) -> OrderModel:
        trail_price = None if self.trail_ticks is None else round(self.trail_ticks * self.contract.tick_size, 10)
        return OrderModel(
            id=self.id, account_id=self.account_id, contract_id=self.contract.id, symbol_id=self.contract.symbol_id,
            creation_timestamp=self.created, update_timestamp=self.updated, status=self.status, type=self.type,
            side=self.side, size=self.size, limit_price=self.limit_price, stop_price=self.stop_price,
            fill_volume=self.fill_volume, filled_price=self.filled_price, custom_tag=self.custom_tag,
            trail_distance=self.trail_ticks, trail_price=trail_price, parent_order_id=self.parent_order_id,
            linked_order_id=self.linked_order_id,
        )


@dataclass(slots=True)
class Position:
    id: int
    account_id: int
    contract: ContractSpec
    created: datetime
    signed_size: int
    average_price: float

    def model(self) -> PositionModel:
        return PositionModel(
            id=self.id, account_id=self.account_id, contract_id=self.contract.id,
            contract_display_name=self.contract.name, creation_timestamp=self.created,
            type=PositionType.LONG if self.signed_size > 0 else PositionType.SHORT if self.signed_size < 0
            else PositionType.UNDEFINED,
            size=abs(self.signed_size), average_price=self.average_price,
        )


class Book:
    def __init__(
        self,
        config: SimConfig,
        markets: dict[str, PriceProcess],
        now: Callable[[], datetime],
        trio_now: Callable[[], float],
        publish: Callable[[HubEvent], None],
        market_open: Callable[[], bool],
    ) -> None:
        self.config = config
        self.markets = markets
        self.contracts = {c.id: c for c in config.contracts}
        self._now = now
        self._trio_now = trio_now
        self._publish = publish
        self._market_open = market_open
        self.accounts = {a.id: Account(a, a.balance, a.can_trade) for a in config.accounts}
        self.orders: dict[int, Order] = {}
        """Every order ever placed (the Gateway's history); add through :meth:`_add` so the indexes below follow."""
        self._live: dict[int, Order] = {}
        """The orders not known to be terminal yet, in placement order: what matching and Order/searchOpen look at.
        Why: a week of trading leaves thousands of finished orders in :attr:`orders`, and scanning all of them on
        every price step and fill wake-up made the simulator's cost grow with its history. Pruned lazily (a status
        is set in many places) by :meth:`working_orders`."""
        self._by_account: dict[int, list[Order]] = {}
        self._trades_by_account: dict[int, list[HalfTradeModel]] = {}
        self.positions: dict[tuple[int, str], Position] = {}
        self.trades: list[HalfTradeModel] = []
        self._next_order_id = 9000
        self._next_trade_id = 50000
        self._next_position_id = 700
        self.on_fill_due: Callable[[float], None] = lambda when: None
        """Called with the Trio time at which a partially filled order wants its next fill (the run loop wakes)."""

    # --- helpers --------------------------------------------------------------------------------------------------
    def account_for(self, account_id: int, user: str | None) -> Account | None:
        account = self.accounts.get(account_id)
        if account is None or (user is not None and account.spec.user != user):
            return None
        return account

    def _aligned(self, contract: ContractSpec, price: float) -> bool:
        ticks = price / contract.tick_size
        return math.isfinite(ticks) and abs(ticks - round(ticks)) < 1e-6 and price > 0

    def _add(self, order: Order) -> None:
        self.orders[order.id] = order
        self._by_account.setdefault(order.account_id, []).append(order)
        if not order.status.is_terminal:
            self._live[order.id] = order

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _emit(self, target: str, action: StreamAction, data: dict[str, Any], account_id: int) -> None:
        self._publish(HubEvent("user", target, ({"action": int(action), "data": data},), account_id=account_id))

    def _emit_order(self, order: Order) -> None:
        self._emit("GatewayUserOrder", StreamAction.UPDATE, order.model().wire(exclude_none=True), order.account_id)

    def _emit_account(self, account: Account) -> None:
        self._emit("GatewayUserAccount", StreamAction.UPDATE, account.model().wire(exclude_none=True), account.spec.id)

    def _touch(self, order: Order, status: OrderStatus | None = None) -> None:
        if status is not None:
            order.status = status
        order.updated = self._now()
        self._emit_order(order)

    # --- Order/place ----------------------------------------------------------------------------------------------
    def place(self, req: PlaceOrderRequest, user: str | None) -> tuple[int, str | None, int | None]:
        """Returns (errorCode, errorMessage, orderId)."""
        account = self.account_for(req.account_id, user)
        if account is None:
            return PlaceOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", None
        contract = self.contracts.get(req.contract_id)
        if contract is None:
            return PlaceOrderErrorCode.CONTRACT_NOT_FOUND, "Contract not found.", None
        if not contract.active:
            return PlaceOrderErrorCode.CONTRACT_NOT_ACTIVE, "Contract is not active.", None
        if req.custom_tag is not None:
            if req.custom_tag in account.used_tags:
                return PlaceOrderErrorCode.ORDER_REJECTED, f"Custom tag '{req.custom_tag}' is already in use.", None
            account.used_tags.add(req.custom_tag)  # reserved for good, even if the order is rejected below
        if not account.can_trade:
            return PlaceOrderErrorCode.ACCOUNT_VIOLATION, "Account is not allowed to trade.", None
        if account.balance <= 0:
            return PlaceOrderErrorCode.INSUFFICIENT_FUNDS, "Insufficient funds.", None
        reason = self._validate_place(req, contract)
        if reason is not None:
            return PlaceOrderErrorCode.ORDER_REJECTED, reason, None
        side, otype = OrderSide(req.side), OrderType(req.type)
        now = self._now()
        order = Order(
            self._new_order_id(), account.spec.id, contract, now, now, OrderStatus.PENDING, otype, side, req.size,
            limit_price=req.limit_price, stop_price=req.stop_price, custom_tag=req.custom_tag,
        )
        quote = self.markets[contract.id].quote
        if otype is OrderType.JOIN_BID:
            order.limit_price = quote.bid
        elif otype is OrderType.JOIN_ASK:
            order.limit_price = quote.ask
        elif otype is OrderType.TRAILING_STOP:
            assert req.trail_price is not None
            order.trail_ticks = int(abs(quote.last - req.trail_price) / contract.tick_size + 1e-9)
            order.extreme = quote.last
            order.stop_price = self._trail_stop(order)
        if req.stop_loss_bracket is not None or req.take_profit_bracket is not None:
            if account.spec.bracket_mode != "auto_oco":
                order.status = OrderStatus.REJECTED
                self._add(order)
                self._emit_order(order)
                return (
                    PlaceOrderErrorCode.ORDER_REJECTED,
                    "Brackets cannot be used with Position Brackets. You must enable Auto OCO Brackets.",
                    order.id,
                )
            reason = self._validate_brackets(req, side)
            if reason is not None:
                return PlaceOrderErrorCode.ORDER_REJECTED, reason, None
        self._add(order)
        if otype is not OrderType.MARKET:
            order.status = OrderStatus.OPEN
        self._emit_order(order)
        self._create_bracket_children(order, req)
        self._work(order)
        return PlaceOrderErrorCode.SUCCESS, None, order.id

    def _validate_place(self, req: PlaceOrderRequest, contract: ContractSpec) -> str | None:
        if req.type not in {t.value for t in SUPPORTED_TYPES}:
            return "Invalid order type specified."
        if req.side not in (0, 1):
            return "Invalid order side specified."
        if req.size <= 0:
            return "Invalid order size specified."
        if not self._market_open():
            return "Outside of trading hours."
        otype = OrderType(req.type)
        if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) and req.limit_price is None:
            return "Limit price is required."
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT) and req.stop_price is None:
            return "Stop price is required."
        for price in (req.limit_price, req.stop_price):
            if price is not None and not self._aligned(contract, price):
                return "Invalid price. Price is not aligned to tick size."
        if otype is OrderType.TRAILING_STOP:
            if req.trail_price is None:
                return "Trail Distance not set."
            if not self._aligned(contract, req.trail_price):
                return "Invalid trail price. Price is not aligned to tick size."
            last = self.markets[contract.id].quote.last
            if abs(last - req.trail_price) / contract.tick_size > MAX_TRAIL_TICKS + 1e-9:
                return f"Trail Distance exceeds maximum ({MAX_TRAIL_TICKS})"
            if abs(last - req.trail_price) < contract.tick_size / 2:
                return "Trail Distance not set."
        return None

    @staticmethod
    def _validate_brackets(req: PlaceOrderRequest, side: OrderSide) -> str | None:
        long = side is OrderSide.BID
        if req.stop_loss_bracket is not None:
            ticks = req.stop_loss_bracket.ticks
            if long and ticks >= 0:
                return "Ticks should be less than zero when longing"
            if not long and ticks <= 0:
                return "Ticks should be greater than zero when shorting"
        if req.take_profit_bracket is not None:
            ticks = req.take_profit_bracket.ticks
            if long and ticks <= 0:
                return "Ticks should be greater than zero when longing"
            if not long and ticks >= 0:
                return "Ticks should be less than zero when shorting"
        return None

    def _create_bracket_children(self, parent: Order, req: PlaceOrderRequest) -> None:
        exit_side = OrderSide.ASK if parent.side is OrderSide.BID else OrderSide.BID
        legs = [("-SL", req.stop_loss_bracket), ("-TP", req.take_profit_bracket)]
        made: dict[str, Order] = {}
        for suffix, bracket in legs:
            if bracket is None:
                continue
            tag = None if parent.custom_tag is None else parent.custom_tag + suffix
            child = Order(
                self._new_order_id(), parent.account_id, parent.contract, parent.created, parent.created,
                OrderStatus.SUSPENDED, OrderType(bracket.type), exit_side, parent.size, custom_tag=tag,
                parent_order_id=parent.id, leg=suffix,
            )
            if tag is not None:
                self.accounts[parent.account_id].used_tags.add(tag)
            self._add(child)
            parent.children.append(child.id)
            made[suffix] = child
            if suffix == "-SL":
                parent.stop_loss = Bracket(bracket.ticks, OrderType(bracket.type))
            else:
                parent.take_profit = Bracket(bracket.ticks, OrderType(bracket.type))
        if "-SL" in made and "-TP" in made:
            made["-TP"].linked_order_id = made["-SL"].id
            made["-SL"].linked_order_id = made["-TP"].id
        for child in made.values():
            self._emit_order(child)

    # --- Order/modify, Order/cancel -------------------------------------------------------------------------------
    def modify(self, req: ModifyOrderRequest, user: str | None) -> Result:
        account = self.account_for(req.account_id, user)
        if account is None:
            return ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found."
        order = self.orders.get(req.order_id)
        if order is None or order.account_id != account.spec.id:
            return ModifyOrderErrorCode.ORDER_NOT_FOUND, None
        if order.status.is_terminal:
            return ModifyOrderErrorCode.REJECTED, "Order is not working."
        if req.size is not None and (req.size <= 0 or req.size < order.fill_volume + 1):
            return ModifyOrderErrorCode.REJECTED, "Invalid order size specified."
        for price in (req.limit_price, req.stop_price, req.trail_price):
            if price is not None and not self._aligned(order.contract, price):
                return ModifyOrderErrorCode.REJECTED, "Invalid price. Price is not aligned to tick size."
        if req.limit_price is not None and order.type not in (
            OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.JOIN_BID, OrderType.JOIN_ASK
        ):
            return ModifyOrderErrorCode.REJECTED, "Limit price cannot be set on this order type."
        if req.stop_price is not None and order.type not in (OrderType.STOP, OrderType.STOP_LIMIT):
            return ModifyOrderErrorCode.REJECTED, "Stop price cannot be set on this order type."
        if req.trail_price is not None:
            if order.type is not OrderType.TRAILING_STOP:
                return ModifyOrderErrorCode.REJECTED, "Trail price cannot be set on this order type."
            last = self.markets[order.contract.id].quote.last
            order.trail_ticks = int(abs(last - req.trail_price) / order.contract.tick_size + 1e-9)
            order.stop_price = self._trail_stop(order)
        if req.size is not None:
            order.size = req.size
        if req.limit_price is not None:
            order.limit_price = req.limit_price
        if req.stop_price is not None:
            order.stop_price = req.stop_price
        self._touch(order)
        if order.status is not OrderStatus.SUSPENDED:
            self._work(order)
        return ModifyOrderErrorCode.SUCCESS, None

    def cancel(self, account_id: int, order_id: int, user: str | None) -> Result:
        account = self.account_for(account_id, user)
        if account is None:
            return CancelOrderErrorCode.ACCOUNT_NOT_FOUND, None
        order = self.orders.get(order_id)
        if order is None or order.account_id != account.spec.id:
            return CancelOrderErrorCode.ORDER_NOT_FOUND, None
        if order.status.is_terminal:
            return CancelOrderErrorCode.REJECTED, "Order is not working."
        self._cancel(order)
        return CancelOrderErrorCode.SUCCESS, None

    def _cancel(self, order: Order) -> None:
        self._touch(order, OrderStatus.CANCELLED)
        for child_id in order.children:
            child = self.orders[child_id]
            if child.status is OrderStatus.SUSPENDED:
                self._touch(child, OrderStatus.CANCELLED)

    # --- Position/closeContract, Position/partialCloseContract -----------------------------------------------------
    def close(self, account_id: int, contract_id: str, size: int | None, user: str | None) -> Result:
        """Flatten (``size=None``) or reduce a position with a market order."""
        partial = size is not None
        codes: Any = PartialClosePositionErrorCode if partial else ClosePositionErrorCode
        account = self.account_for(account_id, user)
        if account is None:
            return codes.ACCOUNT_NOT_FOUND, "Account not found."
        contract = self.contracts.get(contract_id)
        if contract is None:
            return codes.CONTRACT_NOT_FOUND, "Contract not found."
        if not contract.active:
            return codes.CONTRACT_NOT_ACTIVE, "Contract is not active."
        position = self.positions.get((account_id, contract_id))
        if position is None or position.signed_size == 0:
            return codes.POSITION_NOT_FOUND, "Position not found."
        if size is not None and not 0 < size <= abs(position.signed_size):
            return PartialClosePositionErrorCode.INVALID_CLOSE_SIZE, "Invalid close size."
        if not self._market_open():
            return codes.ORDER_PENDING if partial else codes.ORDER_REJECTED, None
        if not account.can_trade:
            return codes.ACCOUNT_REJECTED, "Account is not allowed to trade."
        qty = abs(position.signed_size) if size is None else size
        side = OrderSide.ASK if position.signed_size > 0 else OrderSide.BID
        now = self._now()
        order = Order(self._new_order_id(), account_id, contract, now, now, OrderStatus.PENDING, OrderType.MARKET,
                      side, qty)
        self._add(order)
        self._emit_order(order)
        self._work(order)
        return codes.SUCCESS, None

    # --- matching -------------------------------------------------------------------------------------------------
    def _trail_stop(self, order: Order) -> float | None:
        if order.trail_ticks is None or order.extreme is None:
            return None
        distance = order.trail_ticks * order.contract.tick_size
        stop = order.extreme - distance if order.side is OrderSide.ASK else order.extreme + distance
        return round(stop, 10)

    def working_orders(self, account_id: int | None = None) -> list[Order]:
        """Open and Pending orders (of one account, or all), in placement order; O(orders not yet terminal)."""
        finished = [order_id for order_id, o in self._live.items() if o.status.is_terminal]
        for order_id in finished:
            del self._live[order_id]
        return [o for o in self._live.values() if o.status in (OrderStatus.OPEN, OrderStatus.PENDING)
                and (account_id is None or o.account_id == account_id)]

    def work_all(self) -> None:
        """Re-examine every working order against current prices (after a price step or when fills are due)."""
        for order in self.working_orders():
            self._work(order)

    def _work(self, order: Order) -> None:
        if order.status not in (OrderStatus.OPEN, OrderStatus.PENDING) or order.remaining <= 0:
            return
        if self._trio_now() < order.next_fill_at:
            return
        quote = self.markets[order.contract.id].quote
        buy = order.side is OrderSide.BID
        if order.type is OrderType.TRAILING_STOP and not order.triggered:
            assert order.extreme is not None
            order.extreme = max(order.extreme, quote.last) if not buy else min(order.extreme, quote.last)
            new_stop = self._trail_stop(order)
            if new_stop != order.stop_price:
                order.stop_price = new_stop
                self._touch(order)
        if order.type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP) and not order.triggered:
            assert order.stop_price is not None
            if (buy and quote.last >= order.stop_price) or (not buy and quote.last <= order.stop_price):
                order.triggered = True
            else:
                return
        price: float | None
        if order.type in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP):
            price = quote.ask if buy else quote.bid
        else:
            assert order.limit_price is not None
            if buy:
                price = min(order.limit_price, quote.ask) if quote.ask <= order.limit_price else None
            else:
                price = max(order.limit_price, quote.bid) if quote.bid >= order.limit_price else None
        if price is None:
            return
        parts = max(1, self.config.partial_fill_parts)
        chunk = order.remaining if parts == 1 else min(order.remaining, max(1, math.ceil(order.size / parts)))
        self._fill(order, chunk, price)
        if order.remaining > 0:
            order.next_fill_at = self._trio_now() + self.config.partial_fill_interval_s
            self.on_fill_due(order.next_fill_at)

    def _fill(self, order: Order, qty: int, price: float) -> None:
        now = self._now()
        previous = order.fill_volume
        order.fill_volume += qty
        prior_value = (order.filled_price or 0.0) * previous
        order.filled_price = round((prior_value + price * qty) / order.fill_volume, 10)
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.OPEN
        order.updated = now
        account = self.accounts[order.account_id]
        contract = order.contract
        pnl, position = self._apply_to_position(order, qty, price, now)
        fees = round(contract.fee_per_contract * qty, 2)
        self._next_trade_id += 1
        trade = HalfTradeModel(
            id=self._next_trade_id, account_id=order.account_id, contract_id=contract.id, creation_timestamp=now,
            price=price, profit_and_loss=pnl, fees=fees, side=order.side, size=qty, voided=False, order_id=order.id,
        )
        self.trades.append(trade)
        self._trades_by_account.setdefault(trade.account_id, []).append(trade)
        account.balance = round(account.balance + (pnl or 0.0) - fees, 2)
        self._emit("GatewayUserTrade", StreamAction.NEW, trade.wire(exclude_none=True), order.account_id)
        self._emit_order(order)
        if position.signed_size == 0:
            data = position.model().wire(exclude_none=True)
            data.update({"type": int(PositionType.UNDEFINED), "size": 0})
            self._emit("GatewayUserPosition", StreamAction.REMOVE, data, order.account_id)
        else:
            self._emit("GatewayUserPosition", StreamAction.UPDATE, position.model().wire(exclude_none=True),
                       order.account_id)
        self._emit_account(account)
        if order.status is OrderStatus.FILLED:
            self._on_filled(order)

    def _apply_to_position(self, order: Order, qty: int, price: float, now: datetime) -> tuple[float | None, Position]:
        key = (order.account_id, order.contract.id)
        signed = qty if order.side is OrderSide.BID else -qty
        position = self.positions.get(key)
        if position is None or position.signed_size == 0:
            self._next_position_id += 1
            position = Position(self._next_position_id, order.account_id, order.contract, now, signed, price)
            self.positions[key] = position
            return None, position
        if (position.signed_size > 0) == (signed > 0):
            total = position.signed_size + signed
            position.average_price = round(
                (position.average_price * abs(position.signed_size) + price * qty) / abs(total), 10
            )
            position.signed_size = total
            return None, position
        closed = min(qty, abs(position.signed_size))
        direction = 1 if position.signed_size > 0 else -1
        point_value = order.contract.tick_value / order.contract.tick_size
        pnl = round((price - position.average_price) * closed * direction * point_value, 2)
        remainder = qty - closed
        position.signed_size += signed if remainder == 0 else -position.signed_size
        if position.signed_size == 0:
            del self.positions[key]
            if remainder > 0:  # flipped: the rest opens a new position
                self._emit("GatewayUserPosition", StreamAction.REMOVE,
                           {**position.model().wire(exclude_none=True), "type": 0, "size": 0}, order.account_id)
                self._next_position_id += 1
                flipped = Position(self._next_position_id, order.account_id, order.contract, now,
                                   remainder if signed > 0 else -remainder, price)
                self.positions[key] = flipped
                return pnl, flipped
        return pnl, position

    def _on_filled(self, order: Order) -> None:
        if order.children:
            assert order.filled_price is not None
            for child_id in order.children:
                child = self.orders[child_id]
                if child.status is not OrderStatus.SUSPENDED:
                    continue
                bracket = order.stop_loss if child.leg == "-SL" else order.take_profit
                assert bracket is not None
                level = round(order.filled_price + bracket.ticks * order.contract.tick_size, 10)
                if child.type in (OrderType.LIMIT,):
                    child.limit_price = level
                else:
                    child.stop_price = level
                child.size = order.fill_volume
                self._touch(child, OrderStatus.OPEN)
                self._work(child)
        if order.parent_order_id is not None and order.linked_order_id is not None:
            sibling = self.orders.get(order.linked_order_id)
            if sibling is not None and not sibling.status.is_terminal:
                self._touch(sibling, OrderStatus.CANCELLED)

    # --- reads ----------------------------------------------------------------------------------------------------
    def positions_of(self, account_id: int) -> list[Position]:
        return [p for (acct, _), p in self.positions.items() if acct == account_id and p.signed_size != 0]

    def orders_of(self, account_id: int) -> list[Order]:
        """Every order of the account, in placement order."""
        return list(self._by_account.get(account_id, ()))

    def trades_of(self, account_id: int) -> list[HalfTradeModel]:
        """Every trade of the account, in execution order."""
        return list(self._trades_by_account.get(account_id, ()))
