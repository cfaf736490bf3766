"""The typed reading of user-hub events reads what the general reading reads (engine.protocol.user_events).

The claim under test: for every record :func:`read_user_event` accepts, the general reading (the codec without
``read_typed``, giving dicts, then the mirror's :func:`single_object` and the target's validator) yields the same
target and an identical record (``==``, same attribute types, same zone, same :meth:`wire`); every record it refuses
is read by :class:`StreamReader` exactly as it was without ``read_typed`` (same messages, same error).

Why a property test over record TEXT rather than dicts: the two readings part at the JSON text. msgspec reads the
typed record straight from the text, the general reading from the dicts the text was parsed into, so the oddities
that only exist in text matter: a key written twice (a dict keeps the last one, what does a Struct keep?), unicode
escapes in keys and tags, ``1e2`` or ``5.0`` for an integer, integers beyond 64 bits, whitespace. The records are
written by a small serializer (:func:`write`) that can repeat keys; the payloads come from the strategies the
records' own property test uses (tests/protocol/strategies.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_type_hints

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.protocol.records import WireRecord
from engine.protocol.signalr import RECORD_SEPARATOR, Decoded, Invocation, MessageDecoder, StreamReader
from engine.protocol.user_events import USER_RECORDS, StreamPayload, read_user_event
from engine.state.payloads import USER_VALIDATORS, single_object
from tests.protocol.strategies import (
    HUGE,
    JSON_VALUES,
    RECORDS,
    assert_identical,
    mutated_dicts,
    valid_value,
    wire_dicts,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TARGETS = tuple(USER_RECORDS)
OTHER_TARGETS = ("GatewayLogout", "GatewayQuote", "", "gatewayUserOrder", "GatewayUserOrder ", "GatewayUser")


# --------------------------------------------------------------------------------------------------- JSON text
@dataclass(frozen=True)
class Obj:
    """A JSON object written pair by pair, in this order: a key may appear twice."""

    pairs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Raw:
    """A JSON literal written as it is (``1e2``, ``5.0``, ``-0``)."""

    text: str


WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n  "])


def _escaped(text: str) -> str:
    """Every character as ``\\uXXXX`` (a surrogate pair beyond the BMP)."""
    units = text.encode("utf-16-be")
    return '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)) + '"'


def write(draw: st.DrawFn, value: Any) -> str:
    """``value`` as JSON text, with drawn whitespace between tokens and drawn unicode escapes in strings."""
    if isinstance(value, Raw):
        return value.text
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(int(value))  # an IntEnum a mutation put there: its value
    if isinstance(value, float):
        return "1e999" if math.isinf(value) else repr(value)  # a literal out of range: both parsers refuse it
    if isinstance(value, datetime):  # what a Python caller could pass (tests/protocol/strategies.PYTHON_VALUES)
        return write(draw, value.isoformat())
    if isinstance(value, bytes):
        return write(draw, value.decode())
    if isinstance(value, str):
        value = str(value)
        return _escaped(value) if draw(st.integers(0, 4)) == 0 else msgspec.json.encode(value).decode()
    if isinstance(value, list | tuple):
        return "[" + ",".join(draw(WHITESPACE) + write(draw, item) + draw(WHITESPACE) for item in value) + "]"
    if isinstance(value, dict):
        value = Obj(tuple(value.items()))
    if isinstance(value, Obj):
        return "{" + ",".join(
            draw(WHITESPACE) + write(draw, key) + draw(WHITESPACE) + ":" + draw(WHITESPACE) + write(draw, item)
            + draw(WHITESPACE) for key, item in value.pairs) + "}"
    raise AssertionError(f"cannot write {value!r}")  # pragma: no cover - a strategy produced a non-JSON value


def _with_duplicate(draw: st.DrawFn, obj: Obj, key: str, value: Any) -> Obj:
    """``obj`` with one more ``key: value`` pair, before or after the ones it holds."""
    at = draw(st.integers(0, len(obj.pairs)))
    return Obj((*obj.pairs[:at], (key, value), *obj.pairs[at:]))


# --------------------------------------------------------------------------------------------------- payloads
def _annotations(cls: type[WireRecord]) -> dict[str, Any]:
    hints = get_type_hints(cls, include_extras=True)
    return {f.encode_name: hints[f.name] for f in msgspec.structs.fields(cls)}


RFC3339 = st.builds(
    lambda moment, digits, zone: f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    + (f".{moment.microsecond:06d}{digits}" if digits else "") + zone,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["", "", "0", "5", "49", "9"]), st.sampled_from(["Z", "+00:00", "-05:00", "+05:30", "-00:00"]))
"""Timestamps msgspec reads (RFC 3339 with a zone, up to 9 fractional digits): the common case, where the two
readings are both msgspec's."""


