"""Rate limiter: sliding windows, FIFO lanes, priority, bounded queue, 429 pause, stats; all in virtual time."""

from __future__ import annotations

import functools
import itertools
import math

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from engine.gateway.ratelimit import (
    RateLimiter,
    RateLimitQueueFull,
    Window,
    WindowLimit,
    window_for,
)
from settings import EngineSettings, load_settings

MARGIN = 0.001


def small_limiter(**kwargs: object) -> RateLimiter:
    params: dict[str, object] = {
        "history": WindowLimit(2, 10.0),
        "general": WindowLimit(3, 60.0),
        "queue_size": 10,
        "drop_oldest": True,
        "margin_s": MARGIN,
        "priority_reserve": 0,
    }
    params.update(kwargs)
    return RateLimiter(**params)  # type: ignore[arg-type]


async def acquire_at(limiter: RateLimiter, target: Window | str, log: list[tuple[str, float]], name: str,
                     *, priority: bool = False, start: float = 0.0) -> None:
    await trio.sleep(start)
    try:
        await limiter.acquire(target, priority=priority)
    except RateLimitQueueFull:
        log.append((f"{name}:refused", trio.current_time()))
        return
    log.append((name, trio.current_time()))


def spawn(nursery: trio.Nursery, limiter: RateLimiter, target: Window | str, log: list[tuple[str, float]], name: str,
          *, priority: bool = False, start: float = 0.0) -> None:
    nursery.start_soon(functools.partial(acquire_at, limiter, target, log, name, priority=priority, start=start))


def test_window_for_endpoint_names() -> None:
    assert window_for("History/retrieveBars") is Window.HISTORY
    assert window_for("/api/History/retrieveBars") is Window.HISTORY
    assert window_for("https://api.topstepx.com/api/history/retrievebars/?x=1") is Window.HISTORY
    assert window_for("/api/Order/place") is Window.GENERAL
    assert window_for("/api/Auth/loginKey") is Window.GENERAL


def test_bad_limits_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="requests must be >= 1"):
        WindowLimit(0, 30)
    with pytest.raises(ValueError, match="window_seconds must be > 0"):
        WindowLimit(5, 0)
    with pytest.raises(ValueError, match="queue_size"):
        RateLimiter(queue_size=-1)


async def test_admits_up_to_the_limit_then_waits_for_the_exact_expiry(autojump_clock: object) -> None:
    limiter = small_limiter()
    start = trio.current_time()
    for _ in range(3):
        await limiter.acquire(Window.GENERAL)
    assert trio.current_time() == start
    await trio.sleep(5)
    await limiter.acquire(Window.GENERAL)
    # The oldest stamp (at start) leaves the window at start + 60 s (+ margin), not a tick later.
    assert trio.current_time() == pytest.approx(start + 60 + MARGIN, abs=1e-9)


async def test_window_slides_rather_than_resets(autojump_clock: object) -> None:
    limiter = small_limiter(history=WindowLimit(2, 10.0))
    t0 = trio.current_time()
    await limiter.acquire(Window.HISTORY)  # t0
    await trio.sleep(4)
    await limiter.acquire(Window.HISTORY)  # t0 + 4
    await limiter.acquire(Window.HISTORY)  # must wait for t0's entry: t0 + 10
    assert trio.current_time() - t0 == pytest.approx(10 + MARGIN, abs=1e-9)
    await limiter.acquire(Window.HISTORY)  # then for t0 + 4's entry: t0 + 14
    assert trio.current_time() - t0 == pytest.approx(14 + MARGIN, abs=1e-9)


async def test_windows_are_independent(autojump_clock: object) -> None:
    limiter = small_limiter()
    t0 = trio.current_time()
    await limiter.acquire("History/retrieveBars")
    await limiter.acquire("History/retrieveBars")
    # History is full; the general window is untouched.
    for _ in range(3):
        await limiter.acquire("/api/Order/search")
    assert trio.current_time() == t0
    stats = limiter.stats()
    assert stats.windows[Window.HISTORY].used == 2
    assert stats.windows[Window.GENERAL].used == 3


async def test_fifo_within_a_lane(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 1.0))
    log: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        for i in range(6):
            spawn(nursery, limiter, Window.GENERAL, log, f"r{i}", start=i * 0.01)
    assert [name for name, _ in log] == [f"r{i}" for i in range(6)]
    times = [t for _, t in log]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))


