"""The simulator's REST side: an ASGI app serving ``/api/...`` (the Gateway) and ``/_sim/...`` (test control).

Behaviour copied from the reference (docs/projectx-gateway.md §2-§5): POST + JSON everywhere except
``GET /api/Status/ping``; business failures are HTTP 200 with ``success:false`` and the endpoint's own errorCode;
401 for a missing, invalid or expired bearer token; 400 ASP.NET ProblemDetails for malformed JSON and missing,
unknown or mistyped fields; 413 for bodies over the cap; 429 with ``Retry-After`` when a sliding rate window is
exceeded. An exception inside one request is logged and answered 500 with a generic message: never a crash.

Faults are taken here per request in a fixed order (outage, 429, 5xx, delay, token faults, then execute, then
lose_response for mutations). A lost response or an outage is written as a truncated answer carrying
:data:`~simulator.transport.ABORT_HEADER`: hypercorn then drops the connection (the client gets
``httpx.RemoteProtocolError``) and :class:`~simulator.transport.SimulatorTransport` raises the same in-process.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pydantic
import trio

from engine.protocol import models as m
from engine.protocol.enums import OrderSortField, OrderStatus, SortDirection
from engine.protocol.errors import (
    LoginErrorCode,
    LogoutErrorCode,
    OrderQueryErrorCode,
    RetrieveBarErrorCode,
    SearchContractByIdErrorCode,
    SearchOrderByIdErrorCode,
    SearchOrderErrorCode,
    SearchPositionErrorCode,
    SearchTradeErrorCode,
    ValidateErrorCode,
)
from simulator import faults as fk
from simulator.book import Order
from simulator.gateway import SimulatedGateway
from simulator.market import synthetic_bars
from simulator.tokens import TokenState
from simulator.transport import ABORT_HEADER, ABORT_LOST, ABORT_OUTAGE

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Payload = dict[str, Any]
MAX_BARS = 20_000


async def serve_lifespan(receive: Callable[[], Awaitable[Mapping[str, Any]]], send: Send) -> None:
    """Answer the ASGI lifespan protocol (nothing to start or stop): shared by :class:`RestApp` and the full app."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class HttpError(Exception):
    def __init__(self, status: int, body: Any = None, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


@dataclass(frozen=True, slots=True)
class Route:
    handler: Callable[..., Payload]
    model: type[pydantic.BaseModel] | None
    mutation: bool = False
    auth: bool = True
    window: str = "general"


class SlidingWindow:
    """At most ``limit`` requests per ``window_s`` (Trio clock) per key; answers the seconds to wait when full."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, now: float) -> float | None:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return None


def _problem(errors: dict[str, list[str]]) -> Payload:
    return {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "errors": errors,
        "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
    }


def _ok(**payload: Any) -> Payload:
    return {**payload, "success": True, "errorCode": 0, "errorMessage": None}


def _fail(code: int, message: str | None, **payload: Any) -> Payload:
    return {**payload, "success": False, "errorCode": int(code), "errorMessage": message}


class RestApp:
    def __init__(self, gateway: SimulatedGateway) -> None:
        self.gateway = gateway
        cfg = gateway.config
        self.windows = {"general": SlidingWindow(*cfg.general_limit), "history": SlidingWindow(*cfg.history_limit)}
        self.routes: dict[tuple[str, str], Route] = {
            ("POST", "/api/Auth/loginKey"): Route(self.login_key, m.LoginApiKeyRequest, auth=False),
            ("POST", "/api/Auth/loginApp"): Route(self.login_app, m.LoginAppRequest, auth=False),
            ("POST", "/api/Auth/validate"): Route(self.validate, None, auth=False),
            ("POST", "/api/Auth/logout"): Route(self.logout, None),
            ("POST", "/api/Account/search"): Route(self.account_search, m.SearchAccountRequest),
            ("POST", "/api/Contract/search"): Route(self.contract_search, m.SearchContractRequest),
            ("POST", "/api/Contract/searchById"): Route(self.contract_by_id, m.SearchContractByIdRequest),
            ("POST", "/api/Contract/available"): Route(self.contract_available, m.ListAvailableContractRequest),
            ("POST", "/api/History/retrieveBars"): Route(self.retrieve_bars, m.RetrieveBarRequest, window="history"),
            ("POST", "/api/Order/place"): Route(self.order_place, m.PlaceOrderRequest, mutation=True),
            ("POST", "/api/Order/modify"): Route(self.order_modify, m.ModifyOrderRequest, mutation=True),
            ("POST", "/api/Order/cancel"): Route(self.order_cancel, m.CancelOrderRequest, mutation=True),
            ("POST", "/api/Order/search"): Route(self.order_search, m.SearchOrderRequest),
            ("POST", "/api/Order/searchOpen"): Route(self.order_search_open, m.SearchOpenOrderRequest),
            ("POST", "/api/Order/searchById"): Route(self.order_by_id, m.SearchOrderByIdRequest),
            ("POST", "/api/Order/v2/query"): Route(self.order_query, m.OrderQueryRequest),
            ("POST", "/api/Position/searchOpen"): Route(self.position_search, m.SearchPositionRequest),
            ("POST", "/api/Position/closeContract"): Route(
                self.position_close, m.CloseContractPositionRequest, mutation=True
            ),
            ("POST", "/api/Position/partialCloseContract"): Route(
                self.position_partial_close, m.PartialCloseContractPositionRequest, mutation=True
            ),
            ("POST", "/api/Trade/search"): Route(self.trade_search, m.SearchTradeRequest),
            ("GET", "/api/Status/ping"): Route(self.ping, None, auth=False),
        }
        self.control: dict[tuple[str, str], Callable[[Any], Payload]] = {
            ("GET", "/_sim/state"): lambda body: self.gateway.snapshot(),
            ("POST", "/_sim/faults"): self.sim_faults,
            ("GET", "/_sim/faults"): self.sim_fault_log,
            ("POST", "/_sim/burst"): self.sim_burst,
            ("POST", "/_sim/price"): self.sim_price,
        }

    # --- ASGI -----------------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"RestApp serves http scopes only, got {scope['type']!r}")
        try:
            await self._serve(scope, receive, send)
        except HttpError as err:
            await self._respond(send, err.status, err.body, err.headers)
        except Exception:
            if self.gateway.config.hard_exit_on_internal_error:
                raise
            log.exception("internal error serving %s %s", scope.get("method"), scope.get("path"))
            await self._respond(send, 500, {"title": "An unexpected error occurred.", "status": 500})

    async def _serve(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        gw = self.gateway
        method, path = scope["method"].upper(), scope["path"]
        if path.startswith("/_sim/"):
            handler = self.control.get((method, path))
            if handler is None:
                raise HttpError(404, {"title": "Not Found", "status": 404})
            body = await self._read_body(scope, receive)
            data = orjson.loads(body) if body.strip() else {}
            await self._respond(send, 200, handler(data))
            return
        if gw.faults.active(fk.OUTAGE) is not None:
            gw.faults.note(fk.OUTAGE, path=path)
            await self._abort(send, ABORT_OUTAGE)
            return
        route = self.routes.get((method, path))
        if route is None:
            if any(p == path for _, p in self.routes):
                raise HttpError(405, {"title": "Method Not Allowed", "status": 405})
            raise HttpError(404, {"title": "Not Found", "status": 404})
        body = await self._read_body(scope, receive)
        token = self._bearer(scope)
        self._rate_limit(route, token, scope, body)
        fault = gw.faults.take(fk.HTTP_429, path=path)
        if fault is not None:
            retry = fault.params.get("retry_after_s", 1)
            raise HttpError(429, {"title": "Too Many Requests", "status": 429},
                            [(b"retry-after", str(math.ceil(retry)).encode())])
        fault = gw.faults.take(fk.HTTP_5XX, path=path)
        if fault is not None:
            statuses = fault.params.get("status", [500, 502, 503])
            statuses = statuses if isinstance(statuses, list) else [statuses]
            status = int(statuses[len(gw.faults.log) % len(statuses)])
            raise HttpError(status, {"title": "Service Unavailable" if status == 503 else "Server Error",
                                     "status": status})
        fault = gw.faults.take(fk.DELAY, path=path)
        if fault is not None:
            await trio.sleep(float(fault.params.get("seconds", 5.0)))
        gw.apply_token_faults()
        user: str | None = None
        if route.auth:
            user = self._authenticate(token)
        request = self._parse(route, body, path)
        result = route.handler(request, user=user, token=token)
        if route.mutation and gw.faults.take(fk.LOSE_RESPONSE, path=path) is not None:
            log.info("fault: response to %s lost after execution", path)
            await self._abort(send, ABORT_LOST)
            return
        if path == "/api/Status/ping":
            await self._respond(send, 200, None, text=b"pong")
            return
        await self._respond(send, 200, result)

    async def _read_body(self, scope: dict[str, Any], receive: Receive) -> bytes:
        cap = self.gateway.config.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > cap:
                log.warning("rejected %s: body of %s bytes over the %d cap", scope["path"], value.decode(), cap)
                raise HttpError(413, {"title": "Payload Too Large", "status": 413})
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HttpError(499)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                log.warning("rejected %s: body over the %d cap", scope["path"], cap)
                raise HttpError(413, {"title": "Payload Too Large", "status": 413})
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _bearer(scope: dict[str, Any]) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                text = value.decode("latin-1")
                if text[:7].lower() == "bearer ":
                    return text[7:].strip() or None
        return None

    def _client_key(self, token: str | None, scope: dict[str, Any], body: bytes) -> str:
        """Rate windows are per user (the token's subject, or the userName of a login), else per client address."""
        if token is not None:
            info = self.gateway.tokens.inspect(token)
            if info.user is not None:
                return f"user:{info.user}"
        if scope["path"].startswith("/api/Auth/login"):
            try:
                name = orjson.loads(body).get("userName")
            except (orjson.JSONDecodeError, AttributeError):
                name = None
            if isinstance(name, str):
                return f"user:{name}"
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}"

    def _rate_limit(self, route: Route, token: str | None, scope: dict[str, Any], body: bytes) -> None:
        if not self.gateway.config.rate_limits:
            return
        wait = self.windows[route.window].check(self._client_key(token, scope, body), trio.current_time())
        if wait is not None:
            log.info("rate limit: %s window full for %s", route.window, scope["path"])
            raise HttpError(429, {"title": "Too Many Requests", "status": 429},
                            [(b"retry-after", str(max(1, math.ceil(wait))).encode())])

    def _authenticate(self, token: str | None) -> str:
        unauthorized = HttpError(401, None, [(b"www-authenticate", b"Bearer")])
        if token is None:
            raise unauthorized
        info = self.gateway.tokens.inspect(token)
        if info.state is not TokenState.VALID or info.user is None:
            if info.state is TokenState.EXPIRED:
                raise HttpError(401, None, [(b"www-authenticate", b'Bearer error="invalid_token", '
                                             b'error_description="The token expired"')])
            raise unauthorized
        return info.user

    def _parse(self, route: Route, body: bytes, path: str) -> pydantic.BaseModel | None:
        if route.model is None:
            return None
        if not body.strip():
            log.warning("400 on %s: empty body", path)
            raise HttpError(400, _problem({"": ["A non-empty request body is required."]}))
        try:
            return route.model.model_validate_json(body, strict=True)
        except pydantic.ValidationError as exc:
            errors: dict[str, list[str]] = {}
            for error in exc.errors(include_url=False):
                loc = ".".join(str(part) for part in error["loc"])
                if error["type"] == "json_invalid":
                    loc = "$"
                field = f"$.{loc}" if loc and loc != "$" else "$"
                errors.setdefault(field, []).append(self._message(error, loc))
            log.warning("400 on %s: %s", path, "; ".join(f"{k}: {v[0]}" for k, v in errors.items()))
            raise HttpError(400, _problem(errors)) from None

    @staticmethod
    def _message(error: Any, loc: str) -> str:
        kind = error["type"]
        if kind == "missing":
            return f"The {loc} field is required."
        if kind == "extra_forbidden":
            return f"The JSON property '{loc}' could not be mapped to any .NET member."
        if kind == "json_invalid":
            return f"The JSON value could not be parsed: {error['msg']}"
        return f"The JSON value could not be converted for '{loc}': {error['msg']}"

    async def _respond(self, send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None,
                       *, text: bytes | None = None) -> None:
        if status == 499:
            return
        if text is not None:
            payload, ctype = text, b"text/plain; charset=utf-8"
        elif body is None:
            payload, ctype = b"", b"application/json; charset=utf-8"
        else:
            payload = orjson.dumps(body)
            ctype = b"application/problem+json; charset=utf-8" if status == 400 else b"application/json; charset=utf-8"
        all_headers = [(b"content-type", ctype), (b"content-length", str(len(payload)).encode()), *(headers or [])]
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _abort(self, send: Send, reason: str) -> None:
        """Answer so that the client sees a broken connection, not an HTTP response (see module docstring)."""
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"4096"), (b"connection", b"close"),
            (ABORT_HEADER.encode(), reason.encode()),
        ]})
        try:
            await send({"type": "http.response.body", "body": b"{", "more_body": False})
        except Exception as exc:  # hypercorn's h11 refuses the short body and drops the connection: intended
            log.debug("aborted response (%s): %s", reason, type(exc).__name__)

    # --- Auth -----------------------------------------------------------------------------------------------------
    def login_key(self, req: m.LoginApiKeyRequest, **_: Any) -> Payload:
        if not self.gateway.config.accepts(req.user_name, req.api_key):
            log.info("login refused for user %r", req.user_name)
            return _fail(LoginErrorCode.INVALID_CREDENTIALS, None, token=None)
        return _ok(token=self.gateway.tokens.issue(req.user_name))

    def login_app(self, req: m.LoginAppRequest, **_: Any) -> Payload:
        return _fail(LoginErrorCode.APP_NOT_FOUND, "Application login is not supported; use loginKey.", token=None)

    def validate(self, req: None, *, token: str | None, **_: Any) -> Payload:
        tokens = self.gateway.tokens
        if token is None:
            raise HttpError(401, None, [(b"www-authenticate", b"Bearer")])
        info = tokens.inspect(token)
        if info.state is TokenState.INVALID or info.user is None:
            raise HttpError(401, None, [(b"www-authenticate", b"Bearer")])
        if info.state is TokenState.REVOKED:
            return _fail(ValidateErrorCode.INVALID_SESSION, "Session is no longer valid.", newToken=None)
        if info.state is TokenState.EXPIRED and not self.gateway.config.validate_accepts_expired:
            raise HttpError(401, None, [(b"www-authenticate", b'Bearer error="invalid_token"')])
        return _ok(newToken=tokens.issue(info.user))

    def logout(self, req: None, *, token: str | None, **_: Any) -> Payload:
        if token is None:
            return _fail(LogoutErrorCode.INVALID_SESSION, None)
        self.gateway.tokens.revoke(token)
        return _ok()

    def ping(self, req: None, **_: Any) -> Payload:
        return {}

    # --- Accounts and contracts -----------------------------------------------------------------------------------
    def account_search(self, req: m.SearchAccountRequest, *, user: str, **_: Any) -> Payload:
        accounts = [a for a in self.gateway.book.accounts.values() if a.spec.user == user]
        if req.only_active_accounts:
            accounts = [a for a in accounts if a.can_trade]
        return _ok(accounts=[a.model().wire() for a in accounts])

    def _contract_model(self, contract_id: str) -> Payload:
        spec = self.gateway.book.contracts[contract_id]
        return m.ContractModel(
            id=spec.id, name=spec.name, description=spec.description, tick_size=spec.tick_size,
            tick_value=spec.tick_value, active_contract=spec.active, symbol_id=spec.symbol_id,
        ).wire()

    def contract_search(self, req: m.SearchContractRequest, **_: Any) -> Payload:
        text = req.search_text.strip().lower()
        found = [
            self._contract_model(c.id) for c in self.gateway.book.contracts.values()
            if c.active and (not text or text in c.name.lower() or text in c.description.lower()
                             or text in c.symbol_id.lower() or text in c.id.lower())
        ]
        return _ok(contracts=found[:20])

    def contract_by_id(self, req: m.SearchContractByIdRequest, **_: Any) -> Payload:
        if req.contract_id not in self.gateway.book.contracts:
            return _fail(SearchContractByIdErrorCode.CONTRACT_NOT_FOUND, "Contract not found.", contract=None)
        return _ok(contract=self._contract_model(req.contract_id))

    def contract_available(self, req: m.ListAvailableContractRequest, **_: Any) -> Payload:
        return _ok(contracts=[self._contract_model(c.id) for c in self.gateway.book.contracts.values() if c.active])

    def retrieve_bars(self, req: m.RetrieveBarRequest, **_: Any) -> Payload:
        spec = self.gateway.book.contracts.get(req.contract_id)
        if spec is None:
            return _fail(RetrieveBarErrorCode.CONTRACT_NOT_FOUND, "Contract not found.", bars=[])
        if req.unit not in range(1, 7):
            return _fail(RetrieveBarErrorCode.UNIT_INVALID, "Invalid unit.", bars=[])
        if req.unit_number < 1:
            return _fail(RetrieveBarErrorCode.UNIT_NUMBER_INVALID, "Invalid unit number.", bars=[])
        if not 1 <= req.limit <= MAX_BARS:
            return _fail(RetrieveBarErrorCode.LIMIT_INVALID, f"Limit must be between 1 and {MAX_BARS}.", bars=[])
        bars = synthetic_bars(spec, self.gateway.config.seed, req.start_time, req.end_time, self.gateway.clock.now(),
                              req.unit, req.unit_number, req.limit, req.include_partial_bar)
        return _ok(bars=[m.AggregateBarModel.model_validate(b).wire() for b in bars])

    # --- Orders ---------------------------------------------------------------------------------------------------
    def order_place(self, req: m.PlaceOrderRequest, *, user: str, **_: Any) -> Payload:
        code, message, order_id = self.gateway.book.place(req, user)
        return _ok(orderId=order_id) if code == 0 else _fail(code, message, orderId=order_id)

    def order_modify(self, req: m.ModifyOrderRequest, *, user: str, **_: Any) -> Payload:
        code, message = self.gateway.book.modify(req, user)
        return _ok() if code == 0 else _fail(code, message)

    def order_cancel(self, req: m.CancelOrderRequest, *, user: str, **_: Any) -> Payload:
        code, message = self.gateway.book.cancel(req.account_id, req.order_id, user)
        return _ok() if code == 0 else _fail(code, message)

    def _visible_orders(self, account_id: int) -> list[Order]:
        return [o for o in self.gateway.book.orders_of(account_id) if o.status is not OrderStatus.SUSPENDED]

    def order_search(self, req: m.SearchOrderRequest, *, user: str, **_: Any) -> Payload:
        if self.gateway.book.account_for(req.account_id, user) is None:
            return _fail(SearchOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        orders = [o for o in self._visible_orders(req.account_id) if _within(o.created, req.start_timestamp,
                                                                             req.end_timestamp)]
        return _ok(orders=[o.model().wire() for o in orders])

    def order_search_open(self, req: m.SearchOpenOrderRequest, *, user: str, **_: Any) -> Payload:
        if self.gateway.book.account_for(req.account_id, user) is None:
            return _fail(SearchOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        orders = self.gateway.book.working_orders(req.account_id)
        return _ok(orders=[o.model().wire() for o in orders])

    def order_by_id(self, req: m.SearchOrderByIdRequest, *, user: str, **_: Any) -> Payload:
        book = self.gateway.book
        order = book.orders.get(req.order_id)
        if book.account_for(req.account_id, user) is None or order is None or order.account_id != req.account_id:
            return _fail(SearchOrderByIdErrorCode.ORDER_NOT_FOUND, None, order=None)
        return _ok(order=order.model().wire())

    def order_query(self, req: m.OrderQueryRequest, *, user: str, **_: Any) -> Payload:
        f = req.filter
        if self.gateway.book.account_for(f.account_id, user) is None:
            return _fail(OrderQueryErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        orders = [
            o for o in self.gateway.book.orders_of(f.account_id)
            if (f.statuses is None or o.status in f.statuses)
            and (f.contract_id is None or o.contract.id == f.contract_id)
            and _within(o.created, f.created_after, f.created_before)
        ]
        by_id = req.sort_by is OrderSortField.ID
        orders.sort(key=lambda o: o.id if by_id else (o.created, o.id),
                    reverse=req.sort_direction is not SortDirection.ASC)
        total = len(orders)
        offset = max(0, req.page_offset or 0)
        size = min(100, req.page_size or 100)
        page = orders[offset:offset + max(0, size)]
        return _ok(orders=[o.model().wire() for o in page], totalCount=total if req.include_total_count else None)

    # --- Positions and trades -------------------------------------------------------------------------------------
    def position_search(self, req: m.SearchPositionRequest, *, user: str, **_: Any) -> Payload:
        if self.gateway.book.account_for(req.account_id, user) is None:
            return _fail(SearchPositionErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", positions=[])
        return _ok(positions=[p.model().wire() for p in self.gateway.book.positions_of(req.account_id)])

    def position_close(self, req: m.CloseContractPositionRequest, *, user: str, **_: Any) -> Payload:
        code, message = self.gateway.book.close(req.account_id, req.contract_id, None, user)
        return _ok() if code == 0 else _fail(code, message)

    def position_partial_close(self, req: m.PartialCloseContractPositionRequest, *, user: str, **_: Any) -> Payload:
        code, message = self.gateway.book.close(req.account_id, req.contract_id, req.size, user)
        return _ok() if code == 0 else _fail(code, message)

    def trade_search(self, req: m.SearchTradeRequest, *, user: str, **_: Any) -> Payload:
        if self.gateway.book.account_for(req.account_id, user) is None:
            return _fail(SearchTradeErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", trades=[])
        trades = [t for t in self.gateway.book.trades_of(req.account_id)
                  if _within(t.creation_timestamp, req.start_timestamp, req.end_timestamp)]
        return _ok(trades=[t.wire() for t in trades])

    # --- /_sim control --------------------------------------------------------------------------------------------
    def sim_faults(self, body: Any) -> Payload:
        if not isinstance(body, dict) or not isinstance(body.get("kind", None), str | None):
            raise HttpError(400, _problem({"$": ["expected a JSON object with 'kind'"]}))
        if body.get("disarm"):
            self.gateway.faults.disarm(body.get("kind"))
            return {"armed": self.gateway.faults.armed()}
        try:
            self.gateway.faults.arm(
                str(body["kind"]),
                count=body.get("count", 1),
                probability=float(body.get("probability", 1.0)),
                duration_s=body.get("duration_s", body.get("durationS")),
                params=body.get("params"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise HttpError(400, _problem({"$": [str(exc)]})) from None
        return {"armed": self.gateway.faults.armed()}

    def sim_fault_log(self, body: Any) -> Payload:
        return {"log": [{"trioTime": r.trio_time, "wallTime": r.wall_time.isoformat(), "kind": r.kind,
                         "context": r.context} for r in self.gateway.faults.log]}

    def sim_burst(self, body: Any) -> Payload:
        try:
            account_id, count = int(body["accountId"]), int(body["count"])
        except (KeyError, ValueError, TypeError):
            raise HttpError(400, _problem({"$": ["expected {accountId: int, count: int}"]})) from None
        self.gateway.burst(account_id, count)
        return {"published": count}

    def sim_price(self, body: Any) -> Payload:
        try:
            contract_id, price = str(body["contractId"]), float(body["price"])
            self.gateway.set_price(contract_id, price)
        except (KeyError, ValueError, TypeError):
            raise HttpError(400, _problem({"$": ["expected {contractId: known id, price: number}"]})) from None
        return {"contractId": contract_id, "price": self.gateway.markets[contract_id].quote.last}


def _within(instant: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or instant >= start) and (end is None or instant <= end)
