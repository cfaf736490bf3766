"""Property tests of the token lifecycle: revisions only grow, failed is final, usability follows expiry."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from machines import StaleRevisionError, TokenLifecycle, TokenState, TransitionNotAllowed
from tests.machines.conftest import Recorder, assert_chained

LIFETIMES = st.sampled_from([60.0, 3_600.0, 86_400.0])
REVISIONS = st.integers(0, 12)


class TokenProperties(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rec = Recorder()
        self.now = 0.0
        self.tok = TokenLifecycle(0.0)
        self.revisions_seen: list[int] = []
        self.was_failed = False

    @initialize(buffer_s=st.sampled_from([0.0, 30.0, 7_200.0]))
    def build(self, buffer_s: float) -> None:
        self.tok = TokenLifecycle(buffer_s, listeners=[self.rec])

    def snapshot(self) -> tuple[object, ...]:
        tok = self.tok
        return tok.state, tok.revision, tok.expires_at, tok.refresh_due_at, len(self.rec.transitions)

    def attempt(self, event: Callable[[], object], revision: int | None = None) -> None:
        """Run an event; a refused one (not allowed, stale revision, expired token) must change nothing."""
        before = self.snapshot()
        newer = revision is None or self.tok.is_newer(revision)
        try:
            event()
        except (TransitionNotAllowed, ValueError) as exc:
            assert self.snapshot() == before
            if revision is not None and not newer:
                assert isinstance(exc, StaleRevisionError | TransitionNotAllowed)
            return
        assert newer, "a stale revision was accepted"

    @rule(dt=st.sampled_from([1.0, 30.0, 1_800.0, 7_200.0, 40_000.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def login_started(self) -> None:
        self.attempt(self.tok.login_started)

    @rule(revision=REVISIONS, lifetime=LIFETIMES)
    def login_succeeded(self, revision: int, lifetime: float) -> None:
        self.attempt(lambda: self.tok.login_succeeded(revision, self.now + lifetime, self.now), revision)

    @rule(permanent=st.booleans())
    def login_failed(self, permanent: bool) -> None:
        state = self.tok.state
        self.attempt(lambda: self.tok.login_failed(self.now, permanent=permanent, reason="HTTP 503"))
        if state is TokenState.AUTHENTICATING and permanent:
            assert self.tok.state is TokenState.FAILED

    @rule()
    def refresh_started(self) -> None:
        self.attempt(self.tok.refresh_started)

    @rule(revision=REVISIONS, lifetime=LIFETIMES)
    def refresh_succeeded(self, revision: int, lifetime: float) -> None:
        self.attempt(lambda: self.tok.refresh_succeeded(revision, self.now + lifetime, self.now), revision)

    @rule()
    def refresh_failed(self) -> None:
        state = self.tok.state
        self.attempt(lambda: self.tok.refresh_failed(self.now, "HTTP 401"))
        if state is TokenState.REFRESHING:
            assert self.tok.state is TokenState.AUTHENTICATING  # falls back to re-authentication

    @rule()
    def expire_if_due(self) -> None:
        self.attempt(lambda: self.tok.expire_if_due(self.now))

    @rule()
    def invalidated(self) -> None:
        self.attempt(lambda: self.tok.invalidated(self.now, "HTTP 401"))

    @rule(revision=REVISIONS, remaining=st.sampled_from([-10.0, 100.0, 86_400.0]))
    def restore(self, revision: int, remaining: float) -> None:
        self.attempt(lambda: self.tok.restore(revision, self.now + remaining, self.now), revision)

    @invariant()
    def revisions_only_grow(self) -> None:
        revision = self.tok.revision
        if revision is not None and (not self.revisions_seen or self.revisions_seen[-1] != revision):
            assert not self.revisions_seen or revision > self.revisions_seen[-1]
            self.revisions_seen.append(revision)

    @invariant()
    def failed_is_final_and_quiet(self) -> None:
        if self.was_failed:
            assert self.tok.state is TokenState.FAILED
            assert self.rec.transitions[-1].target == "failed"  # no retry storm: nothing happens after it
        self.was_failed = self.tok.state is TokenState.FAILED

    @invariant()
    def usable_only_while_held_and_unexpired(self) -> None:
        tok = self.tok
        if tok.is_usable(self.now):
            assert tok.expires_at is not None and self.now < tok.expires_at
            assert tok.state in (TokenState.VALID, TokenState.REFRESHING, TokenState.AUTHENTICATING)
        if tok.state in (TokenState.NONE, TokenState.EXPIRED, TokenState.FAILED):
            assert not tok.is_usable(self.now)

    @invariant()
    def refresh_is_due_before_expiry(self) -> None:
        tok = self.tok
        if tok.state is TokenState.VALID:
            assert tok.refresh_due_at is not None and tok.expires_at is not None
            assert tok.refresh_due_at <= tok.expires_at
        else:
            assert tok.refresh_due_at is None

    @invariant()
    def transitions_are_reported_as_one_path(self) -> None:
        assert_chained(self.rec.transitions, "none", self.tok.state)


TestTokenProperties = TokenProperties.TestCase
