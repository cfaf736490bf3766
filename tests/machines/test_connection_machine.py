"""Unit tests of the hub connection lifecycle: every transition of ConnectionChart, attempts and the seed hooks."""

from __future__ import annotations

import pytest

from machines import ConnectionChart, ConnectionLifecycle, ConnectionState, Hook, TransitionNotAllowed, hook_of
from tests.machines.conftest import Recorder, chart_edges, run_all_recording_tests


def connection_in(state: ConnectionState, rec: Recorder, max_attempts: int = 3) -> ConnectionLifecycle:
    conn = ConnectionLifecycle(max_attempts, name="user-hub", listeners=[rec])
    if state is not ConnectionState.DISCONNECTED:
        conn.start()
    if state in (ConnectionState.CONNECTED, ConnectionState.RECONNECTING):
        assert conn.connected() is False
    if state is ConnectionState.RECONNECTING:
        conn.lost("socket closed 1006")
    if state is ConnectionState.CLOSED:
        conn.close("test")
    assert conn.state is state
    return conn


def test_first_connect_is_not_a_reconnect(rec: Recorder) -> None:
    conn = ConnectionLifecycle(max_attempts=3, listeners=[rec])
    assert (conn.state, conn.attempt) == (ConnectionState.DISCONNECTED, 0)
    conn.start()
    assert (conn.state, conn.attempt) == (ConnectionState.CONNECTING, 1)
    assert conn.connected() is False
    assert (conn.state, conn.attempt, conn.reconnects) == (ConnectionState.CONNECTED, 0, 0)
    assert [hook_of(t) for t in rec.transitions[-2:]] == [None, Hook.ONCONNECTED]


def test_lost_connection_reconnects_and_reports_the_reconnect(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.CONNECTED, rec)
    conn.lost("socket closed 1006")
    assert (conn.state, conn.attempt) == (ConnectionState.RECONNECTING, 1)
    assert rec.transitions[-1].cause == "socket closed 1006"
    assert hook_of(rec.transitions[-1]) is Hook.ONRECONNECTING
    assert conn.attempt_failed("refused") is True
    assert conn.attempt == 2
    assert hook_of(rec.transitions[-1]) is None
    assert conn.connected() is True
    assert (conn.state, conn.attempt, conn.reconnects) == (ConnectionState.CONNECTED, 0, 1)
    assert hook_of(rec.transitions[-1]) is Hook.ONRECONNECTED


def test_a_stale_connection_is_a_lost_connection(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.CONNECTED, rec)
    conn.stale()
    assert (conn.state, conn.attempt) == (ConnectionState.RECONNECTING, 1)
    last = rec.transitions[-1]
    assert (last.event, last.cause, hook_of(last)) == ("heartbeat_missed", "heartbeat missed", Hook.ONRECONNECTING)
    assert conn.connected() is True


def test_reconnecting_gives_up_after_max_attempts(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.RECONNECTING, rec, max_attempts=3)
    assert conn.attempt_failed() is True
    assert conn.attempt_failed() is True
    assert conn.attempt == 3
    assert conn.attempt_failed("refused") is False
    assert (conn.state, conn.attempt) == (ConnectionState.CLOSED, 0)
    assert hook_of(rec.transitions[-1]) is Hook.ONCLOSE
    assert rec.transitions[-1].source == "reconnecting"


def test_the_first_connect_also_counts_its_attempts(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.CONNECTING, rec, max_attempts=2)
    assert conn.attempt_failed("dns") is True
    assert conn.attempt == 2
    assert conn.attempt_failed("dns") is False
    assert conn.state is ConnectionState.CLOSED
    assert rec.edges >= {("connecting", "attempt_failed", "connecting"), ("connecting", "attempt_failed", "closed")}


def test_attempts_reset_on_success(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.RECONNECTING, rec, max_attempts=3)
    conn.attempt_failed()
    conn.attempt_failed()
    assert conn.connected() is True
    conn.lost("again")
    assert conn.attempt == 1
    assert conn.attempt_failed() is True
    assert conn.attempt_failed() is True
    assert conn.state is ConnectionState.RECONNECTING


@pytest.mark.parametrize("start", [ConnectionState.CONNECTING, ConnectionState.RECONNECTING])
def test_give_up_closes_at_once(rec: Recorder, start: ConnectionState) -> None:
    conn = connection_in(start, rec)
    conn.give_up("token failed permanently")
    assert (conn.state, conn.attempt) == (ConnectionState.CLOSED, 0)
    assert hook_of(rec.transitions[-1]) is Hook.ONCLOSE


@pytest.mark.parametrize(
    "start",
    [ConnectionState.DISCONNECTED, ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.RECONNECTING],
)
def test_close_from_every_live_state_is_final(rec: Recorder, start: ConnectionState) -> None:
    conn = connection_in(start, rec)
    conn.close("shutdown")
    assert conn.state is ConnectionState.CLOSED
    conn.close()  # idempotent
    assert [t.target for t in rec.transitions].count("closed") >= 1
    for event in (conn.start, conn.connected, lambda: conn.lost("x"), conn.attempt_failed):
        with pytest.raises(TransitionNotAllowed):
            event()
    assert conn.state is ConnectionState.CLOSED


def test_events_out_of_order_raise_and_change_nothing(rec: Recorder) -> None:
    conn = connection_in(ConnectionState.CONNECTING, rec)
    with pytest.raises(TransitionNotAllowed):
        conn.lost("not connected yet")
    with pytest.raises(TransitionNotAllowed):
        conn.stale()
    assert (conn.state, conn.attempt) == (ConnectionState.CONNECTING, 1)
    connected = connection_in(ConnectionState.CONNECTED, Recorder())
    with pytest.raises(TransitionNotAllowed):
        connected.attempt_failed()
    with pytest.raises(TransitionNotAllowed):
        connected.give_up("x")
    assert connected.state is ConnectionState.CONNECTED


def test_bad_max_attempts_is_named() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        ConnectionLifecycle(0)


def test_every_transition_is_exercised() -> None:
    recorded = run_all_recording_tests(globals())
    missing = chart_edges(ConnectionChart) - recorded.edges
    assert not missing, f"transitions without a test: {sorted(missing)}"