@st.composite
def data_objects(draw: st.DrawFn, cls: type[WireRecord]) -> Obj:
    """A payload object of ``cls`` as text: a valid wire dict (mostly with timestamps msgspec reads) or a
    mutated one, then text-level oddities: ``5.0`` / ``5e0`` / ``1e2`` for an integer, an integer beyond 64 bits, a
    field written twice (with a valid value or any other)."""
    annotations = _annotations(cls)
    names = list(annotations)
    if draw(st.integers(0, 3)):
        data = draw(wire_dicts(cls))
        for key in cls.__timestamp_keys__:
            if data.get(key) is not None and draw(st.integers(0, 5)):
                data[key] = draw(RFC3339)
    else:
        data = draw(mutated_dicts(cls))
    for _ in range(draw(st.integers(1, 2)) if not draw(st.integers(0, 3)) else 0):
        key = draw(st.sampled_from(names))
        value = data.get(key)
        oddity = draw(st.sampled_from(["float_literal", "exponent", "huge"]))
        if isinstance(value, int) and not isinstance(value, bool) and oddity != "huge":
            data[key] = Raw(f"{value}.0" if oddity == "float_literal" else f"{value}e0")
        elif oddity == "huge":
            data[key] = draw(HUGE)
        else:
            data[key] = Raw(draw(st.sampled_from(["1e2", "1E+2", "100.0", "-0", "-0.0", "1e-400", "-1e-400"])))
    obj = Obj(tuple(data.items()))
    for _ in range(draw(st.integers(1, 2)) if not draw(st.integers(0, 2)) else 0):
        key = draw(st.sampled_from(names))
        value = draw(valid_value(annotations[key]) if draw(st.booleans()) else JSON_VALUES)
        obj = _with_duplicate(draw, obj, key, value)
    return obj


ACTIONS = st.none() | st.booleans() | st.integers(-2, 3) | st.floats(allow_nan=False) | st.text(max_size=3) | \
    JSON_VALUES
"""``action`` of every JSON type: the mirror never reads it."""


@st.composite
def wrapper(draw: st.DrawFn, data: Any) -> Obj:
    """``{"action": a, "data": data}`` in either order, ``action`` sometimes absent."""
    pairs: list[tuple[str, Any]] = [("data", data)]
    if draw(st.integers(0, 3)):
        pairs.insert(draw(st.integers(0, 1)), ("action", draw(ACTIONS)))
    return Obj(tuple(pairs))


SHAPES = ("usual", "usual", "usual", "data_only", "bare", "list", "wrapper_of_list", "two", "none", "extra_key",
          "wrapper_of_wrapper", "scalar", "duplicate_data", "duplicate_action")


@st.composite
def arguments(draw: st.DrawFn, cls: type[WireRecord]) -> list[Any]:
    """An Invocation's ``arguments`` in one of the shapes a hub sends (or might), around payload(s) of ``cls``."""
    shape = draw(st.sampled_from(SHAPES))
    data = draw(data_objects(cls))
    if shape == "usual":
        return [draw(wrapper(data))]
    if shape == "data_only":
        return [Obj((("data", data),))]
    if shape == "bare":
        return [data]
    if shape == "list":
        return [[data]]
    if shape == "wrapper_of_list":
        return [draw(wrapper([data]))]
    if shape == "two":
        return [draw(wrapper(data)), draw(wrapper(draw(data_objects(cls))))]
    if shape == "none":
        return []
    if shape == "extra_key":
        return [_with_duplicate(draw, draw(wrapper(data)), draw(st.sampled_from(["id", "type", "x", "Data"])),
                                draw(JSON_VALUES))]
    if shape == "wrapper_of_wrapper":
        return [draw(wrapper(draw(wrapper(data))))]
    if shape == "scalar":
        return [draw(JSON_VALUES)]
    if shape == "duplicate_data":
        other = draw(data_objects(cls) | JSON_VALUES | st.builds(lambda d: [d], data_objects(cls)))
        return [_with_duplicate(draw, draw(wrapper(data)), "data", other)]
    return [_with_duplicate(draw, draw(wrapper(data)), "action", draw(ACTIONS))]  # duplicate_action


