"""The user hub's four events (account, order, position, trade), read straight from their JSON into records.

Why: every user-hub event carries one of the four Gateway entities. Parsing its record into dicts and then reading
the dicts into a record (:meth:`~engine.protocol.records.WireRecord.model_validate`) built the same payload twice;
msgspec reads the JSON text into the record in one pass. In process, the engine's whole event path (codec, hand-off,
mirror) went from ~45k to ~34k instructions per event (callgrind, one-off).

Only the usual shape is read this way: a record ``{"type": 1, "target": <one of the four>, "arguments": [{"action":
..., "data": {...}}]}`` with nothing else in it, whose ``data`` its record accepts. The Invocation then carries one
:class:`StreamPayload` as its argument. Anything else (another target, a bare object, a list, a wrapper in a wrapper,
a payload the record refuses, an extra field) raises, and the codec reads that record the general way, into dicts,
for the mirror's defensive unwrapping. Both readings give the same record, a property test holds them equal
(tests/protocol/test_user_events.py).
"""

from __future__ import annotations

from typing import Any, Final, Generic, Literal, TypeVar, Union

import msgspec

from engine.protocol.records import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel, WireRecord

ACCOUNT_EVENT: Final = "GatewayUserAccount"
ORDER_EVENT: Final = "GatewayUserOrder"
POSITION_EVENT: Final = "GatewayUserPosition"
TRADE_EVENT: Final = "GatewayUserTrade"
USER_RECORDS: Final[dict[str, type[WireRecord]]] = {
    ACCOUNT_EVENT: TradingAccountModel,
    ORDER_EVENT: OrderModel,
    POSITION_EVENT: PositionModel,
    TRADE_EVENT: HalfTradeModel,
}
"""User-hub event target -> the record its payload is (the ``GatewayUser*`` payload classes add no field)."""

R = TypeVar("R", bound=WireRecord)


class StreamPayload(msgspec.Struct, Generic[R], forbid_unknown_fields=True, gc=False):
    """``{"action": ..., "data": {...}}`` with its ``data`` read into a record. ``action`` is kept as sent: the
    mirror never reads it (nor type-checks it on the general path). Untracked by the collector: JSON cannot build
    a reference cycle."""

    data: R
    action: Any = None


def _envelope(target: str, record: type[WireRecord]) -> type[msgspec.Struct]:
    """``{"type": 1, "target": target, "arguments": [<StreamPayload of record>]}`` and nothing else (the target is
    the union's tag)."""
    fields = [("type", Literal[1]), ("arguments", tuple[StreamPayload[record]])]  # type: ignore[valid-type]
    return msgspec.defstruct(f"_{record.__name__}Event", fields, tag_field="target", tag=target,
                             forbid_unknown_fields=True, gc=False)


_ENVELOPES: Final = {_envelope(target, record): target for target, record in USER_RECORDS.items()}
_decode: Final = msgspec.json.Decoder(Union[tuple(_ENVELOPES)]).decode  # noqa: UP007 - a union built at run time


def read_user_event(record: str | bytes) -> tuple[str, tuple[StreamPayload[Any]]]:
    """``(target, (payload,))`` of a user-hub event record of the usual shape; raises ``msgspec.DecodeError`` (or its
    subclass ``msgspec.ValidationError``) for any other record, which is then read the general way."""
    envelope = _decode(record)
    return _ENVELOPES[type(envelope)], envelope.arguments
