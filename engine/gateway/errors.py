"""Error mapping of the command path (seed GAP-API-006): one table from what the Gateway answered to a typed error.

Why one table: whether a failure is retried, refreshes the token, pauses the rate limiter, trips the breaker or goes
to order verification must be decided in exactly one place, and the same table generates ``docs/errors.md`` (a test
keeps the two in sync; regenerate with ``python -m engine.gateway.errors --write``).

Every failure gets an :class:`ErrorClass`:

- ``transient``: worth retrying (reads only): 408/5xx, timeouts, connection errors, an ``UnknownError`` code of a read.
- ``rate_limited``: 429; wait (``Retry-After``) then go on. Nothing was executed, so even a mutation may be resent.
- ``auth``: 401 or an invalid session: refresh the token (or log in again), then one more attempt.
- ``permanent``: a business rejection or a malformed request; another attempt gives the same answer: never retried.
- ``ambiguous`` (mutations only): the request may have been executed; the outcome goes to verification, never to a
  blind resend. Unknown errorCodes are permanent for reads and ambiguous for mutations.

Orthogonally, :attr:`GatewayError.breaker_failure` says whether the failure counts against the circuit breaker (only
transient trouble of the dependency does: never a business rejection, a 401 or a 429) and
:attr:`GatewayError.sent` whether the request may have reached the server (a refused connection: certainly not).
Messages carry the endpoint, status or code name and the Gateway's own message, never a token or key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from pathlib import Path

import httpx

from engine.protocol import errors as pe

# --- endpoints ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint: its served path, method, whether it changes state, and its errorCode enum."""

    path: str
    mutation: bool = False
    method: str = "POST"
    auth: bool = True

    @property
    def codes(self) -> type[IntEnum] | None:
        return pe.ERROR_CODES.get(self.path)

    @property
    def name(self) -> str:
        return self.path.removeprefix("/api/")


LOGIN_KEY = Endpoint("/api/Auth/loginKey", auth=False)
LOGIN_APP = Endpoint("/api/Auth/loginApp", auth=False)
VALIDATE = Endpoint("/api/Auth/validate", auth=False)
LOGOUT = Endpoint("/api/Auth/logout")
ACCOUNT_SEARCH = Endpoint("/api/Account/search")
CONTRACT_SEARCH = Endpoint("/api/Contract/search")
CONTRACT_BY_ID = Endpoint("/api/Contract/searchById")
CONTRACT_AVAILABLE = Endpoint("/api/Contract/available")
RETRIEVE_BARS = Endpoint("/api/History/retrieveBars")
ORDER_PLACE = Endpoint("/api/Order/place", mutation=True)
ORDER_MODIFY = Endpoint("/api/Order/modify", mutation=True)
ORDER_CANCEL = Endpoint("/api/Order/cancel", mutation=True)
ORDER_SEARCH = Endpoint("/api/Order/search")
ORDER_SEARCH_OPEN = Endpoint("/api/Order/searchOpen")
ORDER_BY_ID = Endpoint("/api/Order/searchById")
ORDER_QUERY = Endpoint("/api/Order/v2/query")
POSITION_SEARCH_OPEN = Endpoint("/api/Position/searchOpen")
POSITION_CLOSE = Endpoint("/api/Position/closeContract", mutation=True)
POSITION_PARTIAL_CLOSE = Endpoint("/api/Position/partialCloseContract", mutation=True)
TRADE_SEARCH = Endpoint("/api/Trade/search")
PING = Endpoint("/api/Status/ping", method="GET", auth=False)

ENDPOINTS: tuple[Endpoint, ...] = (
    LOGIN_KEY, LOGIN_APP, VALIDATE, LOGOUT, ACCOUNT_SEARCH, CONTRACT_SEARCH, CONTRACT_BY_ID, CONTRACT_AVAILABLE,
    RETRIEVE_BARS, ORDER_PLACE, ORDER_MODIFY, ORDER_CANCEL, ORDER_SEARCH, ORDER_SEARCH_OPEN, ORDER_BY_ID, ORDER_QUERY,
    POSITION_SEARCH_OPEN, POSITION_CLOSE, POSITION_PARTIAL_CLOSE, TRADE_SEARCH, PING,
)


# --- classes and errors ---------------------------------------------------------------------------------------------


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"
    AMBIGUOUS = "ambiguous"


RETRIED = {
    ErrorClass.TRANSIENT: "reads: backoff with jitter; mutations: only if never sent",
    ErrorClass.RATE_LIMITED: "after Retry-After (the limiter pauses the window)",
    ErrorClass.AUTH: "once, after a token refresh / re-login",
    ErrorClass.PERMANENT: "never",
    ErrorClass.AMBIGUOUS: "never: goes to order verification",
}


