"""Property tests of the hub connection lifecycle over random event sequences (allowed or not)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from machines import ConnectionLifecycle, ConnectionState, TransitionNotAllowed
from tests.machines.conftest import Recorder, assert_chained

IDLE = (ConnectionState.DISCONNECTED, ConnectionState.CONNECTED, ConnectionState.CLOSED)


class ConnectionProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rec = Recorder()
        self.conn = ConnectionLifecycle(1)
        self.failed_in_a_row = 0
        self.reconnects = 0
        self.was_closed = False

    @initialize(max_attempts=st.integers(1, 5))
    def build(self, max_attempts: int) -> None:
        self.conn = ConnectionLifecycle(max_attempts, listeners=[self.rec])

    def attempt(self, event: Callable[[], object]) -> object:
        """Run an event; a refused one must change nothing."""
        before = (self.conn.state, self.conn.attempt, len(self.rec.transitions))
        try:
            return event()
        except TransitionNotAllowed:
            assert (self.conn.state, self.conn.attempt, len(self.rec.transitions)) == before
            return None

    @rule()
    def start(self) -> None:
        self.attempt(self.conn.start)

    @rule()
    def connected(self) -> None:
        state = self.conn.state
        result = self.attempt(self.conn.connected)
        if state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            assert result is (state is ConnectionState.RECONNECTING)
            self.failed_in_a_row = 0
            self.reconnects += state is ConnectionState.RECONNECTING

    @rule(stale=st.booleans())
    def lost(self, stale: bool) -> None:
        state = self.conn.state
        self.attempt(self.conn.stale if stale else lambda: self.conn.lost("socket closed"))
        if state is ConnectionState.CONNECTED:
            assert (self.conn.state, self.conn.attempt) == (ConnectionState.RECONNECTING, 1)

    @rule()
    def attempt_failed(self) -> None:
        state = self.conn.state
        more = self.attempt(self.conn.attempt_failed)
        if state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            self.failed_in_a_row += 1
            assert more is (self.failed_in_a_row < self.conn.max_attempts)

    @rule()
    def give_up(self) -> None:
        self.attempt(lambda: self.conn.give_up("token failed"))

    @rule()
    def close(self) -> None:
        self.attempt(self.conn.close)

    @invariant()
    def attempts_stay_within_the_limit_and_reset_on_success(self) -> None:
        assert 0 <= self.conn.attempt <= self.conn.max_attempts
        assert (self.conn.attempt == 0) == (self.conn.state in IDLE)
        if self.conn.state is not ConnectionState.CLOSED:
            assert self.failed_in_a_row < self.conn.max_attempts
        if self.conn.state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING):
            assert self.conn.attempt == self.failed_in_a_row + 1

    @invariant()
    def reconnects_are_counted(self) -> None:
        assert self.conn.reconnects == self.reconnects

    @invariant()
    def closed_is_final(self) -> None:
        if self.was_closed:
            assert self.conn.state is ConnectionState.CLOSED
        self.was_closed = self.conn.state is ConnectionState.CLOSED

    @invariant()
    def transitions_are_reported_as_one_path(self) -> None:
        assert_chained(self.rec.transitions, "disconnected", self.conn.state)

    def teardown(self) -> None:
        if self.conn.state is not ConnectionState.CLOSED:
            self.conn.close("teardown")
        with pytest.raises(TransitionNotAllowed):
            self.conn.start()


TestConnectionProperties = ConnectionProperties.TestCase
