"""Client-side rate limiter for the Gateway REST API (seed GAP-API-007).

Why: the Gateway answers 429 once a rolling window is exceeded (``History/retrieveBars``: 50 per 30 s; every other
endpoint: 200 per 60 s; logins count too), and a 429 on a risk-enforcement cancel or close is exactly the failure
this engine exists to prevent. So the limiter paces requests *before* they reach the wire:

- Two independent sliding windows (``Window.HISTORY`` and ``Window.GENERAL``). A request counts against exactly one
  of them, chosen from its endpoint by :func:`window_for`. Every attempt that may reach the wire counts, retries and
  login attempts included: callers take one permit per attempt.
- A permit is *in flight* while the request runs and is stamped into its window when it ends
  (:meth:`RateLimiter.permit`). The server saw the request somewhere between the two instants, so stamping at the
  end means our window never forgets a request before the server does. ``margin_s`` adds a little
  slack on top for clock granularity.
- Callers that find no capacity wait in a bounded queue (``queue_size`` waiters in total). When it is full,
  ``drop_oldest`` chooses who is refused: the oldest ordinary waiter (``True``) or the newcomer (``False``). The
  refused caller gets :class:`RateLimitQueueFull` at once, never a hang.
- A priority lane for risk enforcement (cancel, close): priority waiters are served before ordinary ones, FIFO within
  the lane, and are never the ones refused (a priority newcomer that finds the queue full of priority waiters is
  queued beyond the bound rather than refused: enforcement traffic is rare and must not be lost). Jumping the queue
  is not enough when reads have filled the window (a cancel would still wait up to a full minute), so ordinary
  requests may fill the GENERAL window only up to ``limit - priority_reserve``: the last few slots are kept for
  enforcement (default 5 of 200, i.e. 2.5% of the throughput, for an immediate cancel/close burst).
- If a 429 arrives anyway, :meth:`RateLimiter.record_429` / :meth:`RateLimiter.pause_for` stop admissions until the
  server's ``Retry-After`` has passed.

Timing is on the Trio clock only, and nothing polls: the waiter at the head of a window's queue sleeps until the
exact instant the oldest entry of that window expires (or the pause ends); every other waiter sleeps on an event
until it is granted, refused or becomes the head. There is no background task, so the limiter needs no nursery.
"""

from __future__ import annotations

import enum
import itertools
import logging
import math
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

HISTORY_ENDPOINT = "History/retrieveBars"


class Window(enum.Enum):
    """The two independent rolling windows of the Gateway."""

    HISTORY = "history"
    GENERAL = "general"


def window_for(endpoint: str) -> Window:
    """The window an endpoint counts against: ``History/retrieveBars`` -> HISTORY, anything else -> GENERAL.

    Accepts a bare endpoint (``"History/retrieveBars"``), a path (``"/api/History/retrieveBars"``) or a full URL;
    the comparison ignores case and a trailing slash or query string.
    """
    path = endpoint.split("?", 1)[0].rstrip("/").lower()
    return Window.HISTORY if path.endswith(HISTORY_ENDPOINT.lower()) else Window.GENERAL


class RateLimitQueueFull(Exception):
    """The limiter's waiting queue was full and this caller was the one refused (nothing was sent)."""

    def __init__(self, window: Window, queue_size: int) -> None:
        super().__init__(
            f"rate limiter queue full ({queue_size} waiting): request refused before sending "
            f"(window {window.value!r}); retry later or raise errorHandling.rateLimit.queueSize"
        )
        self.window = window
        self.queue_size = queue_size


@dataclass(frozen=True)
class WindowLimit:
    """``requests`` per ``window_seconds`` (a rolling window)."""

    requests: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError(f"rate limit requests must be >= 1, got {self.requests}")
        if not self.window_seconds > 0:
            raise ValueError(f"rate limit window_seconds must be > 0, got {self.window_seconds}")


@dataclass(frozen=True)
class WindowStats:
    """Usage of one window at the instant of the snapshot (for a dashboard)."""

    window: Window
    used: int  # requests stamped inside the rolling window, plus those in flight
    in_flight: int
    limit: int
    window_seconds: float
    waiting: int
    waiting_priority: int
    admitted_total: int
    reserved_for_priority: int