class GatewayError(Exception):
    """A failed Gateway request, classified. Subclasses per :class:`ErrorClass`; see the module docstring."""

    error_class: ErrorClass = ErrorClass.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        code: int | None = None,
        code_name: str | None = None,
        gateway_message: str | None = None,
        retry_after_s: float | None = None,
        breaker_failure: bool = False,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.code_name = code_name
        self.gateway_message = gateway_message
        self.retry_after_s = retry_after_s
        self.breaker_failure = breaker_failure
        self.sent = sent


class TransientError(GatewayError):
    error_class = ErrorClass.TRANSIENT


class RateLimitedError(GatewayError):
    error_class = ErrorClass.RATE_LIMITED


class AuthError(GatewayError):
    """The token was refused (401, invalid session); a refresh or re-login may help."""

    error_class = ErrorClass.AUTH


class PermanentLoginError(AuthError):
    """Login refused for good (bad key, agreements not signed, no API subscription): a human must act, no retry."""


class PermanentError(GatewayError):
    error_class = ErrorClass.PERMANENT


class AmbiguousError(GatewayError):
    error_class = ErrorClass.AMBIGUOUS


class CircuitOpenError(GatewayError):
    """Denied locally: the breaker is open (nothing was sent). ``retry_in_s``: seconds until the next probe."""

    error_class = ErrorClass.TRANSIENT

    def __init__(self, dependency: str, retry_in_s: float | None, *, endpoint: str = "") -> None:
        when = "when a probe succeeds" if retry_in_s is None else f"next probe in {retry_in_s:.1f} s"
        super().__init__(
            f"circuit breaker {dependency!r} is open: {endpoint or 'request'} refused without sending ({when})",
            endpoint=endpoint, sent=False,
        )
        self.dependency = dependency
        self.retry_in_s = retry_in_s


class QueueFullError(GatewayError):
    """Denied locally: the rate limiter's queue was full and this request was refused (nothing was sent)."""

    error_class = ErrorClass.TRANSIENT

    def __init__(self, message: str, *, endpoint: str) -> None:
        super().__init__(message, endpoint=endpoint, sent=False)


class TokenUnavailableError(AuthError):
    """No usable token could be obtained (the login failed transiently and no valid token is held)."""


_CLASS_TO_ERROR: dict[ErrorClass, type[GatewayError]] = {
    ErrorClass.TRANSIENT: TransientError,
    ErrorClass.RATE_LIMITED: RateLimitedError,
    ErrorClass.AUTH: AuthError,
    ErrorClass.PERMANENT: PermanentError,
    ErrorClass.AMBIGUOUS: AmbiguousError,
}


# --- the table ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRule:
    error_class: ErrorClass
    mutation_class: ErrorClass
    breaker_failure: bool
    note: str


STATUS_RULES: dict[int, StatusRule] = {
    400: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "malformed request (ProblemDetails)"),
    401: StatusRule(ErrorClass.AUTH, ErrorClass.AUTH, False, "token missing, invalid or expired; refused before "
                    "execution, so a mutation may be sent again once"),
    403: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "forbidden"),
    404: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "no such endpoint"),
    405: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "wrong method"),
    408: StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "request timeout"),
    413: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "body too large"),
    415: StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "wrong content type"),
    429: StatusRule(ErrorClass.RATE_LIMITED, ErrorClass.RATE_LIMITED, False, "rate window exceeded; refused "
                    "before execution"),
    500: StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "server error"),
    502: StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "bad gateway"),
    503: StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "service unavailable"),
    504: StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "gateway timeout"),
}
OTHER_4XX = StatusRule(ErrorClass.PERMANENT, ErrorClass.PERMANENT, False, "any other 4xx")
OTHER_5XX = StatusRule(ErrorClass.TRANSIENT, ErrorClass.AMBIGUOUS, True, "any other 5xx")


def status_rule(status: int) -> StatusRule:
    return STATUS_RULES.get(status) or (OTHER_5XX if status >= 500 else OTHER_4XX)


def _codes(table: type[IntEnum], *names: str) -> frozenset[int]:
    return frozenset(int(table[name]) for name in names)


