"""A scripted trader: a seeded REST client of the simulated Gateway that keeps orders, trades and P&L flowing and now
and then deliberately breaks a risk rule, for the ``run --simulate`` demo and for soak tests.

Why a separate client and not the simulator poking its own book: the engine must see exactly what it would see when
a human trades the account from another front end (orders it did not place, fills, positions, P&L), and faults
injected on REST hit this client too. So the trader logs in over ``Auth/loginKey`` and trades over the public
endpoints through any httpx transport (the in-process :class:`~simulator.transport.SimulatorTransport` or a real
base URL). The one exception is the loss streak, which steers prices with the simulator's ``/_sim/price`` control
endpoint so that a loss past the daily limit is certain (``steer_prices=False`` turns that off).

Rules it keeps:
- It never crashes on a fault: a 429, a 5xx, a lost response, a timeout, an outage or a revoked token is logged,
  counted in :class:`TraderStats` and the script carries on (with a growing pause while requests keep failing).
- It never exceeds the Gateway's rate windows by itself: every request (logins, reads and ``/_sim`` calls included)
  first takes a slot in its own sliding window of ``max_requests_per_min`` (default 60, well under 200/60 s). The
  simulator keys its windows per user, and the trader logs in as the engine's user, so the engine's limiter must
  leave that much headroom.
- Everything is on the Trio clock and drawn from one seeded RNG, so under a MockClock a run is reproducible.
- It never logs the API key or a token.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType

log = logging.getLogger(__name__)

BREACH_KINDS = ("max_contracts", "loss_streak", "trade_burst", "off_session")
"""``max_contracts``: one oversized market order. ``loss_streak``: losing round trips past a daily loss limit.
``trade_burst``: many quick round trips (too many trades). ``off_session``: an order while ``session_open()`` is
False (only chosen when a ``session_open`` predicate is given)."""

DEFAULT_CONTRACTS = ("CON.F.US.MES.Z26", "CON.F.US.EP.Z26", "CON.F.US.MNQ.Z26")

Json = dict[str, Any]


@dataclass(slots=True)
class TraderStats:
    """What the trader did and suffered (read it any time; it only grows)."""

    steps: int = 0
    requests: int = 0
    orders_placed: int = 0
    """Order/place calls answered with success."""
    orders_rejected: int = 0
    """Mutations answered ``success: false`` (e.g. a lockout's account violation, an order no longer working)."""
    modified: int = 0
    cancelled: int = 0
    closes: int = 0
    errors: int = 0
    """Requests without a usable answer: transport errors, timeouts, 5xx, unexpected statuses or bodies."""
    rate_limited: int = 0
    """429 answers received (injected or real)."""
    relogins: int = 0
    breaches_attempted: int = 0
    breaches: dict[str, int] = field(default_factory=dict)


class RequestBudget:
    """At most ``limit`` requests in any ``window_s`` seconds of the Trio clock (a sliding window, FIFO)."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1:
            raise ValueError(f"request budget limit must be >= 1, got {limit}")
        if not window_s > 0:
            raise ValueError(f"request budget window_s must be > 0, got {window_s}")
        self.limit, self.window_s = limit, window_s
        self._stamps: deque[float] = deque()
        self._lock = trio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = trio.current_time()
                while self._stamps and self._stamps[0] + self.window_s <= now:  # same sum as the sleep below
                    self._stamps.popleft()
                if len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                await trio.sleep_until(self._stamps[0] + self.window_s)


class _CredentialsRefused(Exception):
    """Auth/loginKey said the user name or API key is wrong: a configuration error, not a fault."""


@dataclass(frozen=True, slots=True)
class _Spec:
    tick_size: float
    tick_value: float


class ScriptedTrader:
    """See the module docstring. Build it, then ``await nursery.start(trader.run)``; cancel to stop."""

    def __init__(
        self,
        target: str | httpx.AsyncBaseTransport,
        *,
        username: str,
        api_key: str,
        accounts: Sequence[int],
        contracts: Sequence[str] = DEFAULT_CONTRACTS,
        seed: int = 0,
        pace_per_min: float = 20.0,
        breach_every: int | None = 30,
        breach_kinds: Collection[str] = BREACH_KINDS,
        max_position: int = 4,
        max_working: int = 6,
        oversize: int = 12,
        loss_usd: float = 1_500.0,
        burst_trades: int = 12,
        steer_prices: bool = True,
        session_open: Callable[[], bool] | None = None,
        max_requests_per_min: int = 60,
        request_timeout_s: float = 10.0,
    ) -> None:
        """``target``: a base URL (``http://127.0.0.1:8700``) or an httpx transport to the simulator's app.
        ``pace_per_min``: trading steps (about one order action each) per minute. ``breach_every``: on average one
        deliberate breach per this many steps (None: never). ``max_position``/``max_working``: the bounds of normal
        trading per account and contract / per account. ``oversize``, ``loss_usd`` and ``burst_trades`` size the
        breaches (contracts of one order; total loss of a streak; filled orders of a burst)."""
        if not accounts:
            raise ValueError("accounts must name at least one account id to trade")
        if not contracts:
            raise ValueError("contracts must name at least one contract id to trade")
        if not username:
            raise ValueError("username must not be empty")
        if not api_key:
            raise ValueError("api_key must not be empty")
        if not (math.isfinite(pace_per_min) and pace_per_min > 0):
            raise ValueError(f"pace_per_min must be a positive number, got {pace_per_min}")
        if max_requests_per_min < 1:
            raise ValueError(f"max_requests_per_min must be >= 1, got {max_requests_per_min}")
        if pace_per_min > max_requests_per_min:
            raise ValueError(f"pace_per_min ({pace_per_min}) must not exceed max_requests_per_min "
                             f"({max_requests_per_min}): every step takes at least one request")
        if breach_every is not None and breach_every < 1:
            raise ValueError(f"breach_every must be >= 1 or None, got {breach_every}")
        unknown = sorted(set(breach_kinds) - set(BREACH_KINDS))
        if unknown:
            raise ValueError(f"unknown breach kind {unknown[0]!r}; known: {', '.join(BREACH_KINDS)}")
        for name, value in (("max_position", max_position), ("max_working", max_working), ("oversize", oversize),
                            ("burst_trades", burst_trades)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not loss_usd > 0:
            raise ValueError(f"loss_usd must be > 0, got {loss_usd}")
        if not request_timeout_s > 0:
            raise ValueError(f"request_timeout_s must be > 0, got {request_timeout_s}")
        self._target = target
        self.username = username
        self._api_key = api_key
        self.accounts = tuple(accounts)
        self.contracts = tuple(contracts)
        self.seed = seed
        self.pace_per_min = float(pace_per_min)
        self.breach_every = breach_every
        self.breach_kinds = tuple(k for k in BREACH_KINDS if k in set(breach_kinds))
        self.max_position = max_position
        self.max_working = max_working
        self.oversize = oversize
        self.loss_usd = float(loss_usd)
        self.burst_trades = burst_trades
        self.steer_prices = steer_prices
        self.session_open = session_open
        self.request_timeout_s = request_timeout_s
        self.budget = RequestBudget(max_requests_per_min, 60.0)
        self.stats = TraderStats()
        self._rng = random.Random(f"trader:{seed}")
        self._client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._failures = 0
        """Consecutive requests without an answer (drives the pause between steps)."""
        self._specs: dict[str, _Spec] = {}
        self._prices: dict[str, tuple[float, float]] = {}
        """contract id -> (price, Trio time learned)."""
        self._tag_seq = 0

    def __repr__(self) -> str:
        return f"ScriptedTrader(user={self.username!r}, accounts={self.accounts}, seed={self.seed})"

    # ------------------------------------------------------------------------------------------------ running
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Trade until cancelled. Reports started at once (before the first login, which may wait out an outage).
        Returns (without raising) only if the credentials are refused."""
        async with self._open_client() as client:
            self._client = client
            task_status.started()
            try:
                while True:
                    await self._ensure_login()
                    await self._guarded_step()
                    await trio.sleep(self._pause())
            except _CredentialsRefused:
                log.error("scripted trader stopped: Auth/loginKey refused user %r (check the trader's API key)",
                          self.username)
            finally:
                self._client = None

    def _open_client(self) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        timeout = httpx.Timeout(self.request_timeout_s)
        if isinstance(self._target, str):
            return httpx.AsyncClient(base_url=self._target, timeout=timeout)
        return httpx.AsyncClient(transport=self._target, base_url="http://simulator", timeout=timeout)

    def _pause(self) -> float:
        mean = 60.0 / self.pace_per_min
        pause = mean * self._rng.uniform(0.5, 1.5)
        if self._failures:
            pause += min(30.0, 0.5 * 2 ** min(self._failures, 8))
        return pause

    async def _guarded_step(self) -> None:
        self.stats.steps += 1
        try:
            await self.step()
        except (_CredentialsRefused, trio.Cancelled):
            raise
        except Exception:
            self.stats.errors += 1
            log.exception("scripted trader: step failed; carrying on")

    async def step(self) -> None:
        """One move of the script: a deliberate breach now and then, otherwise one ordinary order action."""
        if self.breach_every is not None and self._rng.random() < 1.0 / self.breach_every:
            kinds = [k for k in self.breach_kinds if k != "off_session" or self._off_session()]
            if kinds:
                await self.breach(self._rng.choice(kinds))
                return
        account, contract = self._rng.choice(self.accounts), self._rng.choice(self.contracts)
        if self._off_session():
            if self._rng.random() < 0.5:
                await self._cancel_some(account)
            return
        roll = self._rng.random()
        if roll < 0.30:
            await self._trade_market(account, contract)
        elif roll < 0.48:
            await self._place_resting(account, contract, OrderType.LIMIT)
        elif roll < 0.58:
            await self._place_resting(account, contract, OrderType.STOP)
        elif roll < 0.72:
            await self._modify_some(account)
        elif roll < 0.84:
            await self._cancel_some(account)
        else:
            await self._close_some(account)

    def _off_session(self) -> bool:
        return self.session_open is not None and not self.session_open()

    # ------------------------------------------------------------------------------------------------ HTTP
    async def _ensure_login(self) -> None:
        delay = 1.0
        while self._token is None:
            if await self._login():
                return
            await trio.sleep(delay)
            delay = min(60.0, delay * 2)

    async def _login(self) -> bool:
        answer = await self._send("/api/Auth/loginKey", {"userName": self.username, "apiKey": self._api_key},
                                  auth=False)
        if answer is None:
            return False
        token = answer.get("token")
        if answer.get("success") and isinstance(token, str) and token:
            self._token = token
            return True
        log.warning("scripted trader: login refused (errorCode %s)", answer.get("errorCode"))
        raise _CredentialsRefused()  # loginKey answers success:false only to wrong credentials

    async def _send(self, path: str, body: Json, *, auth: bool = True, relogged: bool = False) -> Json | None:
        """POST ``body``; the parsed JSON object of a 200 answer, or None (counted and logged)."""
        assert self._client is not None, "ScriptedTrader.run() is not running"
        await self.budget.acquire()
        self.stats.requests += 1
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        response: httpx.Response | None = None
        with trio.move_on_after(self.request_timeout_s):
            try:
                response = await self._client.post(path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                return self._failed(path, type(exc).__name__)
        if response is None:
            return self._failed(path, f"no answer within {self.request_timeout_s:g} s")
        status = response.status_code
        if status == 401 and auth:
            self._token = None
            if relogged:
                return self._failed(path, "401 after a fresh login")
            self.stats.relogins += 1
            log.info("scripted trader: 401 on %s, logging in again", path)
            if not await self._login():
                return self._failed(path, "re-login failed")
            return await self._send(path, body, auth=auth, relogged=True)
        if status == 429:
            self.stats.rate_limited += 1
            retry_after = _retry_after(response)
            log.warning("scripted trader: 429 on %s; pausing %.0f s", path, retry_after)
            self._failures += 1
            await trio.sleep(retry_after)
            return None
        if status != 200:
            return self._failed(path, f"HTTP {status}")
        try:
            data = response.json()
        except ValueError:
            return self._failed(path, "a body that is not JSON")
        if not isinstance(data, dict):
            return self._failed(path, "a JSON body that is not an object")
        self._failures = 0
        return data

    def _failed(self, path: str, why: str) -> Json | None:
        """Count and log a request without a usable answer; always None (the caller returns it)."""
        self.stats.errors += 1
        self._failures += 1
        log.info("scripted trader: %s failed (%s); carrying on", path, why)
        return None

    async def _api(self, endpoint: str, body: Json, *, mutation: bool = False) -> Json | None:
        """An ``/api/...`` call; for a mutation answered ``success: false`` counts a rejection (and returns it)."""
        answer = await self._send(f"/api/{endpoint}", body)
        if answer is not None and mutation and not answer.get("success"):
            self.stats.orders_rejected += 1
            log.info("scripted trader: %s rejected (errorCode %s: %s)", endpoint, answer.get("errorCode"),
                     answer.get("errorMessage"))
        return answer

    # ------------------------------------------------------------------------------------------------ reads
    async def _positions(self, account: int) -> list[Json] | None:
        answer = await self._api("Position/searchOpen", {"accountId": account})
        if answer is None or not answer.get("success"):
            return None
        positions = [p for p in answer.get("positions") or [] if isinstance(p, dict)]
        for p in positions:
            self._learn(str(p.get("contractId")), p.get("averagePrice"), weak=True)
        return positions

    async def _working(self, account: int) -> list[Json] | None:
        answer = await self._api("Order/searchOpen", {"accountId": account})
        if answer is None or not answer.get("success"):
            return None
        return [o for o in answer.get("orders") or [] if isinstance(o, dict)]

    async def _spec(self, contract: str) -> _Spec | None:
        spec = self._specs.get(contract)
        if spec is not None:
            return spec
        answer = await self._api("Contract/searchById", {"contractId": contract})
        found = answer.get("contract") if answer is not None and answer.get("success") else None
        if not isinstance(found, dict):
            return None
        try:
            spec = _Spec(float(found["tickSize"]), float(found["tickValue"]))
        except (KeyError, TypeError, ValueError):
            return None
        self._specs[contract] = spec
        return spec

    def _learn(self, contract: str, price: Any, *, weak: bool = False) -> None:
        if not isinstance(price, int | float) or not price > 0:
            return
        held = self._prices.get(contract)
        if weak and held is not None and trio.current_time() - held[1] < 120.0:
            return  # an average entry price is only a fallback reference
        self._prices[contract] = (float(price), trio.current_time())

    def _price(self, contract: str) -> float | None:
        held = self._prices.get(contract)
        return None if held is None else held[0]

    async def _learn_fill(self, account: int, order_id: Any) -> float | None:
        if not isinstance(order_id, int):
            return None
        answer = await self._api("Order/searchById", {"accountId": account, "orderId": order_id})
        order = answer.get("order") if answer is not None and answer.get("success") else None
        if not isinstance(order, dict):
            return None
        price = order.get("filledPrice")
        self._learn(str(order.get("contractId")), price)
        return float(price) if isinstance(price, int | float) else None

    # ------------------------------------------------------------------------------------------------ mutations
    def _tag(self) -> str:
        self._tag_seq += 1
        return f"trader-{self.seed}-{self._tag_seq}"

    async def _place(self, account: int, contract: str, order_type: OrderType, side: OrderSide, size: int,
                     **prices: float) -> Json | None:
        body: Json = {"accountId": account, "contractId": contract, "type": int(order_type), "side": int(side),
                      "size": size, "customTag": self._tag(), **prices}
        answer = await self._api("Order/place", body, mutation=True)
        if answer is not None and answer.get("success"):
            self.stats.orders_placed += 1
        return answer

    async def _market(self, account: int, contract: str, side: OrderSide, size: int, *,
                      learn: bool = False) -> float | None:
        """A market order; with ``learn`` (or no fresh reference price) looks up its fill price."""
        answer = await self._place(account, contract, OrderType.MARKET, side, size)
        if answer is None or not answer.get("success"):
            return None
        held = self._prices.get(contract)
        if learn or held is None or trio.current_time() - held[1] > 60.0:
            return await self._learn_fill(account, answer.get("orderId"))
        return None

    async def _close(self, account: int, contract: str, size: int | None = None) -> bool:
        if size is None:
            answer = await self._api("Position/closeContract", {"accountId": account, "contractId": contract},
                                     mutation=True)
        else:
            answer = await self._api("Position/partialCloseContract",
                                     {"accountId": account, "contractId": contract, "size": size}, mutation=True)
        ok = answer is not None and bool(answer.get("success"))
        self.stats.closes += int(ok)
        return ok

    # ------------------------------------------------------------------------------------------------ actions
    async def _trade_market(self, account: int, contract: str) -> None:
        positions = await self._positions(account)
        if positions is None:
            return
        net = sum(_signed(p) for p in positions if p.get("contractId") == contract)
        size = self._rng.randint(1, 2)
        side = self._rng.choice((OrderSide.BID, OrderSide.ASK))
        delta = size if side is OrderSide.BID else -size
        if abs(net + delta) > self.max_position:
            if abs(net) >= self.max_position:
                await self._close(account, contract)
                return
            side = OrderSide.ASK if net > 0 else OrderSide.BID
        await self._market(account, contract, side, size)

    async def _place_resting(self, account: int, contract: str, order_type: OrderType) -> None:
        spec = await self._spec(contract)
        price = self._price(contract)
        if spec is None or price is None:
            await self._trade_market(account, contract)  # learn where the market is first
            return
        working = await self._working(account)
        if working is None:
            return
        if len(working) >= self.max_working:
            await self._cancel_one(account, working)
            return
        side = self._rng.choice((OrderSide.BID, OrderSide.ASK))
        away = self._rng.randint(2, 12) * spec.tick_size
        if order_type is OrderType.LIMIT:  # a resting limit: below the market to buy, above to sell
            level = price - away if side is OrderSide.BID else price + away
            await self._place(account, contract, order_type, side, 1, limitPrice=_align(level, spec.tick_size))
        else:  # a stop: above the market to buy, below to sell
            level = price + away if side is OrderSide.BID else price - away
            await self._place(account, contract, order_type, side, 1, stopPrice=_align(level, spec.tick_size))

    async def _modify_some(self, account: int) -> None:
        working = await self._working(account)
        if not working:
            return
        candidates = [o for o in working if o.get("type") in (OrderType.LIMIT, OrderType.STOP)
                      and o.get("status") == OrderStatus.OPEN]
        if not candidates:
            return
        order = self._rng.choice(candidates)
        spec = await self._spec(str(order.get("contractId")))
        if spec is None:
            return
        key = "limitPrice" if order.get("type") == OrderType.LIMIT else "stopPrice"
        current = order.get(key)
        if not isinstance(current, int | float):
            return
        moved = current + self._rng.choice((-1, 1)) * self._rng.randint(1, 3) * spec.tick_size
        if moved <= 0:
            return
        answer = await self._api("Order/modify", {"accountId": account, "orderId": order.get("id"),
                                                  key: _align(moved, spec.tick_size)}, mutation=True)
        self.stats.modified += int(answer is not None and bool(answer.get("success")))

    async def _cancel_some(self, account: int) -> None:
        working = await self._working(account)
        if working:
            await self._cancel_one(account, working)

    async def _cancel_one(self, account: int, working: list[Json]) -> None:
        order = self._rng.choice(working)
        answer = await self._api("Order/cancel", {"accountId": account, "orderId": order.get("id")}, mutation=True)
        self.stats.cancelled += int(answer is not None and bool(answer.get("success")))

    async def _close_some(self, account: int) -> None:
        positions = await self._positions(account)
        if not positions:
            return
        position = self._rng.choice(positions)
        contract, size = str(position.get("contractId")), position.get("size")
        if isinstance(size, int) and size > 1 and self._rng.random() < 0.4:
            await self._close(account, contract, 1)
        else:
            await self._close(account, contract)

    # ------------------------------------------------------------------------------------------------ breaches
    async def breach(self, kind: str) -> None:
        """Deliberately break one risk rule now (see :data:`BREACH_KINDS`)."""
        scripts: dict[str, Callable[[int, str], Awaitable[None]]] = {
            "max_contracts": self._breach_max_contracts,
            "loss_streak": self._breach_loss_streak,
            "trade_burst": self._breach_trade_burst,
            "off_session": self._breach_off_session,
        }
        if kind not in scripts:
            raise ValueError(f"unknown breach kind {kind!r}; known: {', '.join(BREACH_KINDS)}")
        account, contract = self._rng.choice(self.accounts), self._rng.choice(self.contracts)
        self.stats.breaches_attempted += 1
        self.stats.breaches[kind] = self.stats.breaches.get(kind, 0) + 1
        log.info("scripted trader: breaking a rule on purpose: %s on account %s (%s)", kind, account, contract)
        await scripts[kind](account, contract)

    async def _breach_max_contracts(self, account: int, contract: str) -> None:
        await self._market(account, contract, self._rng.choice((OrderSide.BID, OrderSide.ASK)), self.oversize)

    async def _breach_trade_burst(self, account: int, contract: str) -> None:
        side = self._rng.choice((OrderSide.BID, OrderSide.ASK))
        for i in range(self.burst_trades):
            leg = side if i % 2 == 0 else _opposite(side)
            await self._market(account, contract, leg, 1)

    async def _breach_off_session(self, account: int, contract: str) -> None:
        await self._market(account, contract, self._rng.choice((OrderSide.BID, OrderSide.ASK)), 1)

    async def _breach_loss_streak(self, account: int, contract: str) -> None:
        """Three losing round trips adding up to ``loss_usd`` (with ``steer_prices``: the price is moved against
        each position through ``/_sim/price`` before it is closed; without: each trip loses the spread and fees)."""
        spec = await self._spec(contract)
        if spec is None:
            return
        legs, size = 3, 2
        ticks = max(1, math.ceil(self.loss_usd / legs / (spec.tick_value * size)))
        for _ in range(legs):
            side = self._rng.choice((OrderSide.BID, OrderSide.ASK))
            entry = await self._market(account, contract, side, size, learn=True)
            if entry is None:
                continue
            if self.steer_prices:
                adverse = entry - ticks * spec.tick_size if side is OrderSide.BID else entry + ticks * spec.tick_size
                if adverse > 0:
                    await self._steer(contract, _align(adverse, spec.tick_size))
            await self._close(account, contract)

    async def _steer(self, contract: str, price: float) -> None:
        answer = await self._send("/_sim/price", {"contractId": contract, "price": price}, auth=False)
        if answer is not None:
            self._learn(contract, answer.get("price"))


def _signed(position: Json) -> int:
    size = position.get("size")
    if not isinstance(size, int):
        return 0
    return -size if position.get("type") == PositionType.SHORT else size


def _opposite(side: OrderSide) -> OrderSide:
    return OrderSide.ASK if side is OrderSide.BID else OrderSide.BID


def _align(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


def _retry_after(response: httpx.Response) -> float:
    try:
        value = float(response.headers.get("retry-after", "1"))
    except ValueError:
        value = 1.0
    return min(60.0, max(1.0, value)) if math.isfinite(value) else 1.0
