"""Seedable fault injection for the simulated Gateway.

Every failure the engine must survive is armed here and *taken* by the code that can produce it: the REST app takes
``http_5xx``/``http_429``/``delay``/``lose_response`` per request, the hubs take ``ws_drop``/``ws_close``/
``drop_events``/``duplicate_events``, and duration-style faults (``outage``, ``stop_pings``) are asked with
:meth:`FaultInjector.active`. Decisions come from one seeded RNG and every occurrence is recorded in :attr:`log`
(Trio time, wall time, kind, context), so two runs with the same seed and the same traffic replay the same faults.

Named profiles (``--faults PROFILE``) arm a random schedule drawn from the seed; :meth:`FaultInjector.run_profile`
executes it on the Trio clock, so under a MockClock days of chaos take seconds. ``chaos`` (and its compressed twin
``chaos-quick``) cycles through every kind in seeded rounds, so a short demo is sure to see each one;
``random-chaos`` keeps the sparse draw of one random kind every 5-60 s. :func:`kinds_injected` counts the log.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import trio

from engine.protocol.timebase import WallClock

log = logging.getLogger(__name__)

# --- REST fault kinds (taken by simulator/rest.py) ---------------------------------------------------------------
HTTP_5XX = "http_5xx"
"""Answer with a 5xx status instead of handling. params: ``status`` (int or list of ints, default [500, 502, 503])."""
HTTP_429 = "http_429"
"""Answer 429 as if the rate window were exceeded. params: ``retry_after_s`` (default 1)."""
DELAY = "delay"
"""Sleep before handling (Trio clock). params: ``seconds`` (default 5)."""
LOSE_RESPONSE = "lose_response"
"""Mutations only: execute, then the client sees a transport error, never an HTTP answer."""
EXPIRE_TOKENS = "expire_tokens"
"""Every token issued so far is treated as expired (401; validate refuses them)."""
REVOKE_TOKENS = "revoke_tokens"
"""Every token issued so far is revoked (401; validate answers InvalidSession)."""
OUTAGE = "outage"
"""Refuse every connection (REST and hubs) while active: arm with ``duration_s``."""

# --- hub fault kinds (taken by simulator/hubs.py) ----------------------------------------------------------------
WS_DROP = "ws_drop"
"""Drop a hub socket without a close frame."""
WS_CLOSE = "ws_close"
"""Send SignalR Close ``{"error": "Connection closed with an error.", "allowReconnect": true}`` and close."""
STOP_PINGS = "stop_pings"
"""Stop sending keep-alive pings while active (arm with ``duration_s``)."""
DROP_EVENTS = "drop_events"
"""Silently drop an event instead of sending it."""
DUPLICATE_EVENTS = "duplicate_events"
"""Send an event twice."""

REST_KINDS = frozenset({HTTP_5XX, HTTP_429, DELAY, LOSE_RESPONSE, EXPIRE_TOKENS, REVOKE_TOKENS, OUTAGE})
AIM_PATH = "path"
"""A REST fault armed with ``params={"path": P}`` fires only for requests to P (e.g. ``/api/Order/place``): a test
can slow or lose one endpoint's answer while the log-in and the searches around it go through untouched."""
HUB_KINDS = frozenset({WS_DROP, WS_CLOSE, STOP_PINGS, DROP_EVENTS, DUPLICATE_EVENTS})
ALL_KINDS = REST_KINDS | HUB_KINDS