# Codes that are NOT permanent; every other documented non-zero code of an endpoint is a permanent rejection.
CODE_OVERRIDES: dict[str, dict[int, ErrorClass]] = {
    LOGIN_KEY.path: {int(pe.LoginErrorCode.UNKNOWN_ERROR): ErrorClass.TRANSIENT},
    LOGIN_APP.path: {int(pe.LoginErrorCode.UNKNOWN_ERROR): ErrorClass.TRANSIENT},
    VALIDATE.path: {
        int(pe.ValidateErrorCode.INVALID_SESSION): ErrorClass.AUTH,
        int(pe.ValidateErrorCode.SESSION_NOT_FOUND): ErrorClass.AUTH,
        int(pe.ValidateErrorCode.EXPIRED_TOKEN): ErrorClass.AUTH,
        int(pe.ValidateErrorCode.UNKNOWN_ERROR): ErrorClass.TRANSIENT,
    },
    LOGOUT.path: {int(pe.LogoutErrorCode.UNKNOWN_ERROR): ErrorClass.TRANSIENT},
    ORDER_PLACE.path: dict.fromkeys(
        _codes(pe.PlaceOrderErrorCode, "ORDER_PENDING", "UNKNOWN_ERROR"), ErrorClass.AMBIGUOUS),
    ORDER_MODIFY.path: dict.fromkeys(_codes(pe.ModifyOrderErrorCode, "PENDING", "UNKNOWN_ERROR"), ErrorClass.AMBIGUOUS),
    ORDER_CANCEL.path: dict.fromkeys(_codes(pe.CancelOrderErrorCode, "PENDING", "UNKNOWN_ERROR"), ErrorClass.AMBIGUOUS),
    POSITION_CLOSE.path: dict.fromkeys(
        _codes(pe.ClosePositionErrorCode, "ORDER_PENDING", "UNKNOWN_ERROR"), ErrorClass.AMBIGUOUS),
    POSITION_PARTIAL_CLOSE.path: dict.fromkeys(
        _codes(pe.PartialClosePositionErrorCode, "ORDER_PENDING", "UNKNOWN_ERROR"), ErrorClass.AMBIGUOUS),
}

PERMANENT_LOGIN_CODES = frozenset(int(c) for c in pe.LoginErrorCode if c not in (0, pe.LoginErrorCode.UNKNOWN_ERROR))


def endpoint_for(path: str) -> Endpoint:
    for endpoint in ENDPOINTS:
        if endpoint.path == path:
            return endpoint
    raise ValueError(f"unknown Gateway endpoint {path!r}")


def code_class(path: str, code: int) -> ErrorClass:
    """The class of a non-zero errorCode of endpoint ``path``: the override, else permanent if documented, else
    (undocumented) permanent for a read and ambiguous for a mutation."""
    endpoint = endpoint_for(path)
    override = CODE_OVERRIDES.get(path, {}).get(code)
    if override is not None:
        return override
    table = endpoint.codes
    documented = table is not None and code in {int(c) for c in table}
    if documented:
        return ErrorClass.PERMANENT
    return ErrorClass.AMBIGUOUS if endpoint.mutation else ErrorClass.PERMANENT


def _code_name(path: str, code: int) -> str:
    table = pe.ERROR_CODES.get(path)
    if table is None:
        return f"code {code}"
    try:
        return f"{table.__name__}.{table(code).name}"
    except ValueError:
        return f"{table.__name__}({code}, undocumented)"


def from_code(path: str, code: int, gateway_message: str | None) -> GatewayError:
    """The typed error for ``success: false`` with ``errorCode`` ``code`` from endpoint ``path``."""
    cls = code_class(path, code)
    name = _code_name(path, code)
    if path in (LOGIN_KEY.path, LOGIN_APP.path) and code in PERMANENT_LOGIN_CODES:
        error_type: type[GatewayError] = PermanentLoginError
    else:
        error_type = _CLASS_TO_ERROR[cls]
    detail = pe.describe(path, code)
    text = f"{endpoint_for(path).name} failed: {detail}"
    if gateway_message:
        text += f" ({gateway_message})"
    return error_type(text, endpoint=path, code=code, code_name=name, gateway_message=gateway_message)


def from_status(path: str, status: int, *, retry_after_s: float | None = None, detail: str = "") -> GatewayError:
    """The typed error for an HTTP status other than 200 from endpoint ``path``."""
    endpoint = endpoint_for(path)
    rule = status_rule(status)
    cls = rule.mutation_class if endpoint.mutation else rule.error_class
    text = f"{endpoint.name} answered HTTP {status} ({rule.note})"
    if detail:
        text += f": {detail}"
    return _CLASS_TO_ERROR[cls](
        text, endpoint=path, status=status, retry_after_s=retry_after_s, breaker_failure=rule.breaker_failure
    )


