"""Market side of the simulator: a seeded price process per contract, synthetic bar history, trading sessions.

The price process is a cheap mean-reverting random walk in whole ticks, advanced one step per
``tick_interval_s`` on the Trio clock by the gateway's run loop; it is the only thing orders match against, so
fills, stops and brackets behave consistently with the quotes the market hub publishes. Bars are synthetic but
deterministic (a hash of contract and bar start), so History/retrieveBars answers the same window the same way.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from simulator.config import ContractSpec

CHICAGO = ZoneInfo("America/Chicago")


@dataclass(slots=True)
class Quote:
    last: float
    bid: float
    ask: float
    open: float
    high: float
    low: float
    volume: int


class PriceProcess:
    """One contract's price: ``step()`` moves it by a few ticks, biased back toward the start price."""

    def __init__(self, spec: ContractSpec, seed: int) -> None:
        self.spec = spec
        self._rng = random.Random(f"price:{spec.id}:{seed}")
        self._anchor_ticks = round(spec.start_price / spec.tick_size)
        self._ticks = self._anchor_ticks
        price = self.price
        self.quote = Quote(price, price, self._round(price + spec.tick_size), price, price, price, 0)

    def _round(self, price: float) -> float:
        return round(round(price / self.spec.tick_size) * self.spec.tick_size, 10)

    @property
    def price(self) -> float:
        return self._round(self._ticks * self.spec.tick_size)

    def step(self) -> tuple[float, int]:
        """Advance one step; returns (trade price, trade volume)."""
        drift = (self._anchor_ticks - self._ticks) * 0.002
        move = round(self._rng.gauss(drift, 1.5))
        self._ticks = max(1, self._ticks + move)
        volume = self._rng.randint(1, 25)
        self._apply(self.price, volume)
        return self.price, volume

    def set_price(self, price: float) -> None:
        """Test control: jump to ``price`` (rounded to the tick)."""
        self._ticks = max(1, round(price / self.spec.tick_size))
        self._apply(self.price, 1)

    def _apply(self, price: float, volume: int) -> None:
        q = self.quote
        q.last = price
        q.bid = price
        q.ask = self._round(price + self.spec.tick_size)
        q.high = max(q.high, price)
        q.low = min(q.low, price)
        q.volume += volume


def _unit_delta(unit: int, number: int) -> timedelta | None:
    seconds = {1: 1, 2: 60, 3: 3600, 4: 86400, 5: 7 * 86400}.get(unit)
    if seconds is not None:
        return timedelta(seconds=seconds * number)
    if unit == 6:
        return timedelta(days=30 * number)
    return None


def synthetic_bars(
    spec: ContractSpec,
    seed: int,
    start: datetime,
    end: datetime,
    now: datetime,
    unit: int,
    unit_number: int,
    limit: int,
    include_partial: bool,
) -> list[dict[str, object]]:
    """Bars between ``start`` and ``end`` (capped at ``now``), newest first, at most ``limit`` (the most recent)."""
    delta = _unit_delta(unit, unit_number)
    assert delta is not None
    step = delta.total_seconds()
    end = min(end, now)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    first = int((start - epoch).total_seconds() // step)
    last = int((end - epoch).total_seconds() // step)
    bars: list[dict[str, object]] = []
    index = last
    while index >= first and len(bars) < limit:
        bar_start = epoch + timedelta(seconds=index * step)
        bar_end = bar_start + delta
        if bar_start < start:
            break
        if bar_end > now and not include_partial:
            index -= 1
            continue
        if bar_start < end:
            bars.append(_bar(spec, seed, bar_start, index))
        index -= 1
    return bars


def _bar(spec: ContractSpec, seed: int, bar_start: datetime, index: int) -> dict[str, object]:
    digest = hashlib.blake2b(f"{seed}:{spec.id}:{index}".encode(), digest_size=16).digest()
    r = [b / 255.0 for b in digest]
    tick = spec.tick_size
    base_ticks = round(spec.start_price / tick)
    open_ticks = base_ticks + int((r[0] - 0.5) * 200)
    close_ticks = open_ticks + int((r[1] - 0.5) * 20)
    high_ticks = max(open_ticks, close_ticks) + int(r[2] * 8)
    low_ticks = min(open_ticks, close_ticks) - int(r[3] * 8)

    def price(ticks: int) -> float:
        return round(ticks * tick, 10)

    return {
        "t": bar_start,
        "o": price(open_ticks),
        "h": price(high_ticks),
        "l": price(low_ticks),
        "c": price(close_ticks),
        "v": 1 + int(r[4] * 5000),
    }


def cme_is_open(instant: datetime) -> bool:
    """CME Globex equity/energy/metals hours: Sunday 17:00 to Friday 16:00 Chicago time, halted 16:00-17:00 daily."""
    local = instant.astimezone(CHICAGO)
    weekday = local.weekday()  # Monday 0 .. Sunday 6
    t = local.time()
    if weekday == 5:
        return False
    if weekday == 6:
        return t >= time(17, 0)
    if weekday == 4:
        return t < time(16, 0)
    return not time(16, 0) <= t < time(17, 0)
