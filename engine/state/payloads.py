"""Defensive unwrapping of hub payloads into typed models.

Why: the Gateway's documentation shows bare objects, live captures show ``{"action", "data"}`` wrappers on some
events and flat objects on others, and some clients see lists (docs/projectx-gateway.md §7.4). The mirror must take
every one of those forms, and a payload it cannot read must become a counted, logged :class:`Malformed` item, never
an exception on the event path.

Pure functions, no I/O: the mirror calls :func:`unwrap` on an Invocation's ``arguments`` and :func:`parse_user` on
each item. (The usual ``[{action, data}]`` shape of the four user events usually arrives already read into its record
by the codec, :mod:`engine.protocol.user_events`; what reaches this module is everything else.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import pydantic

from engine.protocol.models import (
    GatewayQuote,
    HalfTradeModel,
    OrderModel,
    PositionModel,
    TradingAccountModel,
)
from engine.protocol.user_events import (
    ACCOUNT_EVENT,
    ORDER_EVENT,
    POSITION_EVENT,
    TRADE_EVENT,
    USER_RECORDS,
    StreamPayload,
)

QUOTE_EVENT: Final = "GatewayQuote"
USER_EVENTS: Final = frozenset({ACCOUNT_EVENT, ORDER_EVENT, POSITION_EVENT, TRADE_EVENT})
MARKET_EVENTS: Final = frozenset({QUOTE_EVENT, "GatewayTrade", "GatewayDepth"})

UserModel = TradingAccountModel | OrderModel | PositionModel | HalfTradeModel
"""Stream payloads are parsed into the REST models (the ``GatewayUser*`` payload classes add no field), so an order
from the stream and the same order from Order/search compare equal."""

USER_VALIDATORS: Final[Mapping[str, Callable[[dict[str, Any]], UserModel]]] = MappingProxyType({
    target: record.model_validate for target, record in USER_RECORDS.items()})  # type: ignore[misc]
"""User event target -> the function that validates one payload object into its record (raising
``pydantic.ValidationError``): compiled (:mod:`engine.protocol.records`), with pydantic's reading for what msgspec
refuses."""


@dataclass(frozen=True, slots=True)
class Item:
    """One object found in a payload, with the wrapper's ``action`` when there was one."""

    data: dict[str, Any]
    action: int | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """Something in a payload that is not an object (or a wrapper of one): why, in a short phrase."""

    reason: str


_SEQUENCES: Final = (list, tuple)


def _is_wrapper(value: dict[str, Any]) -> bool:
    return "data" in value and isinstance(value["data"], dict | list) and set(value) <= {"action", "data"}


def _walk(value: Any, action: int | None, depth: int, out: list[Item | Malformed]) -> None:
    if depth > 4:
        out.append(Malformed("payload nested too deeply"))
        return
    if isinstance(value, dict):
        if _is_wrapper(value):
            raw_action = value.get("action")
            wrapped_action = raw_action if isinstance(raw_action, int) and not isinstance(raw_action, bool) else None
            _walk(value["data"], wrapped_action, depth + 1, out)
        else:
            out.append(Item(value, action))
    elif isinstance(value, list | tuple):
        if not value:
            return
        for element in value:
            _walk(element, action, depth + 1, out)
    else:
        out.append(Malformed(f"expected an object, got {type(value).__name__}"))


def single_object(arguments: Sequence[Any]) -> dict[str, Any] | None:
    """The object of the two shapes nearly every event has, one wrapper around one object (``[{action, data}]``) or
    one bare object (``[{...}]``); None for any other shape (:func:`unwrap` reads those). The hot path of the mirror:
    the same object :func:`unwrap` would yield, without building a list and an :class:`Item` for it."""
    if type(arguments) in _SEQUENCES and len(arguments) == 1 and type(arguments[0]) is dict:
        value = arguments[0]
        data = value.get("data")
        if type(data) is dict and (len(value) == 1 or (len(value) == 2 and "action" in value)):
            if not _is_wrapper(data):
                return data
        elif not _is_wrapper(value):
            return value
    return None


def unwrap(arguments: Sequence[Any]) -> list[Item | Malformed]:
    """Every object in a user-hub Invocation's ``arguments``: ``[{action, data}]``, ``[{...}]``, ``[[...]]``, or a
    wrapper whose ``data`` is itself a list. An empty list yields nothing; a scalar yields a :class:`Malformed`."""
    data = single_object(arguments)
    if data is not None:  # same result as the walk below; a wrapper of a wrapper or of a list takes the walk
        wrapper = arguments[0]
        raw_action = wrapper.get("action") if wrapper is not data else None
        return [Item(data, raw_action if type(raw_action) is int else None)]
    if not isinstance(arguments, list | tuple):
        return [Malformed(f"arguments are not a list but {type(arguments).__name__}")]
    if not arguments:
        return [Malformed("no arguments")]
    out: list[Item | Malformed] = []
    for argument in arguments:
        _walk(argument, None, 0, out)
    return out


def parse_user(target: str, item: Item) -> UserModel | Malformed:
    """The typed payload of a user-hub event, or why it could not be read."""
    validate = USER_VALIDATORS.get(target)
    if validate is None:
        return Malformed(f"unknown user event {target!r}")
    try:
        return validate(item.data)
    except pydantic.ValidationError as exc:
        return Malformed(summarise(exc))


def parse_user_event(target: str, arguments: Sequence[Any]) -> list[UserModel | Malformed]:
    """Every payload of a user-hub Invocation as its record, or why one could not be read, whichever way the codec
    delivered ``arguments``: one :class:`~engine.protocol.user_events.StreamPayload` (the user hub's usual shape, read
    straight into its record) or dicts of any shape :func:`unwrap` reads. For consumers other than the mirror (which
    inlines the same check on its hot path)."""
    if type(arguments) is tuple and len(arguments) == 1 and type(arguments[0]) is StreamPayload:
        record = arguments[0].data
        expected = USER_RECORDS.get(target)
        if expected is None:
            return [Malformed(f"unknown user event {target!r}")]
        if type(record) is not expected:
            return [Malformed(f"payload is a {type(record).__name__}, not a {expected.__name__}")]
        return [record]  # type: ignore[list-item]  # checked above: exactly the target's record
    return [parse_user(target, item) if isinstance(item, Item) else item for item in unwrap(arguments)]


def parse_quote(arguments: Sequence[Any]) -> tuple[str, dict[str, Any]] | Malformed:
    """``GatewayQuote`` arguments ``[contractId, {partial quote}]`` (a wrapper around the quote is tolerated)."""
    if not isinstance(arguments, list | tuple) or len(arguments) < 2:
        return Malformed("quote arguments are not [contractId, payload]")
    contract_id, payload = arguments[0], arguments[1]
    if not isinstance(contract_id, str) or not contract_id:
        return Malformed("quote contractId is not a non-empty string")
    items = [i for i in unwrap([payload]) if isinstance(i, Item)]
    if len(items) != 1:
        return Malformed("quote payload is not one object")
    try:
        GatewayQuote.model_validate(items[0].data)
    except pydantic.ValidationError as exc:
        return Malformed(summarise(exc))
    return contract_id, items[0].data


def summarise(exc: pydantic.ValidationError) -> str:
    """The first three problems of a validation error, one line (what the mirror logs for a malformed payload)."""
    parts = []
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) for p in error["loc"]) or "$"
        parts.append(f"{loc}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
