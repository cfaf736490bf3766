"""The SignalR JSON hub protocol: record framing, the handshake and message types 1-9, encode and decode.

Why it lives here: the simulator's hubs and the engine's hub client speak the same wire format, and a codec written
once (and fuzzed once) cannot disagree with itself. It is pure: no I/O, no Trio, no clock. A transport feeds it the
text (or bytes) of each websocket frame and writes out the strings it encodes.

Wire rules (ASP.NET Core ``HubProtocol.md``; see ``docs/projectx-gateway.md`` section 9):

- every message is one JSON object followed by the record separator ``0x1E``; one frame may carry several records
  and a record may in principle be split across frames, so :class:`RecordBuffer` keeps the partial tail;
- the first record each way is the handshake (``{"protocol":"json","version":1}`` / ``{}`` or ``{"error":...}``);
- then typed messages keyed by ``type``: 1 Invocation, 2 StreamItem, 3 Completion, 4 StreamInvocation,
  5 CancelInvocation, 6 Ping, 7 Close (8 Ack and 9 Sequence belong to stateful reconnect and are decoded too).

Tolerance policy: a record that is not JSON, not an object, or misses / mistypes a required field raises one
:class:`ProtocolError` naming what is wrong. Unknown *fields* are ignored and counted, and unknown *message types*
decode to :class:`UnknownMessage` and are counted (the official JS client ignores them as well), so a newer server
never breaks an older client. Encoding always yields ``str`` (safe for websocket text frames): JSON escapes every
control character inside strings, so ``0x1E`` can only ever appear as the terminator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

import msgspec
import orjson

RECORD_SEPARATOR: Final = "\x1e"
_RS_BYTES: Final = b"\x1e"

DEFAULT_MAX_RECORD_SIZE: Final = 16 * 1024 * 1024
"""Largest record (in characters or bytes) the buffer holds before declaring the peer broken."""


class ProtocolError(ValueError):
    """A record that violates the SignalR JSON protocol. The message says what is wrong; it never echoes payloads
    beyond a short prefix, so a token inside a malformed record cannot leak into a log line in full."""


# --------------------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    protocol: str = "json"
    version: int = 1


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    error: str | None = None
    """None means success (``{}`` on the wire)."""


class Invocation(NamedTuple):
    """Type 1. Without ``invocation_id`` the call is fire-and-forget and the callee must not answer.

    A named tuple rather than a frozen dataclass like the other messages: a hub pushes every server event as one, so
    it is built once per event on the engine's hot path, and a frozen dataclass pays an ``object.__setattr__`` per
    field (~0.6 us per event against ~0.1 us for the tuple). It is just as immutable."""

    target: str
    arguments: tuple[Any, ...] = ()
    invocation_id: str | None = None
    stream_ids: tuple[str, ...] | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StreamItem:
    """Type 2."""

    invocation_id: str
    item: Any
    headers: Mapping[str, str] | None = None


_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class Completion:
    """Type 3: the answer to an Invocation with an id. ``has_result`` tells a ``null`` result from a void one."""

    invocation_id: str
    result: Any = None
    error: str | None = None
    has_result: bool = False
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.error is not None and self.has_result:
            raise ProtocolError("Completion may carry 'result' or 'error', not both")

    @classmethod
    def void(cls, invocation_id: str) -> Completion:
        return cls(invocation_id)

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> Completion:
        return cls(invocation_id, result=result, has_result=True)

    @classmethod
    def failure(cls, invocation_id: str, error: str) -> Completion:
        return cls(invocation_id, error=error)


@dataclass(frozen=True, slots=True)
class StreamInvocation:
    """Type 4."""

    invocation_id: str
    target: str
    arguments: tuple[Any, ...] = ()
    stream_ids: tuple[str, ...] | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class CancelInvocation:
    """Type 5."""

    invocation_id: str
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """Type 6: keep-alive, no fields."""


@dataclass(frozen=True, slots=True)
class Close:
    """Type 7. ``allow_reconnect=True`` makes the official clients treat it as a drop and reconnect."""

    error: str | None = None
    allow_reconnect: bool | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """Type 8 (stateful reconnect only)."""

    sequence_id: int


@dataclass(frozen=True, slots=True)
class Sequence:
    """Type 9 (stateful reconnect only)."""

    sequence_id: int


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A record with a message type this codec does not know; callers should ignore it."""

    type: int
    fields: Mapping[str, Any] = field(default_factory=dict)


