"""The typed Gateway REST client: one async method per endpoint, the public API a user scripts against.

Every request flows through the same stages, each its own module::

    token (engine.auth.manager)  ->  rate limiter (ratelimit)  ->  circuit breaker (breaker)
        ->  httpx under an ``api.timeout`` cancel scope  ->  outcome classification (errors)

(The token is obtained first, outside the limiter and breaker permits: a login is itself a request and must take its
own permits rather than nest inside this one's.)

Reads (searches, bars, contracts, accounts) raise a typed :class:`~engine.gateway.errors.GatewayError` on failure and
are retried per ``errorHandling.retries`` with backoff and jitter (each attempt passes the limiter again); a 401
refreshes the token once and retries once. Mutations (``place_order``, ``modify_order``, ``cancel_order``,
``close_position``, ``partial_close_position``) never raise for a Gateway failure and are never resent blindly: they
return a :class:`~engine.gateway.outcome.MutationOutcome` (accepted / rejected / ambiguous / denied). They are sent
again only when the failure proves the request was not executed (connection refused before sending, 429, a 401
followed by a token refresh). ``enforcement=True`` (risk cancels and closes) takes the limiter's priority lane and,
when the breaker is open, holds the command until the breaker closes (driving the recovery probe itself) instead of
denying it; bound the wait with a cancel scope.

While the breaker is open, a read can serve its last good answer flagged stale::

    result = await client.with_stale_fallback(lambda: client.search_open_positions(1001))
    result.value, result.stale, result.as_of

Building one::

    client = GatewayClient.from_settings(settings)                 # real Gateway at api.base_url
    async with client:                                             # closes the HTTP pool
        await client.start()                                       # loads a stored token (optional)
        accounts = await client.search_accounts()

For tests, :func:`engine.gateway.testing.simulated_client` wires a :class:`simulator.gateway.SimulatedGateway`
in-process (``SimulatorTransport(build_app(gateway))``, the gateway's WallClock shared) and yields a harness with
``.client``, ``.gateway`` and ``.settings``. Run ``client.tokens.run`` in a nursery for proactive refresh (the
harness does); without it the token is renewed lazily when a call finds the refresh due.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import pydantic
import trio

from engine.auth.manager import TokenManager, TokenRevision
from engine.auth.storage import TokenStore
from engine.gateway import errors as ge
from engine.gateway.breaker import CircuitBreaker
from engine.gateway.errors import (
    AuthError,
    CircuitOpenError,
    Endpoint,
    ErrorClass,
    GatewayError,
    QueueFullError,
)
from engine.gateway.outcome import MutationOutcome, OutcomeKind, PlaceOrderOutcome
from engine.gateway.ratelimit import RateLimiter, RateLimitQueueFull
from engine.gateway.retry import RetryDecision, RetryPolicy, TransientKind, parse_retry_after, retry_read
from engine.protocol import models as m
from engine.protocol.errors import SearchOrderByIdErrorCode
from engine.protocol.timebase import WallClock

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E", bound=m.Envelope)

SNAPSHOT_CAPACITY = 256


@dataclass(frozen=True)
class ReadResult(Generic[T]):
    """A read's value; ``stale`` when it is the last good answer served because the Gateway was unavailable."""

    value: T
    stale: bool = False
    as_of: datetime | None = None


class _StaleScope:
    __slots__ = ("as_of", "stale")

    def __init__(self) -> None:
        self.stale = False
        self.as_of: datetime | None = None


_STALE_SCOPE: contextvars.ContextVar[_StaleScope | None] = contextvars.ContextVar("stale_scope", default=None)