TYPES = st.sampled_from([Raw("1.0"), Raw("1e0"), True, "1", 2, 3, 6, None, Raw("-0")])
EXTRA_FIELDS: st.SearchStrategy[tuple[str, Any]] = st.sampled_from([
    ("invocationId", "7"), ("invocationId", None), ("streamIds", []), ("headers", {}), ("nonce", 1),
    ("Target", "GatewayUserOrder")])


@st.composite
def event_records(draw: st.DrawFn) -> str:
    """A user-hub event record's text. Two in three are of the usual shape (one of the four targets, ``type`` 1, one
    wrapper around a payload of the target's record), the others anything around it: an odd ``type``, another
    target, another record's payload, another shape, an extra field, a key of the envelope written twice. All of
    them written with the text oddities of :func:`write` and :func:`data_objects`, keys in any order."""
    usual = draw(st.integers(0, 2)) > 0
    if usual:
        target = draw(st.sampled_from(TARGETS))
        cls = USER_RECORDS[target]
        data = draw(data_objects(cls))
        argument = draw(wrapper(data)) if draw(st.integers(0, 3)) else Obj((("data", data),))
        pairs = [("type", 1), ("target", target), ("arguments", [argument])]
    else:
        target = draw(st.sampled_from(TARGETS) if draw(st.integers(0, 3)) else st.sampled_from(OTHER_TARGETS))
        matching = USER_RECORDS.get(target) if draw(st.integers(0, 3)) else None
        cls = matching or draw(st.sampled_from(RECORDS))
        pairs = [("type", 1 if draw(st.integers(0, 3)) else draw(TYPES)), ("target", target),
                 ("arguments", draw(arguments(cls)))]
    pairs = list(draw(st.permutations(pairs)))
    if not usual and not draw(st.integers(0, 3)):
        pairs.insert(draw(st.integers(0, len(pairs))), draw(EXTRA_FIELDS))
    envelope = Obj(tuple(pairs))
    if not draw(st.integers(0, 4)):
        key = draw(st.sampled_from(["type", "target", "arguments"]))
        value = {"type": st.just(1) | TYPES, "target": st.sampled_from(TARGETS + OTHER_TARGETS) | st.integers(0, 2),
                 "arguments": st.builds(list, st.just(())) | arguments(cls)}[key]
        envelope = _with_duplicate(draw, envelope, key, draw(value))
    return draw(WHITESPACE) + write(draw, envelope) + draw(WHITESPACE)


# --------------------------------------------------------------------------------------------------- oracle
def reader(read_typed: Any = None) -> StreamReader:
    """A client-side reader past its handshake, as a hub connection holds it."""
    stream = StreamReader("client", read_typed=read_typed)
    assert stream.feed('{}' + RECORD_SEPARATOR) != []
    return stream


def fed(stream: StreamReader, text: str) -> list[Decoded] | tuple[str, type[BaseException], str]:
    """What ``stream`` reads from one frame, or the error it raised (type and message)."""
    try:
        return stream.feed(text)
    except Exception as exc:  # whatever the general reading raises, the typed one must raise
        return ("raised", type(exc), str(exc))


def general_record(target: str, arguments: Any) -> WireRecord:
    """The mirror's general reading of an Invocation's dict arguments: one object, validated by its target's reader
    (the same function, :data:`USER_VALIDATORS`, the mirror calls)."""
    obj = single_object(arguments)
    assert obj is not None, f"the typed reading accepted what the mirror would not take as one object: {arguments!r}"
    return USER_VALIDATORS[target](obj)


def assert_claim(text: str) -> bool:
    """The claim for one record text; True when the typed reading accepted it."""
    typed_side = fed(reader(read_user_event), text + RECORD_SEPARATOR)
    general_side = fed(reader(), text + RECORD_SEPARATOR)
    try:
        target, typed_arguments = read_user_event(text)
    except msgspec.DecodeError:
        assert typed_side == general_side  # refused: read the general way, with the old result
        return False
    (payload,) = typed_arguments
    assert type(payload) is StreamPayload and type(payload.data) is USER_RECORDS[target]
    message = MessageDecoder().decode(text)  # the general reading; raises if it cannot read what typed read
    assert isinstance(message, Invocation) and message.target == target
    assert (message.invocation_id, message.stream_ids, message.headers) == (None, None, None)
    assert_identical(payload.data, general_record(target, message.arguments))
    assert typed_side == [Invocation(target, typed_arguments)]
    assert general_side == [message]
    return True