async def test_priority_lane_is_served_before_waiting_reads(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0))
    log: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        spawn(nursery, limiter, Window.GENERAL, log, "first")
        for i in range(3):
            spawn(nursery, limiter, Window.GENERAL, log, f"read{i}", start=0.1 + i * 0.01)
        spawn(nursery, limiter, Window.GENERAL, log, "cancel", priority=True, start=1.0)
        spawn(nursery, limiter, Window.GENERAL, log, "close", priority=True, start=1.1)
    assert [name for name, _ in log] == ["first", "cancel", "close", "read0", "read1", "read2"]


async def test_full_queue_with_drop_oldest_refuses_the_oldest_waiter_at_once(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0), queue_size=2, drop_oldest=True)
    log: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        spawn(nursery, limiter, Window.GENERAL, log, "holder")
        spawn(nursery, limiter, Window.GENERAL, log, "old", start=1)
        spawn(nursery, limiter, Window.GENERAL, log, "mid", start=2)
        spawn(nursery, limiter, Window.GENERAL, log, "new", start=3)
    assert ("old:refused", 3.0) in [(n, round(t - log[0][1], 6)) for n, t in log]
    assert [n for n, _ in log if not n.endswith("refused")] == ["holder", "mid", "new"]
    assert limiter.stats().refused_total == 1


async def test_full_queue_without_drop_oldest_refuses_the_newcomer_at_once(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0), queue_size=2, drop_oldest=False)
    log: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        spawn(nursery, limiter, Window.GENERAL, log, "holder")
        spawn(nursery, limiter, Window.GENERAL, log, "old", start=1)
        spawn(nursery, limiter, Window.GENERAL, log, "mid", start=2)
        spawn(nursery, limiter, Window.GENERAL, log, "new", start=3)
    t0 = log[0][1]
    assert ("new:refused", 3.0) in [(n, round(t - t0, 6)) for n, t in log]
    assert [n for n, _ in log if not n.endswith("refused")] == ["holder", "old", "mid"]


async def test_priority_waiters_are_never_the_ones_dropped(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0), queue_size=2, drop_oldest=False)
    log: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        spawn(nursery, limiter, Window.GENERAL, log, "holder")
        spawn(nursery, limiter, Window.GENERAL, log, "read0", start=1)
        spawn(nursery, limiter, Window.GENERAL, log, "read1", start=2)
        # Queue full of reads: a priority newcomer evicts the oldest read even with dropOldest false.
        spawn(nursery, limiter, Window.GENERAL, log, "cancel0", priority=True, start=3)
        # Now full with [cancel0, read1]: another priority evicts read1.
        spawn(nursery, limiter, Window.GENERAL, log, "cancel1", priority=True, start=4)
        # Full of priority waiters only: a third is queued beyond the bound, a read is refused.
        spawn(nursery, limiter, Window.GENERAL, log, "cancel2", priority=True, start=5)
        spawn(nursery, limiter, Window.GENERAL, log, "read2", start=6)
    names = [n for n, _ in log]
    assert {"read0:refused", "read1:refused", "read2:refused"} <= set(names)
    assert [n for n in names if not n.endswith("refused")] == ["holder", "cancel0", "cancel1", "cancel2"]


async def test_priority_reserve_keeps_the_last_slots_for_enforcement(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(5, 60.0), priority_reserve=2)
    log: list[tuple[str, float]] = []
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(4):
            spawn(nursery, limiter, Window.GENERAL, log, f"read{i}", start=i / 100)
        spawn(nursery, limiter, Window.GENERAL, log, "cancel", priority=True, start=1)
        spawn(nursery, limiter, Window.GENERAL, log, "close", priority=True, start=2)
    at = {name: round(t - t0, 6) for name, t in log}
    # Reads fill only 5 - 2 slots; the fourth waits although two slots are free...
    assert (at["read0"], at["read1"], at["read2"]) == (0, 0.01, 0.02)
    # ...which the enforcement requests take at once instead of waiting a minute behind the reads.
    assert (at["cancel"], at["close"]) == (1, 2)
    # With cancel and close in the window, read3 fits once all three earlier reads have expired (used < 5 - 2).
    assert at["read3"] == round(60.02 + MARGIN, 6)
    assert limiter.stats().windows[Window.GENERAL].reserved_for_priority == 2
    # A reserve can never starve ordinary requests: it is capped at limit - 1.
    assert small_limiter(general=WindowLimit(1, 1.0), priority_reserve=9).stats().windows[
        Window.GENERAL].reserved_for_priority == 0