HubMessage = (
    Invocation | StreamItem | Completion | StreamInvocation | CancelInvocation | Ping | Close | Ack | Sequence
    | UnknownMessage
)

MESSAGE_TYPES: Final[Mapping[type, int]] = {
    Invocation: 1,
    StreamItem: 2,
    Completion: 3,
    StreamInvocation: 4,
    CancelInvocation: 5,
    Ping: 6,
    Close: 7,
    Ack: 8,
    Sequence: 9,
}


# --------------------------------------------------------------------------------------------------------------
# Framing


class RecordBuffer:
    """Splits a stream of frames into records on ``0x1E``, keeping an incomplete tail across :meth:`feed` calls.

    Text frames are fed as ``str`` and yield ``str`` records; binary data as ``bytes`` and yields ``bytes`` records
    (``0x1E`` never occurs inside a multi-byte UTF-8 sequence, so splitting bytes is safe). Empty records (two
    separators in a row) are skipped.
    """

    def __init__(self, max_record_size: int = DEFAULT_MAX_RECORD_SIZE) -> None:
        if max_record_size <= 0:
            raise ValueError("max_record_size must be positive")
        self.max_record_size = max_record_size
        self._tail: str | bytes = ""

    @property
    def pending(self) -> int:
        """Size of the incomplete record held back (0 when the last frame ended on a separator)."""
        return len(self._tail)

    def feed(self, data: str | bytes | bytearray | memoryview) -> list[str | bytes]:
        """The records ``data`` completed (with the held tail in front); an incomplete last record is held back."""
        return self.split(self.take_complete(data))

    def take_complete(self, data: str | bytes | bytearray | memoryview) -> str | bytes:
        """The first half of :meth:`feed`: the held tail and ``data`` up to their last separator (the complete
        records, separators between them, the last one dropped; empty when no record completed), holding back what
        follows it. Raises ProtocolError when the held-back part outgrows ``max_record_size``."""
        if isinstance(data, str):
            chunk: str | bytes = data
        elif isinstance(data, bytes | bytearray | memoryview):
            chunk = bytes(data)
        else:
            raise TypeError(f"RecordBuffer.feed takes str or bytes, not {type(data).__name__}")
        if self._tail and type(self._tail) is not type(chunk):
            chunk = _coerce_like(chunk, self._tail)
        complete: str | bytes
        if isinstance(chunk, str):
            text = (self._tail if isinstance(self._tail, str) else "") + chunk  # an empty tail may be of either type
            cut = text.rfind(RECORD_SEPARATOR)
            complete, self._tail = (text[:cut], text[cut + 1:]) if cut >= 0 else ("", text)
        else:
            raw = (self._tail if isinstance(self._tail, bytes) else b"") + chunk
            cut = raw.rfind(_RS_BYTES)
            complete, self._tail = (raw[:cut], raw[cut + 1:]) if cut >= 0 else (b"", raw)
        if len(self._tail) > self.max_record_size:
            size = len(self._tail)
            self._tail = ""
            raise ProtocolError(f"record exceeds {self.max_record_size} without a record separator (got {size})")
        return complete

    def split(self, complete: str | bytes) -> list[str | bytes]:
        """The second half of :meth:`feed`: the records of what :meth:`take_complete` returned, empty ones skipped;
        raises ProtocolError for a record longer than ``max_record_size``."""
        parts: list[str] | list[bytes] = (complete.split(RECORD_SEPARATOR) if isinstance(complete, str)
                                          else complete.split(_RS_BYTES))
        records: list[str | bytes] = []
        for part in parts:
            if not part:
                continue
            if len(part) > self.max_record_size:
                raise ProtocolError(f"record of size {len(part)} exceeds the limit of {self.max_record_size}")
            records.append(part)
        return records


def _coerce_like(chunk: str | bytes, like: str | bytes) -> str | bytes:
    if isinstance(like, bytes):
        assert isinstance(chunk, str)
        try:
            return chunk.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError(f"frame is not valid UTF-8 text: {exc.reason}") from None
    assert isinstance(chunk, bytes)
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"frame is not valid UTF-8: {exc.reason} at byte {exc.start}") from None