@dataclass(frozen=True, slots=True)
class Fault:
    """One occurrence (from :meth:`FaultInjector.take`) or the active state (from :meth:`FaultInjector.active`)."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FaultRecord:
    trio_time: float
    wall_time: datetime
    kind: str
    context: dict[str, Any]


@dataclass(slots=True)
class _Armed:
    count: int | None
    probability: float
    until: float | None
    params: dict[str, Any]


class FaultInjector:
    """Arms faults and decides, from a seeded RNG, when each one fires.

    All methods are synchronous and must be called inside ``trio.run`` (they read the Trio clock).
    """

    def __init__(self, seed: int = 0, clock: WallClock | None = None) -> None:
        self.seed = seed
        self.clock = clock if clock is not None else WallClock()
        self._rng = random.Random(f"faults:{seed}")
        self._armed: dict[str, _Armed] = {}
        self.log: list[FaultRecord] = []
        self._arming = trio.Event()

    # --- arming ---------------------------------------------------------------------------------------------------
    def arm(
        self,
        kind: str,
        *,
        count: int | None = 1,
        probability: float = 1.0,
        duration_s: float | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Arm ``kind``. ``count=None`` = unlimited while armed; ``duration_s`` = armed for that long (Trio clock).

        Re-arming a kind replaces its previous arming.
        """
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(ALL_KINDS))}")
        if count is not None and count < 1:
            raise ValueError(f"fault count must be >= 1 or None, got {count}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault probability must be within [0, 1], got {probability}")
        if duration_s is not None and (duration_s <= 0 or not math.isfinite(duration_s)):
            raise ValueError(f"fault duration_s must be a positive number, got {duration_s}")
        until = trio.current_time() + duration_s if duration_s is not None else None
        if duration_s is not None and count == 1 and kind in (OUTAGE, STOP_PINGS):
            count = None  # a timed outage is a state, not a single occurrence
        self._armed[kind] = _Armed(count, probability, until, dict(params or {}))
        self._arming.set()
        self._arming = trio.Event()
        log.info("fault armed: %s count=%s p=%s duration=%s params=%s", kind, count, probability, duration_s, params)

    async def wait_armed(self) -> None:
        """Return at the next :meth:`arm` call: lets a watcher sleep instead of polling while nothing is armed."""
        await self._arming.wait()

    def disarm(self, kind: str | None = None) -> None:
        """Disarm ``kind``, or everything when ``kind`` is None."""
        if kind is None:
            self._armed.clear()
        else:
            self._armed.pop(kind, None)

    def armed(self) -> dict[str, dict[str, Any]]:
        """What is armed now (for ``/_sim/state`` and debugging)."""
        now = trio.current_time()
        self._expire(now)
        return {
            kind: {
                "count": a.count,
                "probability": a.probability,
                "remainingS": None if a.until is None else max(0.0, a.until - now),
                "params": a.params,
            }
            for kind, a in self._armed.items()
        }

    # --- firing ---------------------------------------------------------------------------------------------------
    def take(self, kind: str, **context: Any) -> Fault | None:
        """Consume one occurrence of ``kind`` if it is armed and the seeded RNG says so; record it."""
        armed = self._current(kind)
        if armed is None:
            return None
        aimed_at = armed.params.get(AIM_PATH)
        if aimed_at is not None and "path" in context and context["path"] != aimed_at:
            return None
        if armed.probability < 1.0 and self._rng.random() >= armed.probability:
            return None
        if armed.count is not None:
            armed.count -= 1
            if armed.count <= 0:
                del self._armed[kind]
        self._record(kind, context)
        return Fault(kind, dict(armed.params))

    def active(self, kind: str) -> Fault | None:
        """The armed state of a duration-style fault, without consuming it (and without recording)."""
        armed = self._current(kind)
        return None if armed is None else Fault(kind, dict(armed.params))

    def note(self, kind: str, **context: Any) -> None:
        """Record an effect of an active fault (e.g. a connection refused during an outage)."""
        self._record(kind, context)

    def _current(self, kind: str) -> _Armed | None:
        armed = self._armed.get(kind)
        if armed is None:
            return None
        if armed.until is not None and trio.current_time() >= armed.until:
            del self._armed[kind]
            return None
        return armed

    def _expire(self, now: float) -> None:
        for kind in [k for k, a in self._armed.items() if a.until is not None and now >= a.until]:
            del self._armed[kind]

    def _record(self, kind: str, context: dict[str, Any]) -> None:
        self.log.append(FaultRecord(trio.current_time(), self.clock.now(), kind, dict(context)))

    # --- profiles -------------------------------------------------------------------------------------------------
    async def run_profile(self, name: str) -> None:
        """Arm the random schedule of profile ``name`` (drawn from the seed) until cancelled."""
        if name not in PROFILES:
            raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(sorted(PROFILES))}")
        rng = random.Random(f"profile:{name}:{self.seed}")
        for delay_s, kind, kwargs in PROFILES[name](rng):
            await trio.sleep(delay_s)
            self.arm(kind, **kwargs)


def kinds_injected(records: Iterable[FaultRecord]) -> dict[str, int]:
    """Fault occurrences per kind (every kind listed, 0 when it never fired), from :attr:`FaultInjector.log`."""
    counts = dict.fromkeys(sorted(ALL_KINDS), 0)
    for record in records:
        counts[record.kind] = counts.get(record.kind, 0) + 1
    return counts


ScheduleStep = tuple[float, str, dict[str, Any]]
"""(seconds to wait before arming, kind, keyword arguments of :meth:`FaultInjector.arm`)."""


