"""User-hub events/s through the engine's parse-and-mirror path over loopback, beside a bare receive+parse floor.

Why: the event path (trio-websocket -> :class:`~engine.realtime.HubConnection` / :class:`~engine.realtime.HubManager`
-> SignalR codec -> sink channel -> :func:`~engine.state.feed_mirror` -> :class:`~engine.state.StateMirror`) must
keep up with what a hub pushes. Its cost only means something next to what the same machine can do at all, so the
same stream is also consumed by a floor (a bare trio-websocket receive loop that splits frames on ``0x1E`` and
parses each record with the JSON parser the engine's codec uses, ``msgspec.json.decode``; orjson is as fast here)
and by a transport-only loop (frames received, records counted, nothing parsed) that shows whether the simulator or
the socket is what bounds the floor. Target: the engine at least 50% of the floor.

Setup, identical for every run (the transport run, then floor and engine runs alternating, see :data:`ROUNDS`): one
simulator process (:mod:`engine.bench._simproc`, so the server and the measured consumer do not share an interpreter
or a core) pre-generates ``count`` events of the shared realistic mix
(:func:`engine.bench._support.user_event_mix`: order lifecycles over ``working`` working orders per account, fills
with their trade, position and balance updates, over the simulator's 4 accounts) and publishes them on its bus in
chunks of 500, closed-loop, at most 4,000 ahead of the consumer's progress (which this process writes to the
simulator's stdin, checked every 2 ms and written once per 500 events, by the same reporter task in every run).
Each run connects, subscribes (accounts, orders, positions, trades of the 4 accounts), then times the whole stream:
from ``GO`` to the last event counted.
The CPU time this process spent in that window is reported per event as well, a figure the simulator's speed
does not bound.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import trio
import trio_websocket

from engine.bench._simproc import SimProcess, open_simproc
from engine.bench._support import ACCOUNTS, frames, machine_note, user_event_mix
from engine.protocol.signalr import PING_RECORD, Invocation, StreamReader, encode, encode_handshake_request
from engine.protocol.user_events import read_user_event
from engine.realtime import HubEvents, ReconnectContext, tune_gc_for_event_path, user_hub, user_subscriptions
from engine.realtime.transport import RECEIVE_BUFFER_SIZE
from engine.state import StateMirror, feed_mirror

TARGET_RATIO = 0.5
COUNT = 100_000
WORKING = 20
CHUNK = 500
WINDOW = 4_000
REPORT_EVERY_S = 0.002
RUN_TIMEOUT_S = 300.0
ROUNDS = 5
"""Engine runs per benchmark, each bracketed by a floor run before and after it (floor, engine, floor, engine, ...,
floor); the median engine run's ratio to the mean of its two floors is the figure. Why: on this shared VM the
machine's speed drifts by up to half within seconds (the same pure-Python loop: 0.38-0.56 s), so a floor measured
only before the engine run charged the drift to the engine; bracketing cancels a steady drift, and the median of 5
sets aside a run that caught a burst."""
KEEP_ALIVE_S = 10.0


@dataclass(frozen=True)
class Run:
    kind: str
    events: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6 if self.events else 0.0


class StaticTokens:
    """A :class:`~engine.realtime.TokenProvider` with one fixed token (the simulator's; nothing to refresh)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def current_token(self) -> str:
        return self._token

    async def invalidate_and_relogin(self) -> None:
        raise RuntimeError("the benchmark's token cannot be renewed")

    async def token_updates(self) -> AsyncIterator[object]:
        await trio.sleep_forever()
        yield None  # pragma: no cover


def _hub_ws_url(sim: SimProcess) -> str:
    return sim.url.replace("http://", "ws://") + "/hubs/user?access_token=" + sim.ready[1]


async def _timed(sim: SimProcess, count: int, progress: Callable[[], int], kind: str) -> Run:
    """Start the stream and report progress until ``count`` events were consumed; the run's figures."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    await sim.tell("GO")
    reported = 0
    with trio.fail_after(RUN_TIMEOUT_S):
        while True:
            await trio.sleep(REPORT_EVERY_S)
            seen = progress()
            if seen >= count:
                break
            if seen - reported >= CHUNK:  # one progress line per chunk: pipe writes are not free
                reported = seen
                await sim.tell(str(seen))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return Run(kind, count, elapsed, cpu)


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode()


async def _raw_session(sim: SimProcess, count: int, kind: str) -> Run:
    """The floor (``parse``) or the transport-only loop (``transport``) on a bare trio-websocket connection."""
    seen = 0
    # The engine's own socket settings (engine/realtime/transport.py), so the three runs differ only in what they do
    # with the frames: the floor is the best this machine does with the same transport.
    async with trio_websocket.open_websocket_url(_hub_ws_url(sim), max_message_size=1 << 24,
                                                 receive_buffer_size=RECEIVE_BUFFER_SIZE) as ws:
        subs = user_subscriptions(ACCOUNTS)
        setup = [encode(Invocation(s.subscribe, s.args, str(i))) for i, s in enumerate(subs)]
        # The handshake alone first, as the engine does: the simulator answers subscriptions that ride in the
        # handshake's frame before its connection joins the event bus, so a stream started right after their
        # answers could lose its first chunk (seen: runs stuck at 2,500 of 3,000 events).
        await ws.send_message(encode_handshake_request())
        await ws.get_message()  # the handshake answer
        await ws.send_message("".join(setup))
        answers = 0
        while answers < len(subs):  # one Completion per subscription
            answers += _text(await ws.get_message()).count("\x1e")

        async def consume() -> None:
            nonlocal seen
            if kind == "transport":
                while True:
                    seen += _text(await ws.get_message()).count("\x1e")
            else:
                parse = msgspec.json.decode
                while True:
                    for record in _text(await ws.get_message()).split("\x1e"):
                        if record and parse(record).get("type") == 1:
                            seen += 1

        async def keep_alive() -> None:
            # A SignalR client pings; without it the hub closes a session that outlives its 30 s client timeout
            # (seen on a loaded machine: the raw runs died with close code 1000 while the engine, which pings, lived).
            while True:
                await trio.sleep(KEEP_ALIVE_S)
                await ws.send_message(PING_RECORD)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            nursery.start_soon(keep_alive)
            run = await _timed(sim, count, lambda: seen, kind)
            nursery.cancel_scope.cancel()
    return run


async def _engine_session(sim: SimProcess, count: int) -> tuple[Run, StateMirror]:
    """The engine's own path: HubManager over a real socket -> sink channel (one item per frame) -> feed_mirror ->
    StateMirror."""
    mirror = StateMirror(watch_accounts=ACCOUNTS)
    subscribed = trio.Event()

    async def on_subscribed(context: ReconnectContext) -> None:
        subscribed.set()

    send, receive = trio.open_memory_channel[HubEvents](10_000)
    manager = user_hub(sim.url + "/hubs/user", StaticTokens(sim.ready[1]), send, on_reconnected=on_subscribed,
                       reconcile_initial=True)
    manager.set_accounts(ACCOUNTS)
    applied = mirror.counters.applied
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed_mirror, mirror, receive)
        await nursery.start(manager.run)
        with trio.fail_after(30):
            await subscribed.wait()
        run = await _timed(sim, count, lambda: sum(applied.values()), "engine")
        manager.close("benchmark done")
        nursery.cancel_scope.cancel()
    return run, mirror


def stage_costs(count: int, working: int, per_frame: int = 256) -> dict[str, float]:
    """CPU microseconds per event of the two pure stages, in process on the same mix (no socket, no Trio): the
    codec (frames -> Invocation) and the mirror (``on_user_event``). The rest of the engine's figure is plumbing:
    websocket, tasks, the sink channel.

    Frame by frame, as the engine does it: each frame is decoded, then its messages applied, then dropped, so the
    collector sees the engine's pattern (a whole run's decoded messages held at once made every collection scan
    them and charged that to both stages)."""
    mix = list(user_event_mix(count, accounts=ACCOUNTS, working=working))
    texts = list(frames(mix, per_frame))
    # Only the frames' text stays: the generated events (~20 container objects each) are not what a running engine
    # holds, and while alive every collection during the measurement scanned them and charged that to the stages.
    del mix
    gc.collect()
    reader = StreamReader("client", read_typed=read_user_event)  # as the user hub reads (realtime.user_hub)
    reader.feed('{}\x1e')  # the handshake answer
    mirror = StateMirror(watch_accounts=ACCOUNTS)
    codec = applied = 0.0
    for text in texts:
        started = time.process_time()
        decoded = reader.feed(text)
        decoded_at = time.process_time()
        for message in decoded:
            assert isinstance(message, Invocation)
            mirror.on_user_event(message.target, message.arguments)
        codec += decoded_at - started
        applied += time.process_time() - decoded_at
    return {"codec": codec / count * 1e6, "mirror": applied / count * 1e6}


def _ratio(engine: Run, floor: Run) -> float:
    return engine.rate / floor.rate if floor.rate else 0.0


def _bracket(before: Run, after: Run) -> Run:
    """The floor an engine run is compared with: the mean of the floor runs just before and just after it."""
    return Run(before.kind, before.events, (before.seconds + after.seconds) / 2,
               (before.cpu_seconds + after.cpu_seconds) / 2)


async def measure(count: int = COUNT, working: int = WORKING, rounds: int = ROUNDS) -> dict[str, Any]:
    gc_thresholds = tune_gc_for_event_path()  # the collector setting Engine.run applies (engine/realtime/gcpolicy.py)
    options = ["--count", str(count), "--working", str(working), "--chunk", str(CHUNK), "--window", str(WINDOW)]
    pairs: list[tuple[Run, Run, StateMirror]] = []
    async with open_simproc("events", *options) as sim:
        transport = await _raw_session(sim, count, "transport")
        floor_before = await _raw_session(sim, count, "parse")
        for _ in range(rounds):  # floor, engine, floor: each engine run between the two floors nearest in time
            engine, mirror = await _engine_session(sim, count)
            floor_after = await _raw_session(sim, count, "parse")
            pairs.append((_bracket(floor_before, floor_after), engine, mirror))
            floor_before = floor_after
    ratios = [_ratio(engine, floor) for floor, engine, _ in pairs]
    floor, engine, mirror = sorted(pairs, key=lambda pair: _ratio(pair[1], pair[0]))[len(pairs) // 2]
    ratio = _ratio(engine, floor)  # the median pair's
    stages = stage_costs(min(count, 50_000), working)
    plumbing = engine.cpu_us_per_event - stages["codec"] - stages["mirror"]
    counters = mirror.counters
    return {
        "events": count,
        "engine_events_per_s": round(engine.rate),
        "floor_events_per_s": round(floor.rate),
        "transport_events_per_s": round(transport.rate),
        "engine_vs_floor": round(ratio, 3),
        "engine_vs_floor_per_round": [round(r, 3) for r in ratios],
        "target_ratio": TARGET_RATIO,
        "engine_cpu_us_per_event": round(engine.cpu_us_per_event, 2),
        "floor_cpu_us_per_event": round(floor.cpu_us_per_event, 2),
        "transport_cpu_us_per_event": round(transport.cpu_us_per_event, 2),
        "engine_codec_us_per_event": round(stages["codec"], 2),
        "engine_mirror_us_per_event": round(stages["mirror"], 2),
        "engine_plumbing_us_per_event": round(plumbing, 2),
        "engine_seconds": round(engine.seconds, 3),
        "floor_seconds": round(floor.seconds, 3),
        "mirror_malformed": counters.malformed,
        "mirror_working_orders": len(mirror.working_orders()),
        "passed": ratio >= TARGET_RATIO and counters.malformed == 0,
        "notes": [
            f"engine {engine.rate:,.0f} events/s vs floor {floor.rate:,.0f}/s ({ratio:.0%}, the median of {rounds} "
            f"engine runs, each against the mean of the floor runs before and after it: "
            f"{', '.join(f'{r:.0%}' for r in ratios)}; target >= {TARGET_RATIO:.0%}); transport "
            f"only {transport.rate:,.0f}/s",
            f"CPU in this process per event: engine {engine.cpu_us_per_event:.1f} us, floor "
            f"{floor.cpu_us_per_event:.1f} us, transport {transport.cpu_us_per_event:.1f} us",
            f"engine CPU per event by stage: codec {stages['codec']:.1f} us, mirror {stages['mirror']:.1f} us "
            f"(both measured in process on the same mix), the rest {plumbing:.1f} us (websocket, hub tasks, sink "
            "channel (drained per frame), scheduling)",
            f"stream: {count:,} events of the shared mix over 4 accounts, {working} working orders per account; "
            f"simulator in its own process, published in chunks of {CHUNK}, at most {WINDOW:,} ahead of the "
            "consumer; loopback TCP; one connection per run, same stream for all three runs",
            "floor = trio-websocket get_message + split on 0x1E + msgspec.json.decode per record; engine = "
            "HubManager + HubConnection + codec + sink channel + feed_mirror + StateMirror (payloads validated into "
            "msgspec records)",
            f"gc thresholds {gc_thresholds} for all three runs, as Engine.run sets them (engine/realtime/gcpolicy.py)",
            machine_note(),
        ],
    }


def run(count: int = COUNT, working: int = WORKING, rounds: int = ROUNDS) -> dict[str, Any]:
    return trio.run(measure, count, working, rounds)
