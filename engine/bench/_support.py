"""Shared helpers of the event-path benchmarks (``events``, ``reconnect``, ``memory``): realistic event mixes, SignalR
frames, percentiles, resident memory and the machine the figures came from.

Why one generator for every benchmark: the throughput and memory figures are only comparable (and only mean
something) when they are measured on the same kind of traffic. :func:`user_event_mix` plays whole order lifecycles
over a bounded set of working orders per account (new, modified, cancelled, filled; each fill followed by its trade
with a unique id, the position update (size 0 when flat) and the account's balance), so the mirror does its real
work: working set updates, terminal orders retired into its bounded memory, trades deduplicated by id, positions
opened and closed. Payloads are built as wire dicts (camelCase, enum ints, ISO timestamps), exactly what the
simulator's hub puts on the wire, without pydantic, so generating a million events stays cheap.

Deterministic: the same ``seed`` gives the same events in every process (the simulator subprocess and the engine
side of a benchmark generate the same stream independently).
"""

from __future__ import annotations

import os
import platform
import random
import resource
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.protocol.signalr import Invocation, encode

EPOCH = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS: tuple[int, ...] = (1001, 1002, 1003, 1004)
"""The simulator's default accounts (all owned by its default user)."""
CONTRACTS: tuple[tuple[str, str, float, float], ...] = (
    ("CON.F.US.EP.Z26", "F.US.EP", 6350.0, 0.25),
    ("CON.F.US.ENQ.Z26", "F.US.ENQ", 23100.0, 0.25),
    ("CON.F.US.MES.Z26", "F.US.MES", 6350.0, 0.25),
    ("CON.F.US.MNQ.Z26", "F.US.MNQ", 23100.0, 0.25),
)

ORDER, TRADE, POSITION, ACCOUNT, QUOTE = (
    "GatewayUserOrder", "GatewayUserTrade", "GatewayUserPosition", "GatewayUserAccount", "GatewayQuote")
NEW, UPDATE = 0, 1
OPEN, FILLED, CANCELLED = 1, 2, 3
FILLED_OR_CANCELLED = frozenset({FILLED, CANCELLED})
LIMIT = 1


@dataclass(frozen=True, slots=True)
class MixEvent:
    """One hub event as it goes on the wire: target, arguments, and the account (user hub) or contract (quotes)."""

    target: str
    arguments: tuple[Any, ...]
    account_id: int | None = None
    contract_id: str | None = None

    @property
    def hub(self) -> str:
        return "market" if self.target == QUOTE else "user"


@dataclass(slots=True)
class _Account:
    id: int
    balance: float
    open: dict[int, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, tuple[int, float]] = field(default_factory=dict)
    """contract -> (signed size, average price)."""


def _stamp(seq: int) -> str:
    return (EPOCH + timedelta(milliseconds=seq)).isoformat(timespec="microseconds")


