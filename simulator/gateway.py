"""The simulated Gateway: the one authoritative truth that REST, the hubs and ``/_sim/state`` all read.

It composes the pieces (tokens, fault injector, price processes, trading book, event bus) and runs their background
work (price steps, working orders triggering and filling, fault schedules) on the Trio clock. Every change is
published on :attr:`bus` as a :class:`~simulator.bus.HubEvent` shaped exactly as it goes on the wire, so the hubs are
a thin filter-and-send layer.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from engine.protocol.enums import DomType, OrderSide, OrderStatus, OrderType, StreamAction, TradeLogType
from engine.protocol.models import HalfTradeModel, OrderModel, format_timestamp
from engine.protocol.timebase import WallClock
from simulator.book import Book
from simulator.bus import EventBus, HubEvent
from simulator.config import SimConfig
from simulator.faults import EXPIRE_TOKENS, REVOKE_TOKENS, FaultInjector
from simulator.market import PriceProcess, cme_is_open
from simulator.tokens import TokenService

log = logging.getLogger(__name__)


class SimulatedGateway:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config if config is not None else SimConfig()
        self.clock = WallClock(self.config.epoch)
        self.bus = EventBus()
        self.faults = FaultInjector(self.config.seed, self.clock)
        self.tokens = TokenService(self.clock, self.config.jwt_secret, self.config.token_ttl_s)
        self.markets = {c.id: PriceProcess(c, self.config.seed) for c in self.config.contracts}
        self.book = Book(self.config, self.markets, self.clock.now, trio.current_time, self.bus.publish,
                         self.market_open)
        self.book.on_fill_due = self._fill_due
        self._wakeup = trio.Event()
        self._next_due = math.inf
        self._burst_seq = 0

    # --- time and sessions ----------------------------------------------------------------------------------------
    def market_open(self) -> bool:
        return self.config.sessions == "24x7" or cme_is_open(self.clock.now())

    def _fill_due(self, when: float) -> None:
        if when < self._next_due:
            self._next_due = when
            self._wakeup.set()

    def apply_token_faults(self) -> None:
        """Consume armed token faults (called per REST request and on every tick)."""
        if self.faults.take(EXPIRE_TOKENS) is not None:
            self.tokens.expire_all()
        if self.faults.take(REVOKE_TOKENS) is not None:
            self.tokens.revoke_all()

    # --- background work ------------------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Price steps, fills and fault schedules until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.faults.run_profile, self.config.fault_profile)
            task_status.started()
            next_tick = trio.current_time() + self.config.tick_interval_s
            while True:
                with trio.move_on_at(min(next_tick, self._next_due)):
                    await self._wakeup.wait()
                self._wakeup = trio.Event()
                now = trio.current_time()
                self.apply_token_faults()
                if now >= next_tick:
                    next_tick = now + self.config.tick_interval_s
                    if self.market_open():
                        self.step_market()
                self._next_due = math.inf
                self.book.work_all()
                due = [o.next_fill_at for o in self.book.working_orders() if o.next_fill_at > now]
                if due:
                    self._next_due = min(due)

    def step_market(self) -> None:
        """One price step for every active contract, published as quote, tape and depth."""
        publish = self.config.publish_market_data and self.bus.subscriber_count > 0
        for contract_id, process in self.markets.items():
            if not process.spec.active:
                continue
            previous = process.quote.last
            price, volume = process.step()
            if publish:
                self._publish_market(contract_id, process, price, volume, price >= previous)

    def set_price(self, contract_id: str, price: float) -> None:
        """Test control: move a contract's price and let working orders react at once."""
        process = self.markets[contract_id]
        process.set_price(price)
        self._publish_market(contract_id, process, process.quote.last, 1, True)
        self.book.work_all()

    def _publish_market(self, contract_id: str, process: PriceProcess, price: float, volume: int, up: bool) -> None:
        spec, q = process.spec, process.quote
        stamp = format_timestamp(self.clock.now())
        quote = {
            "symbol": spec.symbol_id, "symbolName": spec.name, "lastPrice": q.last, "bestBid": q.bid,
            "bestAsk": q.ask, "change": round(q.last - q.open, 10),
            "changePercent": round((q.last - q.open) / q.open * 100, 4) if q.open else 0.0,
            "open": q.open, "high": q.high, "low": q.low, "volume": q.volume, "lastUpdated": stamp,
            "timestamp": stamp,
        }
        self.bus.publish(HubEvent("market", "GatewayQuote", (contract_id, quote), contract_id=contract_id))
        trade = {"symbolId": spec.symbol_id, "price": price, "timestamp": stamp,
                 "type": int(TradeLogType.BUY if up else TradeLogType.SELL), "volume": volume}
        self.bus.publish(HubEvent("market", "GatewayTrade", (contract_id, [trade]), contract_id=contract_id))
        depth = [
            {"timestamp": stamp, "type": int(DomType.BEST_BID), "price": q.bid, "volume": 10, "currentVolume": 10},
            {"timestamp": stamp, "type": int(DomType.BEST_ASK), "price": q.ask, "volume": 12, "currentVolume": 12},
        ]
        for level in range(1, 4):
            depth.append({"timestamp": stamp, "type": int(DomType.BID), "price": round(q.bid - level * spec.tick_size,
                          10), "volume": 10 + level, "currentVolume": 10 + level})
            depth.append({"timestamp": stamp, "type": int(DomType.ASK), "price": round(q.ask + level * spec.tick_size,
                          10), "volume": 12 + level, "currentVolume": 12 + level})
        self.bus.publish(HubEvent("market", "GatewayDepth", (contract_id, depth), contract_id=contract_id))

    # --- views ----------------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The ``/_sim/state`` body: accounts, orders (bracket children included), positions, trades."""
        book = self.book
        return {
            "time": format_timestamp(self.clock.now()),
            "accounts": [a.model().wire() for a in book.accounts.values()],
            "orders": [o.model().wire() for o in book.orders.values()],
            "positions": [p.model().wire() for p in book.positions.values() if p.signed_size != 0],
            "trades": [t.wire() for t in book.trades],
            "prices": {cid: m.quote.last for cid, m in self.markets.items()},
            "faults": self.faults.armed(),
        }

    def burst(self, account_id: int, n: int) -> None:
        """Publish ``n`` realistic user-hub events for ``account_id`` (benchmarks); the book is not changed."""
        contract = self.config.contracts[0]
        now = self.clock.now()
        for _ in range(n):
            self._burst_seq += 1
            seq = self._burst_seq
            if seq % 4 == 0:
                trade = HalfTradeModel(
                    id=10_000_000 + seq, account_id=account_id, contract_id=contract.id, creation_timestamp=now,
                    price=contract.start_price, fees=contract.fee_per_contract, side=OrderSide.BID, size=1,
                    order_id=20_000_000 + seq,
                )
                target, action, data = "GatewayUserTrade", StreamAction.NEW, trade.wire(exclude_none=True)
            else:
                order = OrderModel(
                    id=20_000_000 + seq, account_id=account_id, contract_id=contract.id,
                    symbol_id=contract.symbol_id, creation_timestamp=now, update_timestamp=now,
                    status=OrderStatus.OPEN, type=OrderType.LIMIT, side=OrderSide.BID, size=1,
                    limit_price=contract.start_price - contract.tick_size * (seq % 50), fill_volume=0,
                    custom_tag=f"burst-{seq}",
                )
                target, action, data = "GatewayUserOrder", StreamAction.UPDATE, order.wire(exclude_none=True)
            self.bus.publish(HubEvent("user", target, ({"action": int(action), "data": data},),
                                      account_id=account_id))