def _none(rng: random.Random) -> Iterator[ScheduleStep]:
    return iter(())


def _flaky_network(rng: random.Random) -> Iterator[ScheduleStep]:
    """Transport trouble only: slow answers, lost responses, dropped sockets, silent pings."""
    choices: list[tuple[str, dict[str, Any]]] = [
        (DELAY, {"params": {"seconds": 3.0}}),
        (LOSE_RESPONSE, {}),
        (WS_DROP, {}),
        (WS_CLOSE, {}),
        (STOP_PINGS, {"duration_s": 45.0}),
        (HTTP_5XX, {"params": {"status": [502, 503, 504]}}),
    ]
    while True:
        kind, kwargs = rng.choice(choices)
        yield rng.uniform(20.0, 120.0), kind, kwargs


def _chaos_kinds(outage_s: float, stop_pings_s: float, delay_s: float) -> dict[str, dict[str, Any]]:
    """Every fault kind once, with the arming of a chaos round (``FaultInjector.arm`` keyword arguments)."""
    return {
        HTTP_5XX: {"count": 3},
        HTTP_429: {"params": {"retry_after_s": 2}},
        DELAY: {"params": {"seconds": delay_s}},
        LOSE_RESPONSE: {},
        EXPIRE_TOKENS: {},
        REVOKE_TOKENS: {},
        OUTAGE: {"duration_s": outage_s},
        WS_DROP: {},
        WS_CLOSE: {},
        STOP_PINGS: {"duration_s": stop_pings_s},
        DROP_EVENTS: {"count": 2},
        DUPLICATE_EVENTS: {"count": 2},
    }


DISRUPTIVE = (OUTAGE, STOP_PINGS)
"""Faults whose recovery takes longest (the breaker's open period, a silent-hub timeout and backoff): a round puts
them in its first half, so the engine has recovered from them before the round ends."""


def _rounds(rng: random.Random, kinds: dict[str, dict[str, Any]], gap_s: float,
            first_s: float) -> Iterator[ScheduleStep]:
    """Endless rounds, each arming EVERY kind once in a seeded order, about ``gap_s`` apart (seeded jitter of
    +-10 %): a run of ``len(kinds) * gap_s`` seconds is sure to see every kind, and injection goes on after that."""
    delay = first_s
    while True:
        order = sorted(kinds)
        rng.shuffle(order)
        disruptive = [kind for kind in order if kind in DISRUPTIVE]
        order = [kind for kind in order if kind not in DISRUPTIVE]
        slots = max(1, len(kinds) // 2 - len(disruptive) + 1)
        for kind in disruptive:  # seeded positions, all within the round's first half
            order.insert(rng.randrange(slots), kind)
        for kind in order:
            yield delay, kind, dict(kinds[kind])
            delay = gap_s * rng.uniform(0.9, 1.1)


def _chaos(rng: random.Random) -> Iterator[ScheduleStep]:
    """Every kind in each round of ~96 s (one fault every ~8 s), token trouble and short outages included: the
    ``run --simulate --chaos`` demo sees all twelve kinds within its first 100 s, then keeps going."""
    return _rounds(rng, _chaos_kinds(outage_s=10.0, stop_pings_s=30.0, delay_s=5.0), gap_s=8.0, first_s=3.0)


def _chaos_quick(rng: random.Random) -> Iterator[ScheduleStep]:
    """The chaos rounds compressed for short system tests: every kind within ~30 s (one every ~2.5 s), a 3 s outage,
    8 s of silent hubs. Meant for an engine configured with short health and breaker timings."""
    return _rounds(rng, _chaos_kinds(outage_s=3.0, stop_pings_s=8.0, delay_s=2.0), gap_s=2.5, first_s=1.0)


def _random_chaos(rng: random.Random) -> Iterator[ScheduleStep]:
    """The earlier sparse chaos: one random kind every 5-60 s (some kinds may not come up for minutes)."""
    choices = list(_chaos_kinds(outage_s=20.0, stop_pings_s=60.0, delay_s=5.0).items())
    while True:
        kind, kwargs = rng.choice(choices)
        yield rng.uniform(5.0, 60.0), kind, dict(kwargs)


PROFILES: dict[str, Callable[[random.Random], Iterator[ScheduleStep]]] = {
    "none": _none,
    "flaky-network": _flaky_network,
    "chaos": _chaos,
    "chaos-quick": _chaos_quick,
    "random-chaos": _random_chaos,
}