# --------------------------------------------------------------------------------------------------- tests
@FAST
@given(text=event_records())
def test_typed_and_general_readings_agree_on_every_record(text: str) -> None:
    assert_claim(text)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@settings(FAST, max_examples=60)
@given(data=st.data())
def test_the_usual_gateway_shape_is_read_typed(cls: type[WireRecord], data: st.DataObject) -> None:
    """``{"type": 1, "target": T, "arguments": [{"action": a, "data": d}]}`` with a ``d`` its record reads strictly
    (what the Gateway sends) takes the typed path: the refusals above are not the common case."""
    target = next(name for name, record in USER_RECORDS.items() if record is cls)
    wire = data.draw(wire_dicts(cls))
    action = data.draw(st.integers(0, 2))
    text = msgspec.json.encode({"type": 1, "target": target, "arguments": [{"action": action, "data": wire}]})
    sent = msgspec.json.decode(text)["arguments"][0]["data"]  # as written: an infinite price is written as null
    try:
        msgspec.convert(sent, cls, strict=True)
    except msgspec.ValidationError:
        strict = False
    else:
        strict = True
    assert assert_claim(text.decode()) is strict


ACCOUNT = '{"id":1,"name":"A","canTrade":true,"isVisible":true}'
ACCOUNT_2 = '{"id":2,"name":"B","canTrade":false,"isVisible":true,"balance":5}'
TRADE = ('{"id":1,"accountId":2,"contractId":"C","creationTimestamp":"2026-05-06T13:36:03.4962795ZONE","price":1,'
         '"side":0,"size":1,"orderId":3}')


def _event(arguments: str, target: str = '"GatewayUserAccount"', before: str = "", after: str = "",
           type_: str = "1") -> str:
    return f'{{{before}"type":{type_},"target":{target},"arguments":{arguments}{after}}}'


@pytest.mark.parametrize(("text", "typed"), [
    (_event(f'[{{"action":1,"data":{ACCOUNT}}}]'), True),
    (_event(f'[{{"data":{ACCOUNT}}}]'), True),
    (_event(f'[{ACCOUNT}]'), False),
    (_event(f'[[{ACCOUNT}]]'), False),
    (_event(f'[{{"action":1,"data":[{ACCOUNT}]}}]'), False),
    (_event(f'[{{"action":1,"data":{{"action":1,"data":{ACCOUNT}}}}}]'), False),
    (_event(f'[{{"action":1,"data":{ACCOUNT}}},{{"action":1,"data":{ACCOUNT}}}]'), False),
    (_event("[]"), False),
    # a key written twice: a Struct keeps the last value, as a dict does; a tag written twice must agree
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"target":"GatewayUserAccount"'), True),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"target":"GatewayUserOrder"'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"target":"GatewayLogout"'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', before='"target":5,'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"type":2'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', before='"type":2,'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=f',"arguments":[{{"data":{ACCOUNT_2}}}]'), True),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"arguments":[]'), False),
    (_event(f'[{{"data":{ACCOUNT},"data":{ACCOUNT_2}}}]'), True),
    (_event(f'[{{"data":{ACCOUNT},"data":[{ACCOUNT_2}]}}]'), False),
    (_event(f'[{{"action":1,"action":"x","data":{ACCOUNT}}}]'), True),
    (_event('[{"data":{"id":1,"id":2,"name":"A","canTrade":true,"isVisible":true}}]'), True),
    (_event('[{"data":{"id":"x","id":2,"name":"A","canTrade":true,"isVisible":true}}]'), False),
    (_event('[{"data":{"id":2,"id":"x","name":"A","canTrade":true,"isVisible":true}}]'), False),
    # numbers
    (_event('[{"data":{"id":1e2,"name":"A","canTrade":true,"isVisible":true}}]'), False),
    (_event('[{"data":{"id":1.0,"name":"A","canTrade":true,"isVisible":true}}]'), False),
    (_event(f'[{{"data":{{"id":{2**70},"name":"A","canTrade":true,"isVisible":true}}}}]'), True),
    (_event(f'[{{"data":{{"id":1,"name":"A","canTrade":true,"isVisible":true,"balance":{2**70 + 2**17}}}}}]'), True),
    (_event('[{"data":{"id":1,"name":"A","canTrade":true,"isVisible":true,"balance":-0}}]'), True),
    (_event('[{"data":{"id":1,"name":"A","canTrade":true,"isVisible":true,"balance":-1e-400}}]'), True),
    (_event('[{"data":{"id":1,"name":"A","canTrade":true,"isVisible":true,"balance":1e400}}]'), False),
    (_event('[{"data":{"id":1,"name":"A","canTrade":true,"isVisible":true,"balance":null}}]'), False),
    # the envelope
    (_event(f'[{{"data":{ACCOUNT}}}]', type_="1.0"), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', type_="true"), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', type_='"1"'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', before='"invocationId":"7",'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', after=',"headers":{}'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', target='"GatewayLogout"'), False),
    (_event(f'[{{"data":{ACCOUNT}}}]', target='"GatewayUserOrder"'), False),
    (_event(f'[{{"data":{ACCOUNT},"extra":1}}]'), False),
    # escapes and whitespace
    ('{"type":1,"t\\u0061rget":"GatewayUser\\u0041ccount","arguments":[{"d\\u0061ta":{"id":1,"n\\u0061me":'
     '"A\\u00e9\\ud83d\\ude00","canTrade":true,"isVisible":true}}]}', True),
    ('\n { "type" : 1 ,\t"target" : "GatewayUserAccount" , "arguments" : [ { "data" : ' + ACCOUNT + ' } ] }\r\n', True),
    # timestamps: an offset kept, Z, an escaped offset, a naive one (the twin's reading)
    (_event(f'[{{"data":{TRADE.replace("ZONE", "+05:00")}}}]', target='"GatewayUserTrade"'), True),
    (_event(f'[{{"data":{TRADE.replace("ZONE", "Z")}}}]', target='"GatewayUserTrade"'), True),
    (_event("[{\"data\":" + TRADE.replace("ZONE", "\\u002b00:00") + "}]", target='"GatewayUserTrade"'), True),
    (_event(f'[{{"data":{TRADE.replace("ZONE", "")}}}]', target='"GatewayUserTrade"'), False),
])
def test_named_records(text: str, typed: bool) -> None:
    """The cases the property test must cover, spelled out so a regression names its input."""
    assert assert_claim(text) is typed