async def test_record_429_pauses_admission_until_retry_after(autojump_clock: object) -> None:
    limiter = small_limiter()
    t0 = trio.current_time()
    await limiter.acquire(Window.GENERAL)
    assert limiter.record_429(Window.GENERAL, retry_after_s=7.5) == 7.5
    assert limiter.stats().paused_for_s == pytest.approx(7.5)
    await limiter.acquire(Window.GENERAL)
    assert trio.current_time() - t0 == pytest.approx(7.5)
    # The other window is not paused by a general-window 429.
    await limiter.acquire(Window.HISTORY)
    assert trio.current_time() - t0 == pytest.approx(7.5)
    # No Retry-After: a full window length.
    limiter.record_429("History/retrieveBars")
    await limiter.acquire(Window.HISTORY)
    assert trio.current_time() - t0 == pytest.approx(17.5)
    assert limiter.stats().rate_limited_429_total == 2


async def test_pause_for_wakes_an_already_waiting_head_at_the_later_instant(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0))
    log: list[tuple[str, float]] = []
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        spawn(nursery, limiter, Window.GENERAL, log, "holder")
        spawn(nursery, limiter, Window.GENERAL, log, "waiter", start=1)
        await trio.sleep(2)
        limiter.pause_for(30)  # now = t0 + 2: nothing before t0 + 32
    assert log[1][0] == "waiter"
    assert log[1][1] - t0 == pytest.approx(32)


async def test_in_flight_permit_counts_and_is_stamped_when_it_ends(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0))
    t0 = trio.current_time()
    async with limiter.permit("/api/Order/place") as permit:
        assert permit.window is Window.GENERAL
        assert limiter.stats().windows[Window.GENERAL].in_flight == 1
        await trio.sleep(3)  # a slow request
    await limiter.acquire(Window.GENERAL)
    # The window counts from the end of the slow request: the server may have seen it as late as t0 + 3.
    assert trio.current_time() - t0 == pytest.approx(13 + MARGIN, abs=1e-9)


async def test_a_waiter_woken_by_a_release_when_only_in_flight_permits_block(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 5.0))
    log: list[tuple[str, float]] = []
    t0 = trio.current_time()

    async def slow_request() -> None:
        async with limiter.permit(Window.GENERAL):
            await trio.sleep(2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_request)
        spawn(nursery, limiter, Window.GENERAL, log, "next", start=1)
    assert log[0][1] - t0 == pytest.approx(7 + MARGIN, abs=1e-9)


async def test_cancelled_waiter_leaves_the_queue_and_loses_no_slot(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0))
    t0 = trio.current_time()
    await limiter.acquire(Window.GENERAL)
    with trio.move_on_after(3):
        await limiter.acquire(Window.GENERAL)
    assert limiter.queue_depth() == 0
    await limiter.acquire(Window.GENERAL)
    assert trio.current_time() - t0 == pytest.approx(10 + MARGIN, abs=1e-9)
    assert limiter.stats().windows[Window.GENERAL].admitted_total == 2


async def test_body_failure_still_counts_the_attempt(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(1, 10.0))
    with pytest.raises(RuntimeError):
        async with limiter.permit(Window.GENERAL):
            raise RuntimeError("connection reset after send")
    stats = limiter.stats().windows[Window.GENERAL]
    assert (stats.used, stats.in_flight) == (1, 0)


async def test_stats_report_usage_and_queue_depth(autojump_clock: object) -> None:
    limiter = small_limiter(general=WindowLimit(2, 60.0), queue_size=5)
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            await limiter.acquire(Window.GENERAL)
        for _ in range(3):
            nursery.start_soon(limiter.acquire, Window.GENERAL)
        nursery.start_soon(functools.partial(limiter.acquire, Window.GENERAL, priority=True))
        await trio.testing.wait_all_tasks_blocked()
        stats = limiter.stats()
        general = stats.windows[Window.GENERAL]
        assert (general.used, general.limit, general.waiting, general.waiting_priority) == (2, 2, 4, 1)
        assert stats.queue_depth == 4
        assert stats.as_dict()["windows"]["general"]["limit"] == 2
        nursery.cancel_scope.cancel()