# --------------------------------------------------------------------------------------------------------------
# Decoding


def _preview(record: str | bytes) -> str:
    text = record if isinstance(record, str) else record[:60].decode("utf-8", "replace")
    text = text[:40]
    return repr(text) + ("..." if len(record) > 40 else "")


_json_loads = msgspec.json.decode
"""The codec's JSON parser, the same one its hot path (:func:`_server_events`) reads records with, so both paths read
the same values (e.g. an integer beyond 64 bits stays an integer)."""


def _load_object(record: str | bytes, what: str) -> dict[str, Any]:
    try:
        value = _json_loads(record)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"{what} is not valid JSON ({exc}): {_preview(record)}") from None
    except RecursionError:  # msgspec's parser recurses per nesting level (orjson stopped at 1024 with its own error)
        raise ProtocolError(f"{what} is nested too deeply to read: {_preview(record)}") from None
    except UnicodeEncodeError:  # a str holding a lone surrogate: msgspec encodes it to UTF-8 first (orjson refused it)
        raise ProtocolError(f"{what} is not valid UTF-8 text (a lone surrogate): {_preview(record)}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(value).__name__}: {_preview(record)}")
    return value


class _Fields:
    """Reads typed fields out of one decoded object and remembers which keys were consumed."""

    __slots__ = ("_obj", "_seen", "_what")

    def __init__(self, obj: dict[str, Any], what: str) -> None:
        self._obj = obj
        self._what = what
        self._seen: set[str] = set()

    def _get(self, key: str) -> Any:
        self._seen.add(key)
        return self._obj.get(key, _UNSET)

    def required_str(self, key: str) -> str:
        value = self._get(key)
        if value is _UNSET or value is None:
            raise ProtocolError(f"{self._what} is missing required field '{key}'")
        if not isinstance(value, str):
            raise ProtocolError(f"{self._what} field '{key}' must be a string, got {type(value).__name__}")
        return value

    def optional_str(self, key: str) -> str | None:
        value = self._get(key)
        if value is _UNSET or value is None:
            return None
        if not isinstance(value, str):
            raise ProtocolError(f"{self._what} field '{key}' must be a string, got {type(value).__name__}")
        return value

    def optional_bool(self, key: str) -> bool | None:
        value = self._get(key)
        if value is _UNSET or value is None:
            return None
        if not isinstance(value, bool):
            raise ProtocolError(f"{self._what} field '{key}' must be a boolean, got {type(value).__name__}")
        return value

    def required_int(self, key: str) -> int:
        value = self._get(key)
        if value is _UNSET or value is None:
            raise ProtocolError(f"{self._what} is missing required field '{key}'")
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"{self._what} field '{key}' must be an integer, got {type(value).__name__}")
        return value

    def required_array(self, key: str) -> tuple[Any, ...]:
        value = self._get(key)
        if value is _UNSET or value is None:
            raise ProtocolError(f"{self._what} is missing required field '{key}'")
        if not isinstance(value, list):
            raise ProtocolError(f"{self._what} field '{key}' must be an array, got {type(value).__name__}")
        return tuple(value)

    def optional_str_array(self, key: str) -> tuple[str, ...] | None:
        value = self._get(key)
        if value is _UNSET or value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ProtocolError(f"{self._what} field '{key}' must be an array of strings")
        return tuple(value)

    def headers(self) -> Mapping[str, str] | None:
        value = self._get("headers")
        if value is _UNSET or value is None:
            return None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ProtocolError(f"{self._what} field 'headers' must be an object of strings")
        return value

    def present(self, key: str) -> bool:
        self._seen.add(key)
        return key in self._obj

    def raw(self, key: str) -> Any:
        self._seen.add(key)
        return self._obj[key]

    def unknown(self) -> list[str]:
        return [key for key in self._obj if key not in self._seen]