@dataclass(frozen=True)
class RateLimiterStats:
    windows: dict[Window, WindowStats]
    queue_depth: int
    queue_size: int
    refused_total: int
    rate_limited_429_total: int
    paused_for_s: float  # remaining pause after a 429 (0 when not paused)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "windows": {
                w.value: {
                    "used": s.used,
                    "in_flight": s.in_flight,
                    "limit": s.limit,
                    "window_seconds": s.window_seconds,
                    "waiting": s.waiting,
                    "waiting_priority": s.waiting_priority,
                    "admitted_total": s.admitted_total,
                    "reserved_for_priority": s.reserved_for_priority,
                }
                for w, s in self.windows.items()
            },
            "queue_depth": self.queue_depth,
            "queue_size": self.queue_size,
            "refused_total": self.refused_total,
            "rate_limited_429_total": self.rate_limited_429_total,
            "paused_for_s": self.paused_for_s,
        }


class _State(enum.Enum):
    WAITING = "waiting"
    GRANTED = "granted"
    REFUSED = "refused"


class _Waiter:
    __slots__ = ("nudge", "priority", "seq", "state", "window")

    def __init__(self, seq: int, window: Window, priority: bool) -> None:
        self.seq = seq
        self.window = window
        self.priority = priority
        self.state = _State.WAITING
        self.nudge = trio.Event()


class _WindowState:
    """Book-keeping of one window: stamps of finished requests (ascending), in-flight count, two FIFO lanes."""

    def __init__(self, window: Window, limit: WindowLimit, margin_s: float, reserve: int) -> None:
        self.window = window
        self.limit = limit.requests
        self.reserve = max(0, min(reserve, limit.requests - 1))
        self.span = limit.window_seconds + margin_s
        self.window_seconds = limit.window_seconds
        self.stamps: deque[float] = deque()
        self.in_flight = 0
        self.priority: OrderedDict[int, _Waiter] = OrderedDict()
        self.normal: OrderedDict[int, _Waiter] = OrderedDict()
        self.paused_until = -math.inf
        self.timekeeper: _Waiter | None = None
        self.admitted_total = 0

    def prune(self, now: float) -> None:
        stamps = self.stamps
        while stamps and stamps[0] + self.span <= now:
            stamps.popleft()

    def cap(self, priority: bool) -> int:
        """How many requests of this lane the window may hold: ordinary ones leave ``reserve`` to the priority lane."""
        return self.limit if priority else self.limit - self.reserve

    def has_capacity(self, now: float, priority: bool) -> bool:
        self.prune(now)
        return now >= self.paused_until and len(self.stamps) + self.in_flight < self.cap(priority)

    def head(self) -> _Waiter | None:
        for lane in (self.priority, self.normal):
            if lane:
                return next(iter(lane.values()))
        return None

    def waiting(self) -> int:
        return len(self.priority) + len(self.normal)

    def next_free_at(self, now: float, priority: bool) -> float:
        """The earliest instant at which a ``priority`` lane request may fit without any other event (``inf`` if
        only a release can make room)."""
        self.prune(now)
        at = now
        cap = self.cap(priority)
        if len(self.stamps) + self.in_flight >= cap:
            # Capacity returns when enough stamps expire; in-flight permits only free up on release.
            excess = len(self.stamps) + self.in_flight - cap  # >= 0
            at = self.stamps[excess] + self.span if excess < len(self.stamps) else math.inf
        return max(at, self.paused_until)


class Permit:
    """One admission. :meth:`release` (idempotent) stamps it into its window at the current Trio time."""

    __slots__ = ("_limiter", "_released", "window")

    def __init__(self, limiter: RateLimiter, window: Window) -> None:
        self._limiter = limiter
        self.window = window
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._finish(self.window)


