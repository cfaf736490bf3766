"""Resident memory of the event path after 1,000,000 events vs after 10,000 (target: growth under 50 MB).

Why: the engine runs for weeks; everything the event path keeps per event (terminal orders remembered against late
events, trade ids kept for deduplication, quotes) must be bounded, and the bound must be affordable. This feeds the
mirror a long realistic stream and reads the process's resident set (``VmRSS``) at checkpoints.

Path: SignalR text frames built in memory from the shared mix (:func:`engine.bench._support.user_event_mix`: order
lifecycles, fills with unique trade ids, positions opening and closing, balance updates, plus partial quotes on the
market hub) -> the real codec (:class:`~engine.protocol.signalr.StreamReader`) -> :class:`~engine.realtime.HubEvent`
batches (one frame's events per item, as the hub managers send them) -> a Trio memory channel ->
:func:`~engine.state.feed_mirror` -> :class:`~engine.state.StateMirror` with its default
bounds. No socket: a million events over loopback would take minutes, and the per-socket objects (connection,
manager) hold nothing per event. The default stream uses one account, so every bounded memory fills up: terminal
orders (100,000 by id and status, the last 1,000 in full), the account's trades (10,000 in full, 100,000 ids for
deduplication). The collector runs with the setting ``Engine.run`` applies (:mod:`engine.realtime.gcpolicy`) and
``gc.collect()`` runs before each reading.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import trio

from engine.bench._support import FILLED_OR_CANCELLED, TRADE, frames, machine_note, rss_mb, user_event_mix
from engine.protocol.signalr import Invocation, StreamReader
from engine.protocol.user_events import read_user_event
from engine.realtime import HubEvent, HubEvents, tune_gc_for_event_path
from engine.state import StateMirror, feed_mirror
from engine.state.mirror import (
    DEFAULT_RECENT_TERMINAL,
    DEFAULT_TERMINAL_MEMORY,
    DEFAULT_TRADE_ID_MEMORY,
    DEFAULT_TRADE_MEMORY,
)

TARGET_GROWTH_MB = 50.0
EVENTS = 1_000_000
BASELINE = 10_000
ACCOUNTS_DEFAULT = (7001,)
WORKING = 20
QUOTE_EVERY = 8
PER_FRAME = 64


def _checkpoints(total: int, baseline: int) -> list[int]:
    marks = {baseline, total}
    for fraction in (0.1, 0.25, 0.5, 0.75):
        mark = int(total * fraction)
        if baseline < mark < total:
            marks.add(mark)
    return sorted(marks)


async def feed(total: int, baseline: int, *, accounts: tuple[int, ...] = ACCOUNTS_DEFAULT, working: int = WORKING,
               quote_every: int = QUOTE_EVERY) -> dict[str, Any]:
    """Run ``total`` events through codec -> channel -> feed_mirror -> mirror; RSS at each checkpoint."""
    if not 0 < baseline < total:
        raise ValueError(f"need 0 < baseline < total, got baseline={baseline}, total={total}")
    mirror = StateMirror(watch_accounts=accounts)
    counters = mirror.counters
    send, receive = trio.open_memory_channel[HubEvents](10_000)
    marks = _checkpoints(total, baseline)
    readings: dict[int, float] = {}
    seen = {"terminal": 0, "trades": 0}

    def processed() -> int:
        return sum(counters.applied.values()) + counters.quotes + counters.malformed + counters.unknown_events

    def counting(stream: Any) -> Any:
        for event in stream:
            if event.target == TRADE:
                seen["trades"] += 1
            elif event.arguments and isinstance(event.arguments[0], dict) and \
                    event.arguments[0].get("data", {}).get("status") in FILLED_OR_CANCELLED:
                seen["terminal"] += 1
            yield event

    async def produce() -> None:
        reader = StreamReader("client", read_typed=read_user_event)  # as the user hub reads (realtime.user_hub)
        reader.feed("{}\x1e")  # the handshake answer
        sent = 0
        next_mark = 0
        mix = counting(user_event_mix(total, accounts=accounts, working=working, quote_every=quote_every))
        async with send:
            for text in frames(mix, PER_FRAME):
                now = trio.current_time()
                batch: list[HubEvent] = []  # one frame's events, one channel item (as a hub manager sends them)
                for message in reader.feed(text):
                    assert isinstance(message, Invocation)
                    hub = "market" if message.target == "GatewayQuote" else "user"
                    batch.append(HubEvent(hub, message.target, message.arguments, 1, now))
                    sent += 1
                    if next_mark < len(marks) and sent == marks[next_mark]:  # a reading after exactly `sent` events
                        await send.send(tuple(batch))
                        batch = []
                        while processed() < sent:
                            await trio.lowlevel.checkpoint()
                        gc.collect()
                        readings[sent] = rss_mb()
                        next_mark += 1
                if batch:
                    await send.send(tuple(batch))

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed_mirror, mirror, receive)
        await produce()
    elapsed = time.perf_counter() - started
    trades_kept = sum(len(mirror.trades(a)) for a in accounts)
    return {"readings": readings, "seconds": elapsed, "mirror": mirror, "seen": seen, "trades_kept": trades_kept}


def run(total: int = EVENTS, baseline: int = BASELINE) -> dict[str, Any]:
    tune_gc_for_event_path()
    before = rss_mb()
    outcome = trio.run(feed, total, baseline)
    readings: dict[int, float] = outcome["readings"]
    mirror: StateMirror = outcome["mirror"]
    growth = readings[total] - readings[baseline]
    counters = mirror.counters
    table = ", ".join(f"{n:,}: {mb:.1f} MB" for n, mb in sorted(readings.items()))
    result: dict[str, Any] = {
        "events": total,
        "rss_mb_start": round(before, 1),
        "rss_mb_at_baseline": round(readings[baseline], 1),
        "rss_mb_at_end": round(readings[total], 1),
        "growth_mb": round(growth, 1),
        "growth_mb_last_quarter": round(readings[total] - readings[max(n for n in readings if n <= total * 3 // 4)], 1),
        "target_growth_mb": TARGET_GROWTH_MB,
    }
    for n, mb in sorted(readings.items()):
        result[f"rss_mb_at_{n}"] = round(mb, 1)
    result.update({
        "terminal_orders_seen": outcome["seen"]["terminal"],
        "terminal_memory_cap": DEFAULT_TERMINAL_MEMORY,
        "trades_seen": outcome["seen"]["trades"],
        "trades_kept": outcome["trades_kept"],
        "trade_memory_cap_per_account": DEFAULT_TRADE_MEMORY,
        "trade_id_memory_cap_per_account": DEFAULT_TRADE_ID_MEMORY,
        "recent_terminal_in_full": DEFAULT_RECENT_TERMINAL,
        "working_orders_end": len(mirror.working_orders()),
        "quotes_applied": counters.quotes,
        "malformed": counters.malformed,
        "events_per_s_in_memory": round(total / outcome["seconds"]),
        "passed": growth < TARGET_GROWTH_MB and counters.malformed == 0,
        "notes": [
            f"RSS after N events: {table}; growth {baseline:,} -> {total:,}: {growth:.1f} MB "
            f"(target < {TARGET_GROWTH_MB:.0f} MB)",
            "path: in-memory SignalR frames -> StreamReader (real codec) -> HubEvent batches (one per frame) -> memory "
            "channel -> feed_mirror "
            "-> StateMirror (default bounds); no socket (see the module docstring); gc.collect() before each reading",
            f"mix: 1 account, {WORKING} working orders, a partial quote every {QUOTE_EVERY} events; terminal orders "
            f"seen {outcome['seen']['terminal']:,} (remembered by id and status: cap {DEFAULT_TERMINAL_MEMORY:,}, the "
            f"last {DEFAULT_RECENT_TERMINAL:,} in full), trades seen {outcome['seen']['trades']:,} (kept in full "
            f"{outcome['trades_kept']:,}, cap {DEFAULT_TRADE_MEMORY:,} per account; ids kept for deduplication: cap "
            f"{DEFAULT_TRADE_ID_MEMORY:,} per account)",
            machine_note(),
        ],
    })
    return result