class MessageDecoder:
    """Decodes records into messages and counts what it tolerated.

    ``unknown_fields`` counts ignored keys by name (``"Invocation.foo"``); ``unknown_types`` counts records whose
    ``type`` is not known. Both are plain :class:`collections.Counter` objects the caller may read or reset.
    """

    def __init__(self) -> None:
        self.unknown_fields: Counter[str] = Counter()
        self.unknown_types: Counter[int] = Counter()

    @property
    def unknown_field_count(self) -> int:
        return sum(self.unknown_fields.values())

    @property
    def unknown_type_count(self) -> int:
        return sum(self.unknown_types.values())

    def _note_unknown(self, fields: _Fields, name: str) -> None:
        for key in fields.unknown():
            self.unknown_fields[f"{name}.{key}"] += 1

    def decode_handshake_request(self, record: str | bytes) -> HandshakeRequest:
        fields = _Fields(_load_object(record, "handshake request"), "handshake request")
        protocol = fields.required_str("protocol")
        version = fields.required_int("version")
        self._note_unknown(fields, "HandshakeRequest")
        return HandshakeRequest(protocol, version)

    def decode_handshake_response(self, record: str | bytes) -> HandshakeResponse:
        fields = _Fields(_load_object(record, "handshake response"), "handshake response")
        error = fields.optional_str("error")
        fields.present("minorVersion")  # sent by older servers; carries nothing we use
        self._note_unknown(fields, "HandshakeResponse")
        return HandshakeResponse(error)

    def decode(self, record: str | bytes) -> HubMessage:
        obj = _load_object(record, "message")
        type_value = obj.get("type", _UNSET)
        if type_value == 1 and type(type_value) is int and len(obj) == 3:
            # Hot path: a server-to-client event is exactly {type, target, arguments}. When both are present and
            # well typed there is no other key (len 3), so nothing is unknown and the general path would build the
            # same Invocation; anything else falls through to it (and to its error messages).
            target = obj.get("target")
            arguments = obj.get("arguments")
            if type(target) is str and type(arguments) is list:
                return Invocation(target, tuple(arguments))
        if type_value is _UNSET:
            raise ProtocolError(f"message is missing required field 'type': {_preview(record)}")
        if not isinstance(type_value, int) or isinstance(type_value, bool):
            raise ProtocolError(f"message field 'type' must be an integer, got {type(type_value).__name__}")
        decoder = _DECODERS.get(type_value)
        if decoder is None:
            self.unknown_types[type_value] += 1
            return UnknownMessage(type_value, {k: v for k, v in obj.items() if k != "type"})
        name, fn = decoder
        fields = _Fields(obj, name)
        fields.present("type")
        message = fn(fields)
        self._note_unknown(fields, name)
        return message


def _invocation(f: _Fields) -> Invocation:
    invocation_id = f.optional_str("invocationId")
    target = f.required_str("target")
    arguments = f.required_array("arguments")
    return Invocation(target, arguments, invocation_id, f.optional_str_array("streamIds"), f.headers())


def _stream_item(f: _Fields) -> StreamItem:
    invocation_id = f.required_str("invocationId")
    if not f.present("item"):
        raise ProtocolError("StreamItem is missing required field 'item'")
    return StreamItem(invocation_id, f.raw("item"), f.headers())


def _completion(f: _Fields) -> Completion:
    invocation_id = f.required_str("invocationId")
    error = f.optional_str("error")
    has_result = f.present("result")
    if has_result and error is not None:
        raise ProtocolError("Completion carries both 'result' and 'error'")
    result = f.raw("result") if has_result else None
    return Completion(invocation_id, result, error, has_result, f.headers())


def _stream_invocation(f: _Fields) -> StreamInvocation:
    invocation_id = f.required_str("invocationId")
    target = f.required_str("target")
    arguments = f.required_array("arguments")
    return StreamInvocation(invocation_id, target, arguments, f.optional_str_array("streamIds"), f.headers())


def _cancel(f: _Fields) -> CancelInvocation:
    return CancelInvocation(f.required_str("invocationId"), f.headers())


def _ping(f: _Fields) -> Ping:
    return Ping()


def _close(f: _Fields) -> Close:
    return Close(f.optional_str("error"), f.optional_bool("allowReconnect"))


def _ack(f: _Fields) -> Ack:
    return Ack(f.required_int("sequenceId"))


