"""Session token lifecycle: log in, refresh before expiry, fall back to a fresh login, stop on permanent errors.

What it models (the seed's GAP-API-001 / SCENARIO-005 and ``authentication.tokenRefresh``):

- ``none`` -> ``authenticating`` -> ``valid``: a login (user name + API key) yields a token, its ``expires_at`` and a
  *revision* (a number the driver gives every token it obtains; it must grow). A token loaded from storage enters
  ``valid`` directly (:meth:`TokenLifecycle.restore`).
- ``valid`` -> ``refreshing`` -> ``valid``: the refresh is due ``buffer_s`` before expiry (2 h in the seed). If the
  token's whole lifetime is shorter than the buffer, the refresh is due at half its remaining life, never "now"
  (a refresh loop would be a retry storm).
- a failed refresh falls back to re-authentication: ``refreshing`` -> ``authenticating``.
- a permanent login error (bad credentials, agreements not signed, no API subscription) ends in ``failed``, which
  is final: nothing retries automatically, a human has to act.
- a transient login error goes back to whatever token is still held: ``valid`` if it has not expired yet (the driver
  retries with its backoff), ``expired`` if it has, ``none`` if there never was one.
- ``valid`` -> ``expired`` when the driver notices the expiry (:meth:`TokenLifecycle.expire_if_due`) or the server
  rejects the token (:meth:`TokenLifecycle.invalidated`). From ``expired`` only a new login helps.

Invariant: every accepted token has a higher revision than the one before; an older revision never replaces a newer
one (:class:`StaleRevisionError`, state unchanged). The machine never sees the token string itself, so it cannot leak.

Driver usage (the single-flight token manager; times are Trio-clock seconds)::

    tok = TokenLifecycle(buffer_s=7200)
    tok.login_started()
    try:
        token, expires_at = await login()
    except PermanentLoginError as exc:
        tok.login_failed(now, permanent=True, reason=exc.code_name)
    else:
        tok.login_succeeded(next_revision, expires_at, now)
    ...  # sleep until tok.refresh_due_at, then tok.refresh_started(); refresh_succeeded(...) / refresh_failed(...)
    tok.is_usable(now)  # before every request
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from statemachine import State, StateMachine

from machines.observe import Lifecycle, TransitionListener


class TokenState(StrEnum):
    NONE = "none"
    AUTHENTICATING = "authenticating"
    VALID = "valid"
    REFRESHING = "refreshing"
    EXPIRED = "expired"
    FAILED = "failed"


class StaleRevisionError(ValueError):
    """A token whose revision is not newer than the current one was offered."""


class TokenChart(StateMachine):
    """Session token: login, proactive refresh, fallback to re-authentication, permanent failure."""

    none = State("No token", initial=True)
    authenticating = State("Authenticating")
    valid = State("Valid")
    refreshing = State("Refreshing")
    expired = State("Expired")
    failed = State("Failed", final=True)

    restore = none.to(valid)
    login_started = none.to(authenticating) | expired.to(authenticating)
    login_succeeded = authenticating.to(valid)
    login_failed = (
        authenticating.to(failed, cond="permanent")
        | authenticating.to(valid, cond="token_still_valid")
        | authenticating.to(expired, cond="token_held")
        | authenticating.to(none)
    )
    refresh_started = valid.to(refreshing)
    refresh_succeeded = refreshing.to(valid)
    refresh_failed = refreshing.to(authenticating)
    expire = valid.to(expired)
    invalidated = valid.to(expired)

    def permanent(self, permanent: bool = False) -> bool:
        return permanent

    def token_still_valid(self, token_still_valid: bool = False) -> bool:
        return token_still_valid

    def token_held(self, token_held: bool = False) -> bool:
        return token_held


class TokenLifecycle(Lifecycle):
    """Typed driver-facing API of :class:`TokenChart`; see the module docstring."""

    def __init__(self, buffer_s: float, *, name: str = "token", listeners: Iterable[TransitionListener] = ()) -> None:
        if buffer_s < 0:
            raise ValueError(f"buffer_s must be >= 0, got {buffer_s}")
        super().__init__(TokenChart(), name, listeners)
        self.buffer_s = float(buffer_s)
        self._revision: int | None = None
        self._expires_at: float | None = None
        self._refresh_due_at: float | None = None

    @property
    def state(self) -> TokenState:
        return TokenState(self._state_id)

    @property
    def revision(self) -> int | None:
        """Revision of the token held (``None`` before the first one)."""
        return self._revision

    @property
    def expires_at(self) -> float | None:
        """Trio-clock expiry of the token held."""
        return self._expires_at

    @property
    def refresh_due_at(self) -> float | None:
        """While valid: when the proactive refresh is due. Otherwise ``None``."""
        return self._refresh_due_at if self.state is TokenState.VALID else None

    def is_usable(self, now: float) -> bool:
        """A token is held, has not expired and was not rejected (also true while a refresh or re-login runs)."""
        if self._expires_at is None or now >= self._expires_at:
            return False
        return self.state in (TokenState.VALID, TokenState.REFRESHING, TokenState.AUTHENTICATING)

    def is_newer(self, revision: int) -> bool:
        """Would a token with this revision be accepted?"""
        return self._revision is None or revision > self._revision

    def restore(self, revision: int, expires_at: float, now: float) -> bool:
        """Adopt a token loaded from storage. Returns ``False`` (and stays in ``none``) if it has already expired."""
        self._check_revision(revision)
        if expires_at <= now:
            return False
        self._fire("restore", at=now, update=lambda: self._adopt(revision, expires_at, now))
        return True

    def login_started(self) -> None:
        self._fire("login_started")

    def login_succeeded(self, revision: int, expires_at: float, now: float) -> None:
        self._check_token(revision, expires_at, now)
        self._fire("login_succeeded", at=now, update=lambda: self._adopt(revision, expires_at, now))

    def login_failed(self, now: float, *, permanent: bool, reason: str | None = None) -> None:
        """The login failed; ``permanent`` errors end in ``failed`` (no automatic retry)."""
        held = self._expires_at is not None
        self._fire(
            "login_failed",
            cause=reason,
            at=now,
            permanent=permanent,
            token_still_valid=held and self.is_usable(now),
            token_held=held,
        )

    def refresh_started(self) -> None:
        self._fire("refresh_started")

    def refresh_succeeded(self, revision: int, expires_at: float, now: float) -> None:
        self._check_token(revision, expires_at, now)
        self._fire("refresh_succeeded", at=now, update=lambda: self._adopt(revision, expires_at, now))

    def refresh_failed(self, now: float, reason: str | None = None) -> None:
        """The refresh failed: fall back to a fresh login (the driver starts it at once)."""
        self._fire("refresh_failed", cause=reason, at=now)

    def expire_if_due(self, now: float) -> bool:
        """If a valid token has reached its expiry, move to ``expired`` and return ``True``."""
        if self.state is TokenState.VALID and self._expires_at is not None and now >= self._expires_at:
            self._fire("expire", at=now)
            return True
        return False

    def invalidated(self, now: float, reason: str | None = None) -> None:
        """The server rejected the valid token (HTTP 401): it is as good as expired."""
        self._fire("invalidated", cause=reason, at=now, update=lambda: self._mark_expired(now))

    def _check_revision(self, revision: int) -> None:
        if not self.is_newer(revision):
            raise StaleRevisionError(f"token revision {revision} is not newer than the current {self._revision}")

    def _check_token(self, revision: int, expires_at: float, now: float) -> None:
        self._check_revision(revision)
        if expires_at <= now:
            raise ValueError(f"token expires_at {expires_at} is not after now {now}")

    def _adopt(self, revision: int, expires_at: float, now: float) -> None:
        self._revision = revision
        self._expires_at = expires_at
        due = expires_at - self.buffer_s
        self._refresh_due_at = due if due > now else now + (expires_at - now) / 2

    def _mark_expired(self, now: float) -> None:
        if self._expires_at is not None and self._expires_at > now:
            self._expires_at = now
