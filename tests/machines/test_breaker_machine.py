"""Unit tests of the circuit breaker: every transition of BreakerChart, the timing rules and the manual overrides."""

from __future__ import annotations

import pytest

from machines import Breaker, BreakerChart, BreakerState, Permit, Transition, TransitionNotAllowed
from tests.machines.conftest import Recorder, chart_edges, run_all_recording_tests


def make(rec: Recorder, threshold: int = 3, probes: int = 2, timeout: float = 10.0) -> Breaker:
    return Breaker(failure_threshold=threshold, half_open_requests=probes, open_timeout_s=timeout, listeners=[rec])


def call(breaker: Breaker, now: float) -> Permit:
    permit = breaker.try_acquire(now)
    assert permit is not None
    return permit


def fail(breaker: Breaker, now: float, cause: str | None = None) -> None:
    breaker.on_failure(now, call(breaker, now), cause)


def breaker_in(state: BreakerState, rec: Recorder) -> Breaker:
    """A breaker (threshold 3, 2 probes, 10 s) brought into ``state`` through its public API."""
    breaker = make(rec)
    if state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
        for _ in range(3):
            fail(breaker, 100.0)
        if state is BreakerState.HALF_OPEN:
            assert call(breaker, 110.0).probe
    elif state is BreakerState.FORCED_OPEN:
        breaker.force_open("operator")
    elif state is BreakerState.DISABLED:
        breaker.disable("operator")
    assert breaker.state is state
    return breaker


def test_consecutive_failures_trip_the_breaker_and_a_success_resets_the_count(rec: Recorder) -> None:
    breaker = make(rec, threshold=3)
    fail(breaker, 1.0, "503")
    fail(breaker, 2.0, "503")
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 2)
    breaker.on_success(3.0, call(breaker, 3.0))
    assert breaker.failures == 0
    fail(breaker, 4.0)
    fail(breaker, 5.0)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 6.0, "timeout")
    assert breaker.state is BreakerState.OPEN
    assert breaker.next_probe_at == 16.0
    assert rec.transitions[-1] == Transition("breaker", "closed", "open", "failure", "timeout", 6.0)
    assert Transition("breaker", "closed", "closed", "failure", "503", 1.0) in rec.transitions


def test_open_refuses_until_the_timeout_then_admits_at_most_the_probe_limit(rec: Recorder) -> None:
    breaker = breaker_in(BreakerState.OPEN, rec)
    assert breaker.try_acquire(109.99) is None
    assert breaker.state is BreakerState.OPEN
    first = call(breaker, 110.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.next_probe_at is None
    call(breaker, 110.5)
    assert breaker.try_acquire(111.0) is None
    assert breaker.probes_in_flight == 2
    breaker.on_success(112.0, first)
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.failures, breaker.probes_in_flight) == (0, 0)
    assert rec.targets[-2:] == ["half_open", "closed"]


def test_a_probe_failure_reopens_and_restarts_the_timeout(rec: Recorder) -> None:
    breaker = breaker_in(BreakerState.HALF_OPEN, rec)
    probe = call(breaker, 111.0)
    breaker.on_failure(115.0, probe, "500")
    assert breaker.state is BreakerState.OPEN
    assert breaker.next_probe_at == 125.0
    assert breaker.try_acquire(124.0) is None
    assert call(breaker, 125.0).probe
    assert rec.edges >= {("half_open", "failure", "open"), ("open", "timeout_elapsed", "half_open")}


def test_an_ignored_call_frees_its_probe_slot(rec: Recorder) -> None:
    breaker = breaker_in(BreakerState.HALF_OPEN, rec)
    probe = call(breaker, 110.0)
    assert breaker.try_acquire(110.0) is None
    breaker.on_ignored(probe)
    assert breaker.probes_in_flight == 1
    assert call(breaker, 111.0).probe
    assert breaker.state is BreakerState.HALF_OPEN


