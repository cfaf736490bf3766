"""Property tests of the circuit breaker: random call/result/override sequences keep its promises."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from machines import Breaker, BreakerState, Permit
from tests.machines.conftest import Recorder, assert_chained

TIME_STEPS = st.sampled_from([0.0, 0.25, 1.0, 4.999, 5.0, 10.0, 30.0])


class BreakerProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rec = Recorder()
        self.now = 0.0
        self.outstanding: list[Permit] = []
        self.model_failures = 0
        self.breaker = Breaker(1, 1, 1.0)

    @initialize(threshold=st.integers(1, 4), probes=st.integers(1, 3), timeout=st.sampled_from([0.0, 5.0, 10.0]))
    def build(self, threshold: int, probes: int, timeout: float) -> None:
        self.breaker = Breaker(threshold, probes, timeout, listeners=[self.rec])

    @rule(dt=TIME_STEPS)
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def acquire(self) -> None:
        state, due = self.breaker.state, self.breaker.next_probe_at
        permit = self.breaker.try_acquire(self.now)
        if state in (BreakerState.CLOSED, BreakerState.DISABLED):
            assert permit is not None and not permit.probe
        elif state is BreakerState.FORCED_OPEN or (state is BreakerState.OPEN and due is not None and self.now < due):
            assert permit is None
            assert self.breaker.state is state
        if permit is not None:
            self.outstanding.append(permit)

    @precondition(lambda self: self.outstanding)
    @rule(data=st.data(), outcome=st.sampled_from(["success", "failure", "ignored"]))
    def complete(self, data: st.DataObject, outcome: str) -> None:
        permit = self.outstanding.pop(data.draw(st.integers(0, len(self.outstanding) - 1)))
        current = permit.epoch == self.breaker.epoch
        state = self.breaker.state
        if outcome == "success":
            self.breaker.on_success(self.now, permit)
            if current and state is BreakerState.CLOSED:
                self.model_failures = 0
            if current and state is BreakerState.HALF_OPEN:
                assert self.breaker.state is BreakerState.CLOSED
        elif outcome == "failure":
            self.breaker.on_failure(self.now, permit, "503")
            if current and state is BreakerState.CLOSED:
                self.model_failures += 1
                expected = BreakerState.OPEN if self.model_failures >= self.breaker.failure_threshold else state
                assert self.breaker.state is expected
            if current and state is BreakerState.HALF_OPEN:
                assert self.breaker.state is BreakerState.OPEN
                assert self.breaker.next_probe_at == self.now + self.breaker.open_timeout_s
        else:
            self.breaker.on_ignored(permit)
        if not current:
            assert self.breaker.state is state  # stale results never move the breaker
        if self.breaker.state is not state:
            self.model_failures = 0

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open("operator")
        self.model_failures = 0

    @rule()
    def disable(self) -> None:
        self.breaker.disable("operator")
        self.model_failures = 0

    @rule()
    def reset(self) -> None:
        self.breaker.reset("operator")
        self.model_failures = 0

    @invariant()
    def half_open_never_lets_more_than_the_probe_limit_through(self) -> None:
        live_probes = [p for p in self.outstanding if p.probe and p.epoch == self.breaker.epoch]
        assert len(live_probes) <= self.breaker.half_open_requests
        assert self.breaker.probes_in_flight <= self.breaker.half_open_requests
        if self.breaker.state is BreakerState.HALF_OPEN:
            assert self.breaker.probes_in_flight == len(live_probes)
        else:
            assert self.breaker.probes_in_flight == 0

    @invariant()
    def closed_counts_consecutive_failures_below_the_threshold(self) -> None:
        if self.breaker.state is BreakerState.CLOSED:
            assert self.breaker.failures == self.model_failures < self.breaker.failure_threshold
        else:
            assert self.breaker.failures == 0

    @invariant()
    def only_an_open_breaker_has_a_probe_time(self) -> None:
        assert (self.breaker.next_probe_at is not None) == (self.breaker.state is BreakerState.OPEN)

    @invariant()
    def transitions_are_reported_as_one_path(self) -> None:
        assert_chained(self.rec.transitions, "closed", self.breaker.state)


TestBreakerProperties = BreakerProperties.TestCase