# Transport errors: (exception type, sent?, note). First match wins, so subclasses come before their bases.
TRANSPORT_RULES: tuple[tuple[type[Exception], bool, str], ...] = (
    (httpx.ConnectTimeout, False, "connect timeout: nothing was sent"),
    (httpx.ConnectError, False, "connection refused / DNS / TLS failure before sending"),
    (httpx.PoolTimeout, False, "no free connection in the pool: nothing was sent"),
    (httpx.ReadTimeout, True, "no answer in time after sending"),
    (httpx.WriteTimeout, True, "timed out while sending"),
    (httpx.RemoteProtocolError, True, "connection dropped before a complete answer"),
    (httpx.ReadError, True, "read error / connection reset after sending"),
    (httpx.WriteError, True, "write error while sending"),
    (httpx.TransportError, True, "other transport error"),
)


def from_transport(path: str, exc: Exception) -> GatewayError:
    """The typed error for a transport failure: transient when nothing was sent (safe even for a mutation), else
    transient for a read and ambiguous for a mutation."""
    endpoint = endpoint_for(path)
    sent, note = True, "unexpected transport failure"
    for exc_type, rule_sent, rule_note in TRANSPORT_RULES:
        if isinstance(exc, exc_type):
            sent, note = rule_sent, rule_note
            break
    cls = ErrorClass.AMBIGUOUS if (sent and endpoint.mutation) else ErrorClass.TRANSIENT
    return _CLASS_TO_ERROR[cls](
        f"{endpoint.name}: {type(exc).__name__} ({note})", endpoint=path, breaker_failure=True, sent=sent
    )


def from_timeout(path: str, timeout_s: float) -> GatewayError:
    """Our own ``api.timeout`` cancel scope expired: the request may have been sent."""
    endpoint = endpoint_for(path)
    cls = ErrorClass.AMBIGUOUS if endpoint.mutation else ErrorClass.TRANSIENT
    return _CLASS_TO_ERROR[cls](
        f"{endpoint.name}: no answer within api.timeout ({timeout_s:g} s)", endpoint=path, breaker_failure=True
    )


# --- docs/errors.md -------------------------------------------------------------------------------------------------


def _rows() -> Iterator[str]:
    yield "| HTTP status | read | mutation | counts for the breaker | note |"
    yield "|---|---|---|---|---|"
    for status, rule in [*sorted(STATUS_RULES.items()), ("other 4xx", OTHER_4XX), ("other 5xx", OTHER_5XX)]:
        yield (f"| {status} | {rule.error_class} | {rule.mutation_class} | {'yes' if rule.breaker_failure else 'no'} "
               f"| {rule.note} |")


def render_markdown() -> str:
    """The text of ``docs/errors.md``, generated from the tables above."""
    lines = [
        "# Gateway error mapping",
        "",
        "Generated from `engine/gateway/errors.py` by `python -m engine.gateway.errors --write`; do not edit by hand.",
        "",
        "## Classes",
        "",
        "| class | retried |",
        "|---|---|",
        *(f"| {cls} | {RETRIED[cls]} |" for cls in ErrorClass),
        "",
        "## HTTP status",
        "",
        *_rows(),
        "",
        "## Transport errors",
        "",
        "| exception | sent? | read | mutation | note |",
        "|---|---|---|---|---|",
        *(f"| `httpx.{t.__name__}` | {'maybe' if sent else 'no'} | transient | "
          f"{'ambiguous' if sent else 'transient'} | {note} |" for t, sent, note in TRANSPORT_RULES),
        "| `api.timeout` expired | maybe | transient | ambiguous | our cancel scope |",
        "",
        "## errorCode per endpoint (HTTP 200, `success: false`)",
        "",
        "Undocumented codes: permanent for reads, ambiguous for mutations. Permanent login codes stop the token "
        "manager (no retry).",
        "",
    ]
    for endpoint in ENDPOINTS:
        table = endpoint.codes
        if table is None:
            continue
        kind = "mutation" if endpoint.mutation else "read"
        lines += [f"### {endpoint.path} ({kind})", "", "| code | name | class | meaning |", "|---|---|---|---|"]
        members = [c for c in table if int(c) != 0]
        if not members:
            lines.append("| - | (only success is documented) | | |")
        for member in members:
            meaning = pe.MEANINGS.get((table, int(member)), "").replace("|", "/")
            lines.append(f"| {int(member)} | {member.name} | {code_class(endpoint.path, int(member))} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.gateway.errors", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {DOC_PATH} instead of printing")
    args = parser.parse_args(argv)
    text = render_markdown()
    if args.write:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