def user_event_mix(count: int, *, accounts: Sequence[int] = ACCOUNTS, working: int = 100, seed: int = 0,
                   quote_every: int = 0) -> Iterator[MixEvent]:
    """``count`` events of realistic trading over ``accounts`` with up to ``working`` working orders per account.

    ``quote_every`` > 0 inserts a (partial) ``GatewayQuote`` every that many events (market hub)."""
    if count < 0 or working < 1 or not accounts:
        raise ValueError("user_event_mix needs count >= 0, working >= 1 and at least one account")
    rng = random.Random(f"bench-mix:{seed}")
    books = [_Account(a, 50_000.0) for a in accounts]
    next_order = 30_000_000
    next_trade = 60_000_000
    next_position = 90_000
    pending: list[MixEvent] = []
    emitted = 0
    seq = 0
    while emitted < count:
        if quote_every and emitted and emitted % quote_every == 0 and not pending:
            contract_id, symbol, price, tick = CONTRACTS[rng.randrange(len(CONTRACTS))]
            last = round(price + tick * rng.randint(-40, 40), 2)
            quote = {"symbol": symbol, "lastPrice": last, "bestBid": last - tick, "bestAsk": last,
                     "volume": rng.randint(1, 500_000), "timestamp": _stamp(seq)}
            emitted += 1
            yield MixEvent(QUOTE, (contract_id, quote), contract_id=contract_id)
            continue
        if pending:
            emitted += 1
            yield pending.pop(0)
            continue
        seq += 1
        stamp = _stamp(seq)
        book = books[rng.randrange(len(books))]
        if len(book.open) < working or rng.random() < 0.05:
            contract_id, symbol, price, tick = CONTRACTS[rng.randrange(len(CONTRACTS))]
            next_order += 1
            order: dict[str, Any] = {
                "id": next_order, "accountId": book.id, "contractId": contract_id, "symbolId": symbol,
                "creationTimestamp": stamp, "updateTimestamp": stamp, "status": OPEN, "type": LIMIT,
                "side": rng.randrange(2), "size": rng.randint(1, 3),
                "limitPrice": round(price - tick * rng.randint(1, 80), 2), "fillVolume": 0,
                "customTag": f"bench-{next_order}",
            }
            book.open[order["id"]] = order
            pending.append(_user(ORDER, NEW, order, book.id))
            continue
        order_id = rng.choice(list(book.open))
        order = {**book.open[order_id], "updateTimestamp": stamp}
        roll = rng.random()
        if roll < 0.30:
            order["limitPrice"] = round(order["limitPrice"] + 0.25 * rng.choice((-2, -1, 1, 2)), 2)
            book.open[order_id] = order
            pending.append(_user(ORDER, UPDATE, order, book.id))
            continue
        del book.open[order_id]
        if roll < 0.50:
            order["status"] = CANCELLED
            pending.append(_user(ORDER, UPDATE, order, book.id))
            continue
        fill_price = order["limitPrice"]
        order.update(status=FILLED, fillVolume=order["size"], filledPrice=fill_price)
        pending.append(_user(ORDER, UPDATE, order, book.id))
        next_trade += 1
        fees = 1.4 * order["size"]
        trade = {"id": next_trade, "accountId": book.id, "contractId": order["contractId"],
                 "creationTimestamp": stamp, "price": fill_price, "fees": fees, "side": order["side"],
                 "size": order["size"], "voided": False, "orderId": order_id}
        size, avg = book.positions.get(order["contractId"], (0, 0.0))
        delta = order["size"] if order["side"] == 0 else -order["size"]
        new_size = size + delta
        pnl = None
        if size != 0 and (size > 0) != (delta > 0):
            pnl = round((fill_price - avg) * min(abs(size), abs(delta)) * (1 if size > 0 else -1) * 12.5, 2)
            trade["profitAndLoss"] = pnl
        pending.append(_user(TRADE, NEW, trade, book.id))
        if new_size == 0:
            book.positions.pop(order["contractId"], None)
            avg = 0.0
        else:
            avg = fill_price if size == 0 or (size > 0) != (new_size > 0) else avg
            book.positions[order["contractId"]] = (new_size, avg)
        next_position += 1
        position = {"id": next_position, "accountId": book.id, "contractId": order["contractId"],
                    "creationTimestamp": stamp, "type": 0 if new_size == 0 else (1 if new_size > 0 else 2),
                    "size": abs(new_size), "averagePrice": avg}
        pending.append(_user(POSITION, UPDATE, position, book.id))
        book.balance = round(book.balance - fees + (pnl or 0.0), 2)
        account = {"id": book.id, "name": f"BENCH-{book.id}", "balance": book.balance, "canTrade": True,
                   "isVisible": True, "simulated": True}
        pending.append(_user(ACCOUNT, UPDATE, account, book.id))


def _user(target: str, action: int, data: dict[str, Any], account_id: int) -> MixEvent:
    return MixEvent(target, ({"action": action, "data": data},), account_id=account_id)


def frames(events: Iterable[MixEvent], per_frame: int) -> Iterator[str]:
    """SignalR text frames of ``per_frame`` records each (the shared codec's ``encode``), as a hub batches them."""
    if per_frame < 1:
        raise ValueError(f"per_frame must be >= 1, got {per_frame}")
    parts: list[str] = []
    for event in events:
        parts.append(encode(Invocation(event.target, event.arguments)))
        if len(parts) >= per_frame:
            yield "".join(parts)
            parts = []
    if parts:
        yield "".join(parts)


def mix_counts(events: Iterable[MixEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        counts[event.target] = counts.get(event.target, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------------- figures
def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN-free: raises on an empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rss_mb() -> float:
    """Resident set size now (``VmRSS`` of /proc/self/status), in MiB; falls back to ru_maxrss off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """Where the figures were measured (for the README's Performance section)."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count() or 0, "python": platform.python_version(),
            "implementation": sys.implementation.name}


def machine_note() -> str:
    m = machine()
    return f"machine: {m['cpu']}, {m['cpus']} CPU(s), {m['implementation']} {m['python']}"