class GatewayClient:
    """Typed async client of the Gateway REST API. See the module docstring. Single Trio run only."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        http: httpx.AsyncClient,
        limiter: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        retry_policy: RetryPolicy | None = None,
        token_store: TokenStore | None = None,
        wall_clock: WallClock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = wall_clock if wall_clock is not None else WallClock()
        self.limiter = limiter if limiter is not None else RateLimiter.from_settings(settings)
        self.breaker = breaker if breaker is not None else CircuitBreaker.from_settings(settings, "rest")
        self.retry_policy = retry_policy if retry_policy is not None else RetryPolicy.from_settings(settings)
        self.timeout_s = settings.api.timeout_s
        self.tokens = TokenManager.from_settings(settings, self, store=token_store, wall_clock=self.clock)
        self._rng = rng
        self._snapshots: OrderedDict[str, tuple[Any, datetime]] = OrderedDict()

    @classmethod
    def from_settings(
        cls,
        settings: EngineSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        token_store: TokenStore | None = None,
        wall_clock: WallClock | None = None,
        limiter: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> GatewayClient:
        """A client for ``settings.api.base_url``; ``transport`` replaces the network (tests: the simulator).
        ``token_store`` defaults to an in-memory store (use :func:`engine.auth.storage.open_token_store` for the
        configured one)."""
        http = httpx.AsyncClient(base_url=str(settings.api.base_url).rstrip("/"), transport=transport, timeout=None,
                                 headers={"accept": "application/json"})
        return cls(settings, http=http, limiter=limiter, breaker=breaker, retry_policy=retry_policy,
                   token_store=token_store, wall_clock=wall_clock, rng=rng)

    async def start(self) -> None:
        """Load a stored token (if still valid). Optional: the first call logs in anyway."""
        await self.tokens.start()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ================================================================================================== Auth
    async def login_key(self) -> TokenRevision:
        """Log in now with the configured credentials (``Auth/loginKey``); normally automatic."""
        return await self.tokens.login_now()

    async def validate(self) -> TokenRevision:
        """Refresh the token now through ``Auth/validate`` (falls back to a login); normally automatic."""
        return await self.tokens.refresh_now()

    async def logout(self) -> None:
        """``Auth/logout``: the server revokes the current token."""
        await self._read(ge.LOGOUT, None, m.LogoutResponse)

    async def auth_login(self, username: str, api_key: str) -> str:
        """One ``Auth/loginKey`` attempt (used by the token manager): the token, or a typed error."""
        body = m.LoginApiKeyRequest(user_name=username, api_key=api_key).wire()
        response = await self._attempt(ge.LOGIN_KEY, body, m.LoginResponse, token=None)
        if not response.success or not response.token:
            raise ge.from_code(ge.LOGIN_KEY.path, response.error_code or 3, response.error_message)
        return response.token

    async def auth_validate(self, token: str) -> str:
        """One ``Auth/validate`` attempt with ``token`` (used by the token manager): the new token."""
        response = await self._attempt(ge.VALIDATE, None, m.ValidateResponse, token=token)
        if not response.success or not response.new_token:
            raise ge.from_code(ge.VALIDATE.path, response.error_code or 4, response.error_message)
        return response.new_token

    # ================================================================================================== reads
    async def search_accounts(self, only_active: bool = True) -> list[m.TradingAccountModel]:
        req = m.SearchAccountRequest(only_active_accounts=only_active)
        return (await self._read(ge.ACCOUNT_SEARCH, req, m.SearchAccountResponse)).accounts

    async def search_contracts(self, search_text: str, *, live: bool = False) -> list[m.ContractModel]:
        req = m.SearchContractRequest(search_text=search_text, live=live)
        return (await self._read(ge.CONTRACT_SEARCH, req, m.SearchContractResponse)).contracts

    async def contract_by_id(self, contract_id: str) -> m.ContractModel | None:
        """The contract, or ``None`` if the Gateway does not know it."""
        req = m.SearchContractByIdRequest(contract_id=contract_id)
        try:
            return (await self._read(ge.CONTRACT_BY_ID, req, m.SearchContractByIdResponse)).contract
        except ge.PermanentError as exc:
            if exc.code == 1:
                return None
            raise

    async def available_contracts(self, *, live: bool = False) -> list[m.ContractModel]:
        req = m.ListAvailableContractRequest(live=live)
        return (await self._read(ge.CONTRACT_AVAILABLE, req, m.ListAvailableContractResponse)).contracts

    async def retrieve_bars(self, request: m.RetrieveBarRequest) -> list[m.AggregateBarModel]:
        return (await self._read(ge.RETRIEVE_BARS, request, m.RetrieveBarResponse)).bars

    async def search_orders(self, account_id: int, start: datetime, end: datetime | None = None) -> list[m.OrderModel]:
        req = m.SearchOrderRequest(account_id=account_id, start_timestamp=start, end_timestamp=end)
        return (await self._read(ge.ORDER_SEARCH, req, m.SearchOrderResponse)).orders

    async def search_open_orders(self, account_id: int) -> list[m.OrderModel]:
        req = m.SearchOpenOrderRequest(account_id=account_id)
        return (await self._read(ge.ORDER_SEARCH_OPEN, req, m.SearchOrderResponse)).orders

    async def order_by_id(self, account_id: int, order_id: int) -> m.OrderModel | None:
        """The order, or ``None`` if the Gateway does not know it (order verification relies on this)."""
        req = m.SearchOrderByIdRequest(account_id=account_id, order_id=order_id)
        try:
            return (await self._read(ge.ORDER_BY_ID, req, m.SearchOrderByIdResponse)).order
        except ge.PermanentError as exc:
            if exc.code == SearchOrderByIdErrorCode.ORDER_NOT_FOUND:
                return None
            raise

    async def query_orders_v2(self, request: m.OrderQueryRequest) -> m.OrderQueryResponse:
        return await self._read(ge.ORDER_QUERY, request, m.OrderQueryResponse)

    async def search_open_positions(self, account_id: int) -> list[m.PositionModel]:
        req = m.SearchPositionRequest(account_id=account_id)
        return (await self._read(ge.POSITION_SEARCH_OPEN, req, m.SearchPositionResponse)).positions

    async def search_trades(
        self, account_id: int, start: datetime | None = None, end: datetime | None = None
    ) -> list[m.HalfTradeModel]:
        req = m.SearchTradeRequest(account_id=account_id, start_timestamp=start, end_timestamp=end)
        return (await self._read(ge.TRADE_SEARCH, req, m.SearchTradeResponse)).trades

    async def ping(self) -> bool:
        """``GET /api/Status/ping`` (no token, one attempt, through the breaker): ``True`` on ``pong``."""
        await self._attempt(ge.PING, None, None, token=None)
        return True

    # ================================================================================================== mutations
    async def place_order(self, request: m.PlaceOrderRequest, *, enforcement: bool = False) -> PlaceOrderOutcome:
        return await self._mutate(ge.ORDER_PLACE, request, m.PlaceOrderResponse, enforcement)

    async def modify_order(self, request: m.ModifyOrderRequest, *, enforcement: bool = False) -> MutationOutcome:
        return await self._mutate(ge.ORDER_MODIFY, request, m.ModifyOrderResponse, enforcement)

    async def cancel_order(self, account_id: int, order_id: int, *, enforcement: bool = False) -> MutationOutcome:
        req = m.CancelOrderRequest(account_id=account_id, order_id=order_id)
        return await self._mutate(ge.ORDER_CANCEL, req, m.CancelOrderResponse, enforcement)

    async def close_position(self, account_id: int, contract_id: str, *, enforcement: bool = False) -> MutationOutcome:
        req = m.CloseContractPositionRequest(account_id=account_id, contract_id=contract_id)
        return await self._mutate(ge.POSITION_CLOSE, req, m.CloseContractPositionResponse, enforcement)

    async def partial_close_position(
        self, account_id: int, contract_id: str, size: int, *, enforcement: bool = False
    ) -> MutationOutcome:
        req = m.PartialCloseContractPositionRequest(account_id=account_id, contract_id=contract_id, size=size)
        return await self._mutate(ge.POSITION_PARTIAL_CLOSE, req, m.PartialCloseContractPositionResponse, enforcement)

    # ================================================================================================== fallback
    async def with_stale_fallback(self, read: Callable[[], Awaitable[T]]) -> ReadResult[T]:
        """Run one read method; if the breaker refuses it (or it fails transiently after its retries) and an earlier
        identical read succeeded, return that answer with ``stale=True`` and its wall-clock ``as_of``."""
        scope = _StaleScope()
        token = _STALE_SCOPE.set(scope)
        try:
            value = await read()
        finally:
            _STALE_SCOPE.reset(token)
        return ReadResult(value, scope.stale, scope.as_of)

    # ================================================================================================== internals
    async def _read(self, endpoint: Endpoint, request: m.RequestModel | None, rtype: type[E]) -> E:
        body = request.wire() if request is not None else None
        key = f"{endpoint.path} {json.dumps(body, sort_keys=True)}"

        async def once() -> E:
            response = await self._authorized(endpoint, body, rtype, priority=False)
            if not response.success:
                raise ge.from_code(endpoint.path, response.error_code, response.error_message)
            return response

        try:
            result = await retry_read(once, self.retry_policy, classify=self._classify, rng=self._rng,
                                      on_retry=None, description=endpoint.name)
        except GatewayError as exc:
            scope = _STALE_SCOPE.get()
            cached = self._snapshots.get(key)
            if scope is not None and cached is not None and exc.error_class is ErrorClass.TRANSIENT:
                scope.stale, scope.as_of = True, cached[1]
                log.warning("%s unavailable (%s): serving the answer of %s, flagged stale", endpoint.name,
                            type(exc).__name__, cached[1].isoformat())
                stale: E = cached[0]
                return stale
            raise
        self._snapshots[key] = (result, self.clock.now())
        self._snapshots.move_to_end(key)
        while len(self._snapshots) > SNAPSHOT_CAPACITY:
            self._snapshots.popitem(last=False)
        return result

    @staticmethod
    def _classify(outcome: BaseException | object) -> RetryDecision:
        if not isinstance(outcome, GatewayError) or isinstance(outcome, CircuitOpenError | QueueFullError):
            return RetryDecision()
        if outcome.error_class is ErrorClass.RATE_LIMITED:
            return RetryDecision(429, outcome.retry_after_s, str(outcome))
        if outcome.error_class is ErrorClass.TRANSIENT and not isinstance(outcome, AuthError):
            if outcome.status is not None:
                return RetryDecision(outcome.status, None, str(outcome))
            return RetryDecision(TransientKind.NETWORK, None, str(outcome))
        return RetryDecision()

    async def _mutate(
        self, endpoint: Endpoint, request: m.RequestModel, rtype: type[E], enforcement: bool
    ) -> MutationOutcome:
        body = request.wire()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._authorized(endpoint, body, rtype, priority=enforcement)
            except CircuitOpenError as exc:
                if not enforcement:
                    return _outcome(OutcomeKind.DENIED, endpoint, exc, reason=str(exc))
                log.warning("%s held until the breaker closes: %s", endpoint.name, exc)
                await self.breaker.wait_until_closed(probe=self.ping)
                attempt -= 1
                continue
            except (QueueFullError, ge.PermanentLoginError, ge.TokenUnavailableError) as exc:
                return _outcome(OutcomeKind.DENIED, endpoint, exc, reason=str(exc))
            except GatewayError as exc:
                cls = exc.error_class
                not_executed = (not exc.sent) or cls is ErrorClass.RATE_LIMITED
                if cls is ErrorClass.AMBIGUOUS:
                    return _outcome(OutcomeKind.AMBIGUOUS, endpoint, exc, reason=str(exc))
                if cls is ErrorClass.PERMANENT:
                    return _outcome(OutcomeKind.REJECTED, endpoint, exc, reason=str(exc))
                if not_executed and attempt < self.retry_policy.max_attempts:
                    pause = self.retry_policy.delay(attempt, self._rng, exc.retry_after_s)
                    log.info("%s not executed (%s); sending again in %.3f s", endpoint.name, type(exc).__name__, pause)
                    await trio.sleep(pause)
                    continue
                return _outcome(OutcomeKind.DENIED, endpoint, exc, reason=f"not executed: {exc}")
            order_id = getattr(response, "order_id", None)
            if response.success:
                return MutationOutcome(OutcomeKind.ACCEPTED, endpoint.path, order_id=order_id)
            error = ge.from_code(endpoint.path, response.error_code, response.error_message)
            kind = OutcomeKind.AMBIGUOUS if error.error_class is ErrorClass.AMBIGUOUS else OutcomeKind.REJECTED
            return MutationOutcome(kind, endpoint.path, order_id=order_id, code=response.error_code,
                                   code_name=error.code_name, message=response.error_message, reason=str(error),
                                   error=error)

    async def _authorized(self, endpoint: Endpoint, body: dict[str, Any] | None, rtype: type[E], *,
                          priority: bool) -> E:
        """One attempt with the current token; a 401 renews the token once and repeats once."""
        if not endpoint.auth:
            return await self._attempt(endpoint, body, rtype, token=None, priority=priority)
        token = await self.tokens.current()
        try:
            return await self._attempt(endpoint, body, rtype, token=token.token, priority=priority)
        except AuthError as exc:
            if exc.status != 401:
                raise
            if self.settings.logging.resilience.token_refresh:
                log.info("%s answered 401 with token revision %d: renewing once", endpoint.name, token.revision)
            await self.tokens.handle_unauthorized(token.revision)
            token = await self.tokens.current()
            return await self._attempt(endpoint, body, rtype, token=token.token, priority=priority)

    async def _attempt(self, endpoint: Endpoint, body: dict[str, Any] | None, rtype: type[E] | None, *,
                       token: str | None, priority: bool = False) -> E:
        """Exactly one HTTP request: limiter permit -> breaker permit -> httpx (cancel scope) -> classification."""
        try:
            async with self.limiter.permit(endpoint.path, priority=priority):
                permit = self.breaker.admit(endpoint.path)
                try:
                    result = await self._send(endpoint, body, rtype, token)
                except BaseException as exc:
                    self.breaker.record(permit, exc)
                    if isinstance(exc, ge.RateLimitedError):
                        self.limiter.record_429(endpoint.path, exc.retry_after_s)
                    raise
                self.breaker.record(permit, None)
                return result
        except RateLimitQueueFull as exc:
            raise QueueFullError(str(exc), endpoint=endpoint.path) from None

    async def _send(self, endpoint: Endpoint, body: dict[str, Any] | None, rtype: type[E] | None,
                    token: str | None) -> E:
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        response: httpx.Response | None = None
        with trio.move_on_after(self.timeout_s):
            try:
                if endpoint.method == "GET":
                    response = await self.http.get(endpoint.path, headers=headers)
                else:
                    response = await self.http.post(endpoint.path, json=body, headers=headers)
            except httpx.TransportError as exc:
                raise ge.from_transport(endpoint.path, exc) from None
        if response is None:
            raise ge.from_timeout(endpoint.path, self.timeout_s)
        if response.status_code != 200:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self.clock.now())
            raise ge.from_status(endpoint.path, response.status_code, retry_after_s=retry_after,
                                 detail=_problem_summary(response))
        if rtype is None:
            return None  # type: ignore[return-value]  # ping: a 200 is all there is
        try:
            return rtype.model_validate_json(response.content)
        except pydantic.ValidationError as exc:
            cls = ge.AmbiguousError if endpoint.mutation else ge.PermanentError
            raise cls(f"{endpoint.name}: malformed response ({exc.error_count()} problems)",
                      endpoint=endpoint.path, status=200) from None


def _problem_summary(response: httpx.Response) -> str:
    if response.status_code != 400:
        return ""
    try:
        problem = m.ProblemDetails.model_validate_json(response.content)
    except pydantic.ValidationError:
        return ""
    return "; ".join(f"{k}: {v[0]}" for k, v in problem.errors.items() if v)[:300]


def _outcome(kind: OutcomeKind, endpoint: Endpoint, error: GatewayError, *, reason: str) -> MutationOutcome:
    return MutationOutcome(kind, endpoint.path, code=error.code, code_name=error.code_name,
                           message=error.gateway_message, reason=reason, error=error)


__all__ = ["GatewayClient", "MutationOutcome", "OutcomeKind", "PlaceOrderOutcome", "ReadResult"]