# --------------------------------------------------------------------------------------------------- frames
OTHER_RECORDS = st.sampled_from([
    '{"type":6}', '{"type":3,"invocationId":"1","result":null}', '{"type":1,"target":"GatewayLogout","arguments":[]}',
    '{"type":1,"target":"GatewayLogout","arguments":["session ended"]}', '{"type":7,"error":"bye"}', "not json",
    '{"type":1}', "[]", '{"type":1,"target":"GatewayUserOrder","arguments":[],"invocationId":"9","nonce":1}',
    '{"type":42,"x":1}',
])


def _normalised(typed: Any, general: Any) -> None:
    """``typed`` (a reader with ``read_typed``) equals ``general`` (one without) message by message, a StreamPayload
    argument compared through the general reading of the dicts in its place."""
    if not isinstance(typed, list):
        assert typed == general
        return
    assert isinstance(general, list) and len(typed) == len(general)
    for mine, theirs in zip(typed, general, strict=True):
        if isinstance(mine, Invocation) and any(type(a) is StreamPayload for a in mine.arguments):
            (payload,) = mine.arguments
            assert isinstance(theirs, Invocation) and theirs.target == mine.target
            assert mine[2:] == theirs[2:]
            assert_identical(payload.data, general_record(mine.target, theirs.arguments))
        else:
            assert mine == theirs


@FAST
@given(records=st.lists(event_records() | OTHER_RECORDS, min_size=1, max_size=6), data=st.data())
def test_a_typed_reader_reads_frames_as_the_general_reader(records: list[str], data: st.DataObject) -> None:
    """Frames mixing typed-shaped events, other shapes, a GatewayLogout, a Ping, a Completion and junk: the same
    messages one by one, the same errors, the same counters; the text cut into frames anywhere."""
    text = "".join(record + RECORD_SEPARATOR for record in records)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=2)))
    frames = [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    typed, general = reader(read_user_event), reader()
    for frame in frames:
        mine, theirs = fed(typed, frame), fed(general, frame)
        _normalised(mine, theirs)
        if not isinstance(mine, list):
            break  # a record the codec refuses: the connection ends there
    assert typed.decoder.unknown_fields == general.decoder.unknown_fields
    assert typed.decoder.unknown_types == general.decoder.unknown_types
    assert typed.records.pending == general.records.pending