def test_stale_results_change_nothing(rec: Recorder) -> None:
    breaker = make(rec, threshold=1, probes=1)
    early = call(breaker, 100.0)  # admitted while closed, answers much later
    fail(breaker, 100.0)
    assert breaker.state is BreakerState.OPEN
    count = len(rec.transitions)
    breaker.on_failure(101.0, early)
    breaker.on_success(102.0, early)
    breaker.on_ignored(early)
    assert (breaker.state, breaker.next_probe_at, len(rec.transitions)) == (BreakerState.OPEN, 110.0, count)
    probe = call(breaker, 110.0)
    breaker.on_ignored(early)  # a stale cancellation must not free the probe's slot
    breaker.on_success(111.0, early)  # nor does a stale success close the breaker
    assert (breaker.state, breaker.probes_in_flight) == (BreakerState.HALF_OPEN, 1)
    assert breaker.try_acquire(111.0) is None
    breaker.on_success(112.0, probe)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.epoch > probe.epoch


@pytest.mark.parametrize(
    "start", [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.DISABLED]
)
def test_force_open_refuses_everything_until_reset(rec: Recorder, start: BreakerState) -> None:
    breaker = breaker_in(start, rec)
    breaker.force_open("kill switch")
    assert breaker.state is BreakerState.FORCED_OPEN
    assert breaker.try_acquire(10_000.0) is None
    assert breaker.state is BreakerState.FORCED_OPEN
    assert breaker.next_probe_at is None
    breaker.force_open()  # idempotent
    breaker.reset("operator")
    assert breaker.state is BreakerState.CLOSED
    assert rec.transitions[-1].event == "reset"


@pytest.mark.parametrize(
    "start", [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.FORCED_OPEN]
)
def test_disabled_admits_everything_and_counts_nothing(rec: Recorder, start: BreakerState) -> None:
    breaker = breaker_in(start, rec)
    breaker.disable("bypass")
    assert breaker.state is BreakerState.DISABLED
    for t in range(10):
        fail(breaker, float(t))
    assert (breaker.state, breaker.failures) == (BreakerState.DISABLED, 0)
    breaker.disable()  # idempotent
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("start", [BreakerState.OPEN, BreakerState.HALF_OPEN])
def test_reset_closes_an_open_or_half_open_breaker(rec: Recorder, start: BreakerState) -> None:
    breaker = breaker_in(start, rec)
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.failures, breaker.probes_in_flight, breaker.next_probe_at) == (0, 0, None)
    assert call(breaker, 0.0).probe is False


def test_reset_of_a_closed_breaker_clears_the_count_without_a_transition(rec: Recorder) -> None:
    breaker = make(rec)
    fail(breaker, 0.0)
    count = len(rec.transitions)
    breaker.reset()
    assert breaker.failures == 0
    assert len(rec.transitions) == count


def test_threshold_one_and_zero_timeout(rec: Recorder) -> None:
    breaker = make(rec, threshold=1, probes=1, timeout=0.0)
    fail(breaker, 5.0)
    assert breaker.state is BreakerState.OPEN
    assert call(breaker, 5.0).probe
    assert breaker.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize(
    ("threshold", "probes", "timeout", "message"),
    [(0, 1, 1.0, "failure_threshold"), (1, 0, 1.0, "half_open_requests"), (1, 1, -1.0, "open_timeout_s")],
)
def test_bad_settings_are_named(threshold: int, probes: int, timeout: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Breaker(threshold, probes, timeout)


def test_chart_refuses_events_that_are_not_allowed() -> None:
    chart = BreakerChart()
    with pytest.raises(TransitionNotAllowed):
        chart.send("success")
    assert chart.current_state_value == "closed"


def test_listeners_can_be_removed() -> None:
    rec = Recorder()
    breaker = Breaker(1, 1, 1.0, name="breaker:orders")
    breaker.add_listener(rec)
    fail(breaker, 0.0)
    breaker.remove_listener(rec)
    breaker.remove_listener(rec)
    breaker.reset()
    assert [(t.machine, t.target) for t in rec.transitions] == [("breaker:orders", "open")]


def test_every_transition_is_exercised() -> None:
    recorded = run_all_recording_tests(globals())
    missing = chart_edges(BreakerChart) - recorded.edges
    assert not missing, f"transitions without a test: {sorted(missing)}"