def _sequence(f: _Fields) -> Sequence:
    return Sequence(f.required_int("sequenceId"))


_DECODERS: Final[dict[int, tuple[str, Callable[[_Fields], HubMessage]]]] = {
    1: ("Invocation", _invocation),
    2: ("StreamItem", _stream_item),
    3: ("Completion", _completion),
    4: ("StreamInvocation", _stream_invocation),
    5: ("CancelInvocation", _cancel),
    6: ("Ping", _ping),
    7: ("Close", _close),
    8: ("Ack", _ack),
    9: ("Sequence", _sequence),
}


# --------------------------------------------------------------------------------------------------------------
# Encoding


def _dumps(obj: Mapping[str, Any]) -> str:
    try:
        return orjson.dumps(obj).decode("utf-8") + RECORD_SEPARATOR
    except orjson.JSONEncodeError as exc:
        raise ProtocolError(f"cannot encode message as JSON: {exc}") from None


def _with_headers(obj: dict[str, Any], headers: Mapping[str, str] | None) -> dict[str, Any]:
    if headers is not None:
        obj["headers"] = dict(headers)
    return obj


def encode_handshake_request(request: HandshakeRequest | None = None) -> str:
    request = request or HandshakeRequest()
    return _dumps({"protocol": request.protocol, "version": request.version})


def encode_handshake_response(response: HandshakeResponse | None = None) -> str:
    if response is None or response.error is None:
        return "{}" + RECORD_SEPARATOR
    return _dumps({"error": response.error})


def to_wire(message: HubMessage) -> dict[str, Any]:
    """The JSON object of ``message`` (without the separator)."""
    match message:
        case Invocation():
            obj: dict[str, Any] = {"type": 1}
            if message.invocation_id is not None:
                obj["invocationId"] = message.invocation_id
            obj["target"] = message.target
            obj["arguments"] = message.arguments
            if message.stream_ids is not None:
                obj["streamIds"] = message.stream_ids
            return _with_headers(obj, message.headers)
        case StreamItem():
            return _with_headers({"type": 2, "invocationId": message.invocation_id, "item": message.item},
                                 message.headers)
        case Completion():
            obj = {"type": 3, "invocationId": message.invocation_id}
            if message.error is not None:
                obj["error"] = message.error
            elif message.has_result:
                obj["result"] = message.result
            return _with_headers(obj, message.headers)
        case StreamInvocation():
            obj = {"type": 4, "invocationId": message.invocation_id, "target": message.target,
                   "arguments": message.arguments}
            if message.stream_ids is not None:
                obj["streamIds"] = message.stream_ids
            return _with_headers(obj, message.headers)
        case CancelInvocation():
            return _with_headers({"type": 5, "invocationId": message.invocation_id}, message.headers)
        case Ping():
            return {"type": 6}
        case Close():
            obj = {"type": 7}
            if message.error is not None:
                obj["error"] = message.error
            if message.allow_reconnect is not None:
                obj["allowReconnect"] = message.allow_reconnect
            return obj
        case Ack():
            return {"type": 8, "sequenceId": message.sequence_id}
        case Sequence():
            return {"type": 9, "sequenceId": message.sequence_id}
        case UnknownMessage():
            return {**message.fields, "type": message.type}
    raise TypeError(f"not a SignalR message: {type(message).__name__}")


def encode(message: HubMessage) -> str:
    """One record: the message's JSON followed by ``0x1E``. Always a ``str`` safe for a websocket text frame."""
    return _dumps(to_wire(message))


def encode_many(messages: Iterable[HubMessage]) -> str:
    """Several records concatenated into one text frame."""
    return "".join(encode(message) for message in messages)


PING_RECORD: Final = encode(Ping())


# --------------------------------------------------------------------------------------------------------------
# A whole inbound stream: handshake first, then messages


Role = Literal["server", "client"]
TypedReader = Callable[[str], tuple[str, tuple[Any, ...]]]
"""Reads a server-event record of a known shape into ``(target, typed arguments)``; raises ``msgspec.DecodeError``
for any other record (see :class:`StreamReader`)."""
Decoded = HandshakeRequest | HandshakeResponse | HubMessage


