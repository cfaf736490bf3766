"""The token manager (seed GAP-API-001, GAP-API-002, SCENARIO-005): the Trio driver of
:class:`machines.token.TokenLifecycle`.

Why it exists: every REST call and both hubs need a valid bearer token, a token lives 24 h, and an expired one in
the middle of a risk-enforcement cancel is the failure this engine exists to prevent. So:

- Login with ``Auth/loginKey`` (the configured user name and API key). The expiry is the JWT's ``exp`` claim (a wall
  instant, mapped onto the Trio clock through :class:`~engine.protocol.timebase.WallClock`); without one, 24 h after
  issue.
- Proactive refresh through ``Auth/validate`` ``buffer_s`` before expiry (7200 s by default), either by
  :meth:`TokenManager.run` in the background or lazily by the first caller that finds it due. A failed validate is
  retried ``max_retries`` times after ``retry_delays_s``, then falls back to a full login (same retries).
- Single flight: whoever finds a renewal necessary starts it; callers arriving meanwhile wait for that one renewal.
  A token is swapped in only if its revision is newer (the machine refuses an older one).
- Pre-operation validation: :meth:`TokenManager.current` with ``min_valid_s`` renews first when the token would not
  outlast the operation.
- A 401: :meth:`TokenManager.handle_unauthorized` with the revision that was refused renews once (concurrent 401s of
  the same revision share it; a 401 of an already replaced revision renews nothing).
- A permanent login error (bad key, agreements not signed, no API subscription, no credentials configured) ends in
  the machine's final ``failed`` state: :class:`~engine.gateway.errors.PermanentLoginError` for every caller from then
  on, with a clear message, and no retry storm. A transient renewal failure while the old token is still usable
  keeps the old token and waits at least the last retry delay before trying again.
- Every new token is announced (:meth:`TokenManager.subscribe`, :meth:`TokenManager.wait_for_revision`) so the hubs
  can reconnect with it (the token travels in their URL).
- Storage: loaded at :meth:`TokenManager.start`, every new token saved (file stores through
  ``trio.to_thread.run_sync``).

The token string is never logged and never appears in an exception; :class:`TokenRevision` hides it from ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn, Protocol, TypeVar

import trio

from engine.auth.storage import MemoryTokenStore, StoredToken, TokenStore
from engine.gateway.errors import AuthError, GatewayError, PermanentLoginError, TokenUnavailableError, TransientError
from engine.protocol.timebase import WallClock
from machines.token import TokenLifecycle, TokenState

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 24 * 3600.0
_T = TypeVar("_T")


class AuthApi(Protocol):
    """The two unauthenticated calls the manager needs (implemented by the Gateway client)."""

    async def auth_login(self, username: str, api_key: str) -> str: ...

    async def auth_validate(self, token: str) -> str: ...


@dataclass(frozen=True)
class TokenRevision:
    """A token as announced to subscribers: its revision (grows with every new token) and wall-clock expiry."""

    revision: int
    token: str = field(repr=False)
    expires_at: datetime
    source: str = "login"
    """``login``, ``refresh`` or ``storage``."""

    def __str__(self) -> str:
        return repr(self)


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT as an aware datetime, or ``None`` (not a JWT, no claim). Not verified: the
    signature is the server's business; we only schedule the refresh from it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = float(payload["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        return None
    if not math.isfinite(exp):
        return None
    return datetime.fromtimestamp(exp, UTC)


class TokenManager:
    """Obtains, refreshes, stores and announces the session token. See the module docstring."""

    def __init__(
        self,
        auth: AuthApi,
        *,
        username: str | None,
        api_key: str | None,
        buffer_s: float = 7200.0,
        max_retries: int = 3,
        retry_delays_s: Sequence[float] = (1.0, 5.0, 15.0),
        store: TokenStore | None = None,
        wall_clock: WallClock | None = None,
        default_ttl_s: float = DEFAULT_TTL_S,
        log_events: bool = True,
    ) -> None:
        self._auth = auth
        self._username = username
        self._api_key = api_key
        self.lifecycle = TokenLifecycle(buffer_s)
        self.max_retries = max_retries
        self.retry_delays_s = tuple(retry_delays_s) or (1.0,)
        self._store = store if store is not None else MemoryTokenStore()
        self._clock = wall_clock if wall_clock is not None else WallClock()
        self._default_ttl_s = default_ttl_s
        self._log = log_events
        self._token: TokenRevision | None = None
        self._last_revision = 0
        self._flight: trio.Event | None = None
        self._changed = trio.Event()
        self._failure: PermanentLoginError | None = None
        self._last_error: GatewayError | None = None
        self._retry_not_before = -math.inf
        self._subscribers: list[trio.MemorySendChannel[TokenRevision]] = []
        self.logins = 0
        """Successful logins so far."""
        self.refreshes = 0
        """Successful refreshes (Auth/validate) so far."""
        self.renewals = 0
        """Renewal flights started (a refresh and its fallback login are one flight)."""

    @classmethod
    def from_settings(
        cls,
        settings: EngineSettings,
        auth: AuthApi,
        *,
        store: TokenStore | None = None,
        wall_clock: WallClock | None = None,
    ) -> TokenManager:
        refresh = settings.authentication.token_refresh
        creds = settings.credentials
        return cls(
            auth,
            username=creds.username,
            api_key=creds.api_key.get_secret_value() if creds.api_key is not None else None,
            buffer_s=float(refresh.buffer_seconds),
            max_retries=refresh.max_retries,
            retry_delays_s=[ms / 1000.0 for ms in refresh.retry_delay_ms],
            store=store,
            wall_clock=wall_clock,
            log_events=settings.logging.resilience.token_refresh,
        )

    # ------------------------------------------------------------------------------------------------ queries
    @property
    def state(self) -> TokenState:
        return self.lifecycle.state

    @property
    def revision(self) -> int | None:
        return self._token.revision if self._token is not None else None

    @property
    def failure(self) -> PermanentLoginError | None:
        """The permanent login error that stopped the manager, if any."""
        return self._failure

    # ------------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Adopt the stored token if it is still valid (no login needed after a restart)."""
        stored = await self._call_store(self._store.load)
        if stored is None or self._token is not None:
            return
        now = trio.current_time()
        expires = self._clock.trio_time_at(stored.expires_at)
        if self.lifecycle.restore(stored.revision, expires, now):
            self._last_revision = stored.revision
            self._publish(TokenRevision(stored.revision, stored.token, stored.expires_at, "storage"))
            if self._log:
                log.info("token revision %d restored from storage (expires %s)", stored.revision,
                         stored.expires_at.isoformat())
        else:
            self._last_revision = max(self._last_revision, stored.revision)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Proactive refresh until cancelled: sleeps until the refresh is due, then renews (single flight)."""
        task_status.started()
        while self._failure is None:
            changed = self._changed
            due = self.lifecycle.refresh_due_at
            if due is None:
                await changed.wait()
                continue
            with trio.move_on_at(max(due, self._retry_not_before)):
                await changed.wait()
                continue
            try:
                await self._renew()
            except GatewayError as exc:
                log.warning("proactive token refresh failed: %s", exc)

    # ------------------------------------------------------------------------------------------------ the token
    async def current(self, min_valid_s: float = 0.0) -> TokenRevision:
        """A usable token; renews first when none is held, a refresh is due, or the token would not outlast an
        operation of ``min_valid_s`` seconds. Raises :class:`PermanentLoginError` / :class:`TokenUnavailableError`."""
        token = self._usable(min_valid_s)
        if token is not None:
            return token
        await self._renew()
        token = self._usable(0.0, renewing=True)
        if token is not None:
            return token
        if self._failure is not None:
            raise self._failure
        reason = f": {self._last_error}" if self._last_error is not None else ""
        raise TokenUnavailableError(f"no usable session token{reason}", endpoint="/api/Auth/loginKey", sent=False)

    async def current_token(self) -> str:
        """The bearer string of :meth:`current` (never log it)."""
        return (await self.current()).token

    async def handle_unauthorized(self, revision: int) -> None:
        """The server answered 401 to a request made with token ``revision``: renew once (shared by concurrent
        callers); nothing happens if that revision was already replaced."""
        if self._failure is not None:
            raise self._failure
        if self._flight is not None:
            await self._flight.wait()
            return
        if self._token is not None and revision < self._token.revision:
            return
        if self.lifecycle.state is TokenState.VALID:
            self.lifecycle.invalidated(trio.current_time(), reason="HTTP 401")
        await self._renew()

    async def refresh_now(self) -> TokenRevision:
        """Force a refresh through Auth/validate now (falls back to a login), then return the token."""
        await self._renew(force=True)
        return await self.current()

    async def login_now(self) -> TokenRevision:
        """Force a fresh login now (e.g. ``GatewayClient.login_key``)."""
        if self.lifecycle.state is TokenState.VALID:
            self.lifecycle.invalidated(trio.current_time(), reason="login requested")
        await self._renew()
        return await self.current()

    def _usable(self, min_valid_s: float, *, renewing: bool = False) -> TokenRevision | None:
        if self._failure is not None:
            raise self._failure
        token = self._token
        lc = self.lifecycle
        now = trio.current_time()
        lc.expire_if_due(now)
        if token is None or not lc.is_usable(now) or lc.expires_at is None:
            return None
        if renewing:
            return token
        if lc.expires_at - now <= min_valid_s and now >= self._retry_not_before:
            return None
        due = lc.refresh_due_at
        if due is not None and now >= due and now >= self._retry_not_before:
            return None
        return token

    # ------------------------------------------------------------------------------------------------ announcements
    def subscribe(self, buffer: int = 16) -> trio.MemoryReceiveChannel[TokenRevision]:
        """A channel receiving every new token (the current one first, if any). A subscriber that falls ``buffer``
        tokens behind misses the older ones (only the newest matters); close the channel to unsubscribe."""
        send, receive = trio.open_memory_channel[TokenRevision](max(1, buffer))
        if self._token is not None:
            send.send_nowait(self._token)
        self._subscribers.append(send)
        return receive

    async def wait_for_revision(self, after: int | None) -> TokenRevision:
        """Wait until a token with a revision greater than ``after`` (``None``: any) is held, and return it."""
        while True:
            token = self._token
            if token is not None and (after is None or token.revision > after):
                return token
            if self._failure is not None:
                raise self._failure
            await self._changed.wait()

    def _publish(self, token: TokenRevision) -> None:
        self._token = token
        self._last_revision = max(self._last_revision, token.revision)
        for send in list(self._subscribers):
            try:
                send.send_nowait(token)
            except trio.WouldBlock:
                log.debug("token subscriber is behind; it will see a later revision")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------------------------------------ renewal
    async def _renew(self, *, force: bool = False) -> None:
        """Single flight: start a renewal or wait for the one running."""
        if self._failure is not None:
            raise self._failure
        flight = self._flight
        if flight is not None:
            await flight.wait()
            return
        flight = self._flight = trio.Event()
        self.renewals += 1
        try:
            await self._do_renew(force)
        finally:
            self._flight = None
            flight.set()
            self._notify()

    async def _do_renew(self, force: bool) -> None:
        lc = self.lifecycle
        lc.expire_if_due(trio.current_time())
        state = lc.state
        if state is TokenState.VALID and self._token is not None:
            lc.refresh_started()
            reason = await self._try_validate(self._token)
            if reason is None:
                return
            lc.refresh_failed(trio.current_time(), reason)
        elif state is TokenState.REFRESHING:  # left behind by a cancelled flight
            lc.refresh_failed(trio.current_time(), "interrupted refresh")
        elif state in (TokenState.NONE, TokenState.EXPIRED):
            lc.login_started()
        await self._login()

    async def _try_validate(self, token: TokenRevision) -> str | None:
        """Refresh through Auth/validate with retries; ``None`` on success, else why it failed."""
        try:
            new = await self._attempts("token refresh", lambda: self._auth.auth_validate(token.token),
                                       refusal=AuthError)
        except AuthError as exc:  # the server refused the token itself: only a login helps
            self._last_error = exc
            return f"validate refused: {exc.code_name or exc.status}"
        if new is None:
            return "refresh retries exhausted"
        await self._adopt(new, "refresh")
        return None

    async def _login(self) -> None:
        if not self._username or not self._api_key:
            self._fail_permanently(PermanentLoginError(
                "no credentials configured: set credentials.username and credentials.api_key (TOPSTEPX_USERNAME / "
                "TOPSTEPX_API_KEY)", endpoint="/api/Auth/loginKey", sent=False))
        username, api_key = self._username, self._api_key
        try:
            token = await self._attempts("login", lambda: self._auth.auth_login(username, api_key),
                                         refusal=PermanentLoginError)
        except PermanentLoginError as exc:  # bad key, agreements not signed...: a human must act, never retried
            self._fail_permanently(exc)
        if token is not None:
            await self._adopt(token, "login")
            return
        now = trio.current_time()
        self._retry_not_before = now + self.retry_delays_s[-1]
        reason = str(self._last_error) if self._last_error is not None else "login failed"
        self.lifecycle.login_failed(now, permanent=False, reason=reason[:200])

    async def _attempts(self, what: str, call: Callable[[], Awaitable[str]],
                        refusal: type[GatewayError]) -> str | None:
        """``call`` once and up to ``maxRetries`` more times after a transient failure, ``retryDelayMs`` apart: the
        token it returned, or ``None`` once the retries are spent (``_last_error`` says why). A ``refusal`` is no
        transient failure: it is raised at once, for the caller to handle (refresh and login differ just there)."""
        for attempt in range(self.max_retries + 1):
            try:
                return await call()
            except refusal:
                raise
            except GatewayError as exc:
                self._last_error = exc
                if self._log:
                    log.warning("%s attempt %d failed: %s", what, attempt + 1, exc)
                if attempt < self.max_retries:
                    await trio.sleep(self._delay(attempt))
        return None

    def _fail_permanently(self, exc: PermanentLoginError) -> NoReturn:
        """Record the permanent failure, tell the listeners, and raise ``exc`` (never returns)."""
        self._failure = exc
        self.lifecycle.login_failed(trio.current_time(), permanent=True, reason=exc.code_name or "permanent")
        log.error("login failed permanently, not retrying (a human must act): %s", exc)
        self._notify()
        raise exc

    def _delay(self, attempt: int) -> float:
        return self.retry_delays_s[min(attempt, len(self.retry_delays_s) - 1)]

    async def _adopt(self, token: str, source: str) -> None:
        now = trio.current_time()
        expires_wall = jwt_expiry(token)
        if expires_wall is None:
            expires_wall = self._clock.now() + timedelta(seconds=self._default_ttl_s)
        expires_at = self._clock.trio_time_at(expires_wall)
        if expires_at <= now:
            raise TransientError("the Gateway issued a token that has already expired", endpoint="/api/Auth/loginKey")
        revision = self._last_revision + 1
        lc = self.lifecycle
        if source == "refresh":
            lc.refresh_succeeded(revision, expires_at, now)
            self.refreshes += 1
        else:
            lc.login_succeeded(revision, expires_at, now)
            self.logins += 1
        self._retry_not_before = -math.inf
        self._last_error = None
        announced = TokenRevision(revision, token, expires_wall, source)
        self._publish(announced)
        if self._log:
            log.info("new session token revision %d by %s, expires %s", revision, source, expires_wall.isoformat())
        await self._call_store(lambda: self._store.save(StoredToken(token, expires_wall, revision)))

    async def _call_store(self, fn: Callable[[], _T]) -> _T | None:
        try:
            if isinstance(self._store, MemoryTokenStore):
                return fn()
            return await trio.to_thread.run_sync(fn)
        except Exception as exc:  # storage must never stop the engine: it only costs a login at the next start
            log.warning("token storage failed (%s); continuing without it", type(exc).__name__)
            return None