class RateLimiter:
    """Two sliding windows, a bounded FIFO queue with a priority lane, and a 429 pause. See the module docstring.

    Use :meth:`permit` around each attempt (the usual way), or :meth:`acquire` when the request cannot be wrapped
    (its window entry is then stamped at admission). Single Trio run only; not thread-safe.
    """

    def __init__(
        self,
        *,
        history: WindowLimit = WindowLimit(50, 30.0),
        general: WindowLimit = WindowLimit(200, 60.0),
        queue_size: int = 1000,
        drop_oldest: bool = True,
        margin_s: float = 0.001,
        priority_reserve: int = 5,
        log_events: bool = True,
    ) -> None:
        if queue_size < 0:
            raise ValueError(f"rate limiter queue_size must be >= 0, got {queue_size}")
        if margin_s < 0:
            raise ValueError(f"rate limiter margin_s must be >= 0, got {margin_s}")
        if priority_reserve < 0:
            raise ValueError(f"rate limiter priority_reserve must be >= 0, got {priority_reserve}")
        self._windows = {
            Window.HISTORY: _WindowState(Window.HISTORY, history, margin_s, 0),
            Window.GENERAL: _WindowState(Window.GENERAL, general, margin_s, priority_reserve),
        }
        self._queue_size = queue_size
        self._drop_oldest = drop_oldest
        self._seq = itertools.count()
        self._refused_total = 0
        self._429_total = 0
        self._log_events = log_events

    @classmethod
    def from_settings(cls, settings: EngineSettings, **kwargs: Any) -> RateLimiter:
        """Build from ``EngineSettings`` (``error_handling.rate_limit``); keyword arguments override."""
        rl = settings.error_handling.rate_limit
        params: dict[str, Any] = {
            "history": WindowLimit(rl.history.requests, float(rl.history.window_seconds)),
            "general": WindowLimit(rl.general.requests, float(rl.general.window_seconds)),
            "queue_size": rl.queue_size,
            "drop_oldest": rl.drop_oldest,
            "log_events": settings.logging.resilience.rate_limit,
        }
        params.update(kwargs)
        return cls(**params)

    # ----------------------------------------------------------------------------------------------- admission
    @asynccontextmanager
    async def permit(self, target: Window | str, *, priority: bool = False) -> AsyncIterator[Permit]:
        """Wait for a slot, run the body (the one HTTP attempt), then stamp the slot at the end of the body.

        ``target`` is a :class:`Window` or an endpoint (see :func:`window_for`). ``priority=True`` for risk
        enforcement (cancel, close). Raises :class:`RateLimitQueueFull` if refused. The slot is stamped even when
        the body raises or is cancelled: the request may have reached the server.
        """
        granted = await self._admit(target, priority)
        try:
            yield granted
        finally:
            granted.release()

    async def acquire(self, target: Window | str, *, priority: bool = False) -> None:
        """Wait for a slot and stamp it now (for callers that cannot wrap the request in :meth:`permit`)."""
        granted = await self._admit(target, priority)
        granted.release()

    async def _admit(self, target: Window | str, priority: bool) -> Permit:
        window = target if isinstance(target, Window) else window_for(target)
        state = self._windows[window]
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        fast = (not state.priority if priority else state.waiting() == 0) and state.has_capacity(now, priority)
        if fast:
            self._grant_now(state)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return Permit(self, window)
        waiter = self._enqueue(state, priority)
        try:
            while waiter.state is _State.WAITING:
                waiter.nudge = trio.Event()
                deadline = (
                    state.next_free_at(trio.current_time(), priority) if state.timekeeper is waiter else math.inf
                )
                with trio.move_on_at(deadline):
                    await waiter.nudge.wait()
                if waiter.state is _State.WAITING and trio.current_time() >= deadline:
                    self._pump(state)
        except BaseException:
            if waiter.state is _State.GRANTED:
                # Granted in the same instant the caller was cancelled: nothing was sent, give the slot back.
                state.in_flight -= 1
                state.admitted_total -= 1
            elif waiter.state is _State.WAITING:
                self._remove(waiter)
            self._pump(state)
            raise
        if waiter.state is _State.REFUSED:
            raise RateLimitQueueFull(window, self._queue_size)
        return Permit(self, window)

    def _grant_now(self, state: _WindowState) -> None:
        state.in_flight += 1
        state.admitted_total += 1

    def _enqueue(self, state: _WindowState, priority: bool) -> _Waiter:
        waiter = _Waiter(next(self._seq), state.window, priority)
        if self.queue_depth() >= self._queue_size:
            victim = self._oldest_normal_waiter()
            if priority or self._drop_oldest:
                if victim is not None:
                    self._refuse(victim)
                elif not priority:
                    # Only priority waiters are queued: they are never dropped, so the newcomer is refused.
                    self._refuse_newcomer(state.window)
            else:
                self._refuse_newcomer(state.window)
        (state.priority if priority else state.normal)[waiter.seq] = waiter
        self._elect_timekeeper(state)
        return waiter

    def _refuse_newcomer(self, window: Window) -> None:
        self._refused_total += 1
        if self._log_events:
            log.warning("rate limiter queue full: refusing a new %s request", window.value)
        raise RateLimitQueueFull(window, self._queue_size)

    def _refuse(self, victim: _Waiter) -> None:
        self._remove(victim)
        victim.state = _State.REFUSED
        victim.nudge.set()
        self._refused_total += 1
        if self._log_events:
            log.warning("rate limiter queue full: refusing the oldest waiting %s request", victim.window.value)
        self._elect_timekeeper(self._windows[victim.window])

    def _oldest_normal_waiter(self) -> _Waiter | None:
        heads = [next(iter(s.normal.values())) for s in self._windows.values() if s.normal]
        return min(heads, key=lambda w: w.seq) if heads else None

    def _remove(self, waiter: _Waiter) -> None:
        state = self._windows[waiter.window]
        (state.priority if waiter.priority else state.normal).pop(waiter.seq, None)
        if state.timekeeper is waiter:
            state.timekeeper = None

    def _pump(self, state: _WindowState) -> None:
        """Grant as many waiters of ``state`` as capacity allows (priority lane first), then re-elect the head."""
        now = trio.current_time()
        while True:
            head = state.head()
            if head is None or not state.has_capacity(now, head.priority):
                break
            self._remove(head)
            head.state = _State.GRANTED
            self._grant_now(state)
            head.nudge.set()
        self._elect_timekeeper(state)

    def _elect_timekeeper(self, state: _WindowState) -> None:
        """Make the head waiter the one that sleeps until capacity returns; wake it if it is new, to arm its timer."""
        head = state.head()
        if head is not state.timekeeper:
            state.timekeeper = head
            if head is not None:
                head.nudge.set()

    def _finish(self, window: Window) -> None:
        state = self._windows[window]
        state.in_flight -= 1
        now = trio.current_time()
        state.stamps.append(now)
        if state.waiting():
            # A release frees no capacity now, but it may move the instant capacity returns; re-arm the head.
            head = state.timekeeper
            if head is not None and head.state is _State.WAITING:
                head.nudge.set()
            self._pump(state)

    # ----------------------------------------------------------------------------------------------- 429s and pauses
    def pause_for(self, seconds: float, window: Window | None = None) -> None:
        """Admit nothing (in ``window``, or in both when ``None``) for ``seconds`` from now. Never shortens a pause."""
        until = trio.current_time() + max(0.0, seconds)
        states = self._windows.values() if window is None else (self._windows[window],)
        for state in states:
            if until > state.paused_until:
                state.paused_until = until
                if state.timekeeper is not None:
                    state.timekeeper.nudge.set()  # re-arm its timer at the later instant

    def record_429(self, target: Window | str, retry_after_s: float | None = None) -> float:
        """Count a 429 and pause ``target``'s window: for ``Retry-After`` if given, else one full window length.

        Returns the pause applied (seconds). A full window is the safe default: every request we sent before the
        429 has then left the server's window too.
        """
        window = target if isinstance(target, Window) else window_for(target)
        self._429_total += 1
        pause = retry_after_s if retry_after_s is not None else self._windows[window].window_seconds
        if self._log_events:
            log.warning("rate limited (429) on the %s window: pausing it for %.3f s", window.value, pause)
        self.pause_for(pause, window)
        return pause

    # ----------------------------------------------------------------------------------------------- stats
    def queue_depth(self) -> int:
        return sum(s.waiting() for s in self._windows.values())

    def stats(self) -> RateLimiterStats:
        """A snapshot for a dashboard. Must be called inside a Trio run (reads the Trio clock)."""
        now = trio.current_time()
        windows: dict[Window, WindowStats] = {}
        paused = 0.0
        for w, s in self._windows.items():
            s.prune(now)
            windows[w] = WindowStats(
                window=w,
                used=len(s.stamps) + s.in_flight,
                in_flight=s.in_flight,
                limit=s.limit,
                window_seconds=s.window_seconds,
                waiting=s.waiting(),
                waiting_priority=len(s.priority),
                admitted_total=s.admitted_total,
                reserved_for_priority=s.reserve,
            )
            paused = max(paused, s.paused_until - now)
        return RateLimiterStats(
            windows=windows,
            queue_depth=self.queue_depth(),
            queue_size=self._queue_size,
            refused_total=self._refused_total,
            rate_limited_429_total=self._429_total,
            paused_for_s=max(0.0, paused),
        )
