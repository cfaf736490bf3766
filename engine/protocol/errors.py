"""Per-endpoint error-code tables of the Gateway (docs/projectx-gateway.md §3-§5).

Every endpoint has its own ``errorCode`` enum, and the numbers do NOT line up between endpoints (``5`` is
OutsideTradingHours on place, UnknownError on modify, InvalidCloseSize on partialClose). So a code only means
something together with its endpoint: :data:`ERROR_CODES` maps the endpoint path to its enum, and :func:`describe`
names a code. :data:`MEANINGS` carries the reference's gloss for the codes whose meaning is not obvious from the name;
the engine's outcome classification is built on top of these tables.
"""

from __future__ import annotations

from enum import IntEnum


class LoginErrorCode(IntEnum):
    SUCCESS = 0
    USER_NOT_FOUND = 1
    PASSWORD_VERIFICATION_FAILED = 2
    INVALID_CREDENTIALS = 3
    APP_NOT_FOUND = 4
    APP_VERIFICATION_FAILED = 5
    INVALID_DEVICE = 6
    AGREEMENTS_NOT_SIGNED = 7
    UNKNOWN_ERROR = 8
    API_SUBSCRIPTION_NOT_FOUND = 9
    API_KEY_AUTHENTICATION_DISABLED = 10


class ValidateErrorCode(IntEnum):
    SUCCESS = 0
    INVALID_SESSION = 1
    SESSION_NOT_FOUND = 2
    EXPIRED_TOKEN = 3
    UNKNOWN_ERROR = 4


class LogoutErrorCode(IntEnum):
    SUCCESS = 0
    INVALID_SESSION = 1
    UNKNOWN_ERROR = 2


class SearchAccountErrorCode(IntEnum):
    SUCCESS = 0


class SearchContractErrorCode(IntEnum):
    SUCCESS = 0


class SearchContractByIdErrorCode(IntEnum):
    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1


class ListAvailableContractErrorCode(IntEnum):
    SUCCESS = 0


class RetrieveBarErrorCode(IntEnum):
    SUCCESS = 0
    CONTRACT_NOT_FOUND = 1
    UNIT_INVALID = 2
    UNIT_NUMBER_INVALID = 3
    LIMIT_INVALID = 4


class PlaceOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_REJECTED = 2
    INSUFFICIENT_FUNDS = 3
    ACCOUNT_VIOLATION = 4
    OUTSIDE_TRADING_HOURS = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    CONTRACT_NOT_FOUND = 8
    CONTRACT_NOT_ACTIVE = 9
    ACCOUNT_REJECTED = 10


class ModifyOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6
    CONTRACT_NOT_FOUND = 7


class CancelOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    ORDER_NOT_FOUND = 2
    REJECTED = 3
    PENDING = 4
    UNKNOWN_ERROR = 5
    ACCOUNT_REJECTED = 6


class SearchOrderErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1


class SearchOrderByIdErrorCode(IntEnum):
    SUCCESS = 0
    ORDER_NOT_FOUND = 1


class OrderQueryErrorCode(IntEnum):
    """Order/v2/query: undocumented beyond success; the simulator uses 1 for an unknown account."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1


class SearchPositionErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1


class ClosePositionErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    ORDER_REJECTED = 5
    ORDER_PENDING = 6
    UNKNOWN_ERROR = 7
    ACCOUNT_REJECTED = 8


class PartialClosePositionErrorCode(IntEnum):
    """Shifted by one against :class:`ClosePositionErrorCode` from 5 on (5 is InvalidCloseSize here)."""

    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1
    POSITION_NOT_FOUND = 2
    CONTRACT_NOT_FOUND = 3
    CONTRACT_NOT_ACTIVE = 4
    INVALID_CLOSE_SIZE = 5
    ORDER_REJECTED = 6
    ORDER_PENDING = 7
    UNKNOWN_ERROR = 8
    ACCOUNT_REJECTED = 9


class SearchTradeErrorCode(IntEnum):
    SUCCESS = 0
    ACCOUNT_NOT_FOUND = 1


ERROR_CODES: dict[str, type[IntEnum]] = {
    "/api/Auth/loginKey": LoginErrorCode,
    "/api/Auth/loginApp": LoginErrorCode,
    "/api/Auth/validate": ValidateErrorCode,
    "/api/Auth/logout": LogoutErrorCode,
    "/api/Account/search": SearchAccountErrorCode,
    "/api/Contract/search": SearchContractErrorCode,
    "/api/Contract/searchById": SearchContractByIdErrorCode,
    "/api/Contract/available": ListAvailableContractErrorCode,
    "/api/History/retrieveBars": RetrieveBarErrorCode,
    "/api/Order/place": PlaceOrderErrorCode,
    "/api/Order/modify": ModifyOrderErrorCode,
    "/api/Order/cancel": CancelOrderErrorCode,
    "/api/Order/search": SearchOrderErrorCode,
    "/api/Order/searchOpen": SearchOrderErrorCode,
    "/api/Order/searchById": SearchOrderByIdErrorCode,
    "/api/Order/v2/query": OrderQueryErrorCode,
    "/api/Position/searchOpen": SearchPositionErrorCode,
    "/api/Position/closeContract": ClosePositionErrorCode,
    "/api/Position/partialCloseContract": PartialClosePositionErrorCode,
    "/api/Trade/search": SearchTradeErrorCode,
}
"""Endpoint path (as served, ``/api/<Controller>/<action>``) -> its errorCode enum."""

MEANINGS: dict[tuple[type[IntEnum], int], str] = {
    (LoginErrorCode, 3): "bad userName/apiKey: the answer is HTTP 200 with token null",
    (LoginErrorCode, 7): "'Please log into the ProjectX platform and complete the required agreements'",
    (LoginErrorCode, 9): "no active API subscription ('User lacks subscription')",
    (LoginErrorCode, 10): "the firm disabled API-key login",
    (ValidateErrorCode, 3): "the token expired; log in again with Auth/loginKey",
    (PlaceOrderErrorCode, 2): (
        "every validation rejection: bad type/side/size/price, duplicate customTag ('already in use', permanent, "
        "rejected orders' tags included), bracket rules, and live also 'Outside of trading hours'; a non-null "
        "orderId may still be returned for a created-then-rejected order: read errorMessage"
    ),
    (PlaceOrderErrorCode, 5): "outside trading hours (live servers answered 2 with that message instead)",
    (PlaceOrderErrorCode, 6): "the order is pending: outcome not yet known, verify before retrying",
    (PlaceOrderErrorCode, 8): "unknown contractId",
    (ModifyOrderErrorCode, 2): "no such order (errorMessage null)",
    (ModifyOrderErrorCode, 3): "rejected: bad price/trail price or no last price",
    (CancelOrderErrorCode, 2): "no such order (errorMessage null)",
    (CancelOrderErrorCode, 6): "'Follower accounts cannot cancel orders' / 'Live accounts not supported'",
    (PartialClosePositionErrorCode, 6): "market closed or no price (errorMessage null)",
    (PartialClosePositionErrorCode, 9): "live accounts",
}


def describe(path: str, code: int) -> str:
    """``"PlaceOrderErrorCode.ORDER_REJECTED (2)"`` for a code returned by the endpoint at ``path``."""
    table = ERROR_CODES.get(path)
    if table is None:
        return f"unknown endpoint {path} code {code}"
    try:
        member = table(code)
    except ValueError:
        return f"{table.__name__}: undocumented code {code}"
    meaning = MEANINGS.get((table, code))
    text = f"{table.__name__}.{member.name} ({code})"
    return f"{text}: {meaning}" if meaning else text
