"""Unit tests of the token lifecycle: every transition of TokenChart, refresh timing, revisions and failures."""

from __future__ import annotations

import pytest

from machines import StaleRevisionError, TokenChart, TokenLifecycle, TokenState, TransitionNotAllowed
from tests.machines.conftest import Recorder, chart_edges, run_all_recording_tests

DAY = 86_400.0
BUFFER = 7_200.0


def valid_token(rec: Recorder, revision: int = 1, now: float = 0.0) -> TokenLifecycle:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    tok.login_started()
    tok.login_succeeded(revision, now + DAY, now)
    return tok


def test_login_gives_a_usable_token_with_refresh_due_at_the_buffer(rec: Recorder) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    assert (tok.state, tok.revision, tok.refresh_due_at, tok.is_usable(0.0)) == (TokenState.NONE, None, None, False)
    tok.login_started()
    assert tok.state is TokenState.AUTHENTICATING
    assert not tok.is_usable(0.0)
    tok.login_succeeded(1, DAY, 0.0)
    assert (tok.state, tok.revision, tok.expires_at) == (TokenState.VALID, 1, DAY)
    assert tok.refresh_due_at == DAY - BUFFER
    assert tok.is_usable(DAY - 1)
    assert not tok.is_usable(DAY)
    assert rec.transitions[-1].at == 0.0


def test_refresh_replaces_the_token_with_a_newer_revision(rec: Recorder) -> None:
    tok = valid_token(rec)
    tok.refresh_started()
    assert tok.state is TokenState.REFRESHING
    assert tok.refresh_due_at is None
    assert tok.is_usable(DAY - BUFFER)
    tok.refresh_succeeded(2, 2 * DAY, DAY - BUFFER)
    assert (tok.state, tok.revision, tok.refresh_due_at) == (TokenState.VALID, 2, 2 * DAY - BUFFER)


def test_an_older_revision_never_replaces_a_newer_one(rec: Recorder) -> None:
    tok = valid_token(rec, revision=5)
    tok.refresh_started()
    for stale in (5, 4):
        with pytest.raises(StaleRevisionError, match=f"revision {stale} is not newer than the current 5"):
            tok.refresh_succeeded(stale, 2 * DAY, 10.0)
    assert (tok.state, tok.revision, tok.expires_at) == (TokenState.REFRESHING, 5, DAY)
    assert tok.is_newer(6) and not tok.is_newer(5)


def test_refresh_failure_falls_back_to_a_new_login(rec: Recorder) -> None:
    tok = valid_token(rec)
    tok.refresh_started()
    tok.refresh_failed(DAY - BUFFER, "validate returned 401")
    assert tok.state is TokenState.AUTHENTICATING
    assert tok.is_usable(DAY - BUFFER)  # the old token still works while the new login runs
    tok.login_succeeded(2, 2 * DAY, DAY - BUFFER + 1)
    assert (tok.state, tok.revision) == (TokenState.VALID, 2)


def test_transient_login_failure_without_a_token_goes_back_to_none(rec: Recorder) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    tok.login_started()
    tok.login_failed(1.0, permanent=False, reason="HTTP 503")
    assert tok.state is TokenState.NONE
    assert rec.transitions[-1].cause == "HTTP 503"
    tok.login_started()
    assert tok.state is TokenState.AUTHENTICATING


def test_transient_relogin_failure_keeps_an_unexpired_token_valid(rec: Recorder) -> None:
    tok = valid_token(rec)
    tok.refresh_started()
    tok.refresh_failed(DAY - BUFFER)
    tok.login_failed(DAY - BUFFER + 1, permanent=False)
    assert tok.state is TokenState.VALID
    assert tok.is_usable(DAY - BUFFER + 1)


def test_transient_relogin_failure_after_expiry_goes_to_expired(rec: Recorder) -> None:
    tok = valid_token(rec)
    tok.refresh_started()
    tok.refresh_failed(DAY - 10)
    tok.login_failed(DAY + 1, permanent=False)
    assert tok.state is TokenState.EXPIRED
    assert not tok.is_usable(DAY + 1)


@pytest.mark.parametrize("had_token", [False, True])
def test_permanent_login_error_ends_in_failed_for_good(rec: Recorder, had_token: bool) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    if had_token:
        tok.login_started()
        tok.login_succeeded(1, DAY, 0.0)
        tok.expire_if_due(DAY)
    tok.login_started()
    tok.login_failed(DAY + 1, permanent=True, reason="agreements not signed")
    assert tok.state is TokenState.FAILED
    assert not tok.is_usable(DAY + 1)
    with pytest.raises(TransitionNotAllowed):
        tok.login_started()
    assert tok.state is TokenState.FAILED


def test_expiry_is_noticed_only_when_due(rec: Recorder) -> None:
    tok = valid_token(rec)
    assert tok.expire_if_due(DAY - 0.001) is False
    assert tok.state is TokenState.VALID
    assert tok.expire_if_due(DAY) is True
    assert tok.state is TokenState.EXPIRED
    assert tok.expire_if_due(DAY + 1) is False
    tok.login_started()
    tok.login_succeeded(2, 2 * DAY, DAY + 1)
    assert tok.state is TokenState.VALID


def test_a_token_rejected_by_the_server_is_expired(rec: Recorder) -> None:
    tok = valid_token(rec)
    tok.invalidated(100.0, "HTTP 401")
    assert tok.state is TokenState.EXPIRED
    assert not tok.is_usable(100.0)
    assert tok.expires_at == 100.0


def test_a_stored_token_is_restored_only_if_unexpired(rec: Recorder) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    assert tok.restore(3, 50.0, 60.0) is False
    assert tok.state is TokenState.NONE
    assert tok.restore(3, DAY, 60.0) is True
    assert (tok.state, tok.revision, tok.refresh_due_at) == (TokenState.VALID, 3, DAY - BUFFER)
    tok.refresh_started()
    with pytest.raises(StaleRevisionError):
        tok.refresh_succeeded(2, 2 * DAY, 70.0)


def test_a_short_lived_token_is_refreshed_at_half_life_not_at_once(rec: Recorder) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    tok.login_started()
    tok.login_succeeded(1, 1000.0 + 3600.0, 1000.0)
    assert tok.refresh_due_at == 1000.0 + 1800.0


def test_an_already_expired_token_is_refused(rec: Recorder) -> None:
    tok = TokenLifecycle(BUFFER, listeners=[rec])
    tok.login_started()
    with pytest.raises(ValueError, match="expires_at"):
        tok.login_succeeded(1, 10.0, 10.0)
    assert tok.state is TokenState.AUTHENTICATING


def test_events_out_of_order_raise_and_change_nothing() -> None:
    tok = TokenLifecycle(BUFFER)
    with pytest.raises(TransitionNotAllowed):
        tok.refresh_started()
    with pytest.raises(TransitionNotAllowed):
        tok.login_succeeded(1, DAY, 0.0)
    with pytest.raises(TransitionNotAllowed):
        tok.invalidated(0.0)
    assert (tok.state, tok.revision) == (TokenState.NONE, None)
    with pytest.raises(ValueError, match="buffer_s"):
        TokenLifecycle(-1)


def test_every_transition_is_exercised() -> None:
    recorded = run_all_recording_tests(globals())
    missing = chart_edges(TokenChart) - recorded.edges
    assert not missing, f"transitions without a test: {sorted(missing)}"