def test_from_settings_reads_error_handling_rate_limit() -> None:
    settings = load_settings(env={}, overrides={
        "errorHandling.rateLimit.history.requests": 30,
        "errorHandling.rateLimit.queueSize": 7,
        "errorHandling.rateLimit.dropOldest": False,
    })

    async def main() -> None:
        stats = RateLimiter.from_settings(settings).stats()
        assert stats.windows[Window.HISTORY].limit == 30
        assert stats.windows[Window.HISTORY].window_seconds == 30
        assert (stats.windows[Window.GENERAL].limit, stats.windows[Window.GENERAL].window_seconds) == (200, 60)
        assert stats.queue_size == 7
        assert RateLimiter.from_settings(EngineSettings()).stats().queue_size == 1000

    trio.run(main)


class _StepCounter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


def test_waiting_is_not_a_busy_loop_nor_a_thundering_herd() -> None:
    """200 callers queued on a 5-per-second window: each is woken a small constant number of times, not once per
    expiry (a herd) or once per tick (a poll)."""
    limiter = small_limiter(general=WindowLimit(5, 1.0), queue_size=1000)
    counter = _StepCounter()
    done: list[float] = []

    async def caller() -> None:
        await limiter.acquire(Window.GENERAL)
        done.append(trio.current_time())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(caller)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])
    assert len(done) == 200
    assert max(done) == pytest.approx(39 * (1 + MARGIN), abs=1e-6)  # 40 bursts of 5, one window apart
    assert counter.steps / 200 < 6, counter.steps


# --------------------------------------------------------------------------------------------- property
request_strategy = st.tuples(
    st.floats(min_value=0, max_value=40, allow_nan=False),  # arrival (s)
    st.sampled_from([Window.HISTORY, Window.GENERAL]),
    st.booleans(),  # priority
    st.sampled_from([0.0, 0.0, 0.05, 1.5]),  # time in flight
    st.sampled_from([None, None, None, 2.0]),  # caller gives up after (s)
)


@given(
    requests=st.lists(request_strategy, min_size=1, max_size=40),
    history_limit=st.integers(min_value=1, max_value=4),
    general_limit=st.integers(min_value=1, max_value=6),
    queue_size=st.integers(min_value=0, max_value=8),
    drop_oldest=st.booleans(),
    reserve=st.integers(min_value=0, max_value=3),
)
def test_property_no_window_ever_admits_more_than_its_limit(
    requests: list[tuple[float, Window, bool, float, float | None]],
    history_limit: int,
    general_limit: int,
    queue_size: int,
    drop_oldest: bool,
    reserve: int,
) -> None:
    spans = {Window.HISTORY: 5.0, Window.GENERAL: 7.0}
    limits = {Window.HISTORY: history_limit, Window.GENERAL: general_limit}
    limiter = RateLimiter(
        history=WindowLimit(history_limit, spans[Window.HISTORY]),
        general=WindowLimit(general_limit, spans[Window.GENERAL]),
        queue_size=queue_size,
        drop_oldest=drop_oldest,
        margin_s=0.0,
        priority_reserve=reserve,
        log_events=False,
    )
    # (window, granted_at, released_at) for every admitted request.
    admitted: list[tuple[Window, float, float]] = []

    async def client(arrival: float, window: Window, priority: bool, flight: float, patience: float | None) -> None:
        await trio.sleep(arrival)
        try:
            with trio.fail_after(patience if patience is not None else math.inf):
                async with limiter.permit(window, priority=priority):
                    granted = trio.current_time()
                    await trio.sleep(flight)
                    released = trio.current_time()
        except (RateLimitQueueFull, trio.TooSlowError):
            return
        admitted.append((window, granted, released))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for spec in requests:
                nursery.start_soon(client, *spec)
        assert limiter.queue_depth() == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    # Conservative server model: a request occupies its window from the instant it was admitted until `span`
    # after it ended, so whenever inside [granted, released] the server saw it, its rolling window count can
    # never exceed the limit. Occupancy peaks at admission instants, so checking those suffices.
    for window, granted, _ in admitted:
        occupying = [
            1 for w, g, r in admitted if w is window and g <= granted < r + spans[window]
        ]
        assert len(occupying) <= limits[window], (window, granted, admitted)