class StreamReader:
    """Everything one side of a hub connection reads: the handshake record, then hub messages.

    ``role="server"`` expects a :class:`HandshakeRequest` first (a hub server reading a client);
    ``role="client"`` expects a :class:`HandshakeResponse` first (a hub client reading a server). Messages that
    follow the handshake in the same frame are returned from the same :meth:`feed` call, in order.

    ``read_typed`` (optional) reads the server events of a known shape straight into typed arguments, e.g.
    :func:`engine.protocol.user_events.read_user_event`: it returns ``(target, arguments)`` for a record it reads
    and raises ``msgspec.DecodeError`` for any other, which is then read the general way (dicts).
    """

    def __init__(self, role: Role, max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
                 read_typed: TypedReader | None = None) -> None:
        if role not in ("server", "client"):
            raise ValueError(f"role must be 'server' or 'client', not {role!r}")
        self.role: Role = role
        self.records = RecordBuffer(max_record_size)
        self.decoder = MessageDecoder()
        self.handshake_done = False
        self.read_typed = read_typed

    def feed(self, data: str | bytes) -> list[Decoded]:
        if self.handshake_done and type(data) is str:
            # Hot path: a text frame after the handshake. A hub pushes its events in frames of up to a few hundred
            # records; when every record of the frame is a plain server event they are parsed in one go.
            complete = self.records.take_complete(data)
            if not complete:
                return []
            if isinstance(complete, str):  # bytes when a binary frame's tail is still held: record by record
                events = _server_events(complete, self.records.max_record_size, self.read_typed)
                if events is not None:
                    return events
            return [self.decoder.decode(record) for record in self.records.split(complete)]
        out: list[Decoded] = []
        for record in self.records.feed(data):
            if not self.handshake_done:
                self.handshake_done = True
                if self.role == "server":
                    out.append(self.decoder.decode_handshake_request(record))
                else:
                    out.append(self.decoder.decode_handshake_response(record))
            else:
                out.append(self.decoder.decode(record))
        return out


_new_tuple = tuple.__new__
"""``tuple.__new__(Invocation, fields)``: a named tuple built without its Python-level ``__new__`` / ``_make`` (both
Python functions, ~8% of the engine's event path when called per event)."""


class _ServerEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The plain server event ``{"type": 1, "target": str, "arguments": [...]}`` and nothing else (no invocation id,
    no stream ids, no headers, no unknown field): the only record shape the hot path reads."""

    type: Literal[1]
    target: str
    arguments: tuple[Any, ...]


_read_server_event = msgspec.json.Decoder(_ServerEvent).decode


def _server_events(complete: str, max_record_size: int, read_typed: TypedReader | None = None) \
        -> list[Decoded] | None:
    """The records of ``complete`` (text of whole records, ``0x1E`` between them) decoded in one pass, each parsed and
    checked by msgspec straight into :class:`_ServerEvent` (no Python-level type checks per record), or into typed
    arguments by ``read_typed`` when it reads the record, when every one of them is a plain server event: the same
    Invocations :meth:`MessageDecoder.decode` builds for them, one by one (with dicts where ``read_typed`` gave
    records), for less per event. Anything else (another message type, an unknown field, an invalid or empty record,
    a record over the size limit) returns None, and the caller decodes record by record: the errors, the counters and
    every other message then come from the general path alone.

    Why each record is parsed on its own rather than all of them joined into one JSON array (one call, cheaper):
    the join accepts records that are not JSON on their own when their mistakes cancel out, e.g. one record holding
    two values beside a record that only completes the object before it; the record path refuses those frames."""
    if len(complete) > max_record_size:  # a single record may be over the limit: the general path checks each
        return None
    records = complete.split(RECORD_SEPARATOR)
    try:
        if read_typed is None:
            return [_new_tuple(Invocation, (event.target, event.arguments, None, None, None))
                    for event in map(_read_server_event, records)]
        events: list[Decoded] = []
        for record in records:
            try:
                target, arguments = read_typed(record)
            except msgspec.DecodeError:  # not of its shape (ValidationError is a DecodeError): the general reading
                event = _read_server_event(record)
                target, arguments = event.target, event.arguments
            events.append(_new_tuple(Invocation, (target, arguments, None, None, None)))
        return events
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):  # the general path says what is wrong
        return None
