"""The SignalR JSON codec: examples from the spec and the wire, and Hypothesis fuzzing of framing and decoding."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol.signalr import (
    PING_RECORD,
    RECORD_SEPARATOR,
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HandshakeRequest,
    HandshakeResponse,
    Invocation,
    MessageDecoder,
    Ping,
    ProtocolError,
    RecordBuffer,
    Sequence,
    StreamInvocation,
    StreamItem,
    StreamReader,
    UnknownMessage,
    encode,
    encode_handshake_request,
    encode_handshake_response,
    encode_many,
)

# ---------------------------------------------------------------------------------------------------- examples


def test_js_client_invocation_decodes() -> None:
    record = '{"arguments":[123],"invocationId":"0","target":"SubscribeOrders","type":1}'
    assert MessageDecoder().decode(record) == Invocation("SubscribeOrders", (123,), "0")


def test_server_event_wire_shape() -> None:
    text = encode(Invocation("GatewayQuote", ("CON.F.US.EP.U25", {"bestBid": 1.5})))
    assert text.endswith(RECORD_SEPARATOR)
    assert orjson.loads(text[:-1]) == {
        "type": 1,
        "target": "GatewayQuote",
        "arguments": ["CON.F.US.EP.U25", {"bestBid": 1.5}],
    }


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (Completion.void("0"), {"type": 3, "invocationId": "0"}),
        (Completion.with_result("1", None), {"type": 3, "invocationId": "1", "result": None}),
        (Completion.failure("2", "boom"), {"type": 3, "invocationId": "2", "error": "boom"}),
        (Ping(), {"type": 6}),
        (Close(), {"type": 7}),
        (
            Close("Connection closed with an error.", True),
            {"type": 7, "error": "Connection closed with an error.", "allowReconnect": True},
        ),
        (CancelInvocation("4"), {"type": 5, "invocationId": "4"}),
        (StreamItem("5", [1]), {"type": 2, "invocationId": "5", "item": [1]}),
        (Ack(3), {"type": 8, "sequenceId": 3}),
        (Sequence(4), {"type": 9, "sequenceId": 4}),
    ],
)
def test_encode_exact_wire(message: Any, wire: dict[str, Any]) -> None:
    text = encode(message)
    assert orjson.loads(text[:-1]) == wire
    assert MessageDecoder().decode(text[:-1]) == message


def test_ping_record_constant() -> None:
    assert PING_RECORD == '{"type":6}\x1e'


def test_void_and_null_result_are_distinct() -> None:
    decoder = MessageDecoder()
    void = decoder.decode('{"type":3,"invocationId":"0"}')
    null = decoder.decode('{"type":3,"invocationId":"0","result":null}')
    assert isinstance(void, Completion) and not void.has_result
    assert isinstance(null, Completion) and null.has_result and null.result is None


def test_completion_with_result_and_error_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="both"):
        MessageDecoder().decode('{"type":3,"invocationId":"0","result":1,"error":"x"}')
    with pytest.raises(ProtocolError):
        Completion("0", result=1, error="x", has_result=True)


def test_handshake_both_ways() -> None:
    assert encode_handshake_request() == '{"protocol":"json","version":1}\x1e'
    assert encode_handshake_response() == "{}\x1e"
    decoder = MessageDecoder()
    assert decoder.decode_handshake_request('{"protocol":"json","version":1}') == HandshakeRequest("json", 1)
    assert decoder.decode_handshake_response("{}") == HandshakeResponse()
    assert decoder.decode_handshake_response('{"error":"nope"}') == HandshakeResponse("nope")
    assert decoder.decode_handshake_response(encode_handshake_response(HandshakeResponse("x"))[:-1]).error == "x"
    with pytest.raises(ProtocolError, match="'version'"):
        decoder.decode_handshake_request('{"protocol":"json"}')
    with pytest.raises(ProtocolError, match="'protocol' must be a string"):
        decoder.decode_handshake_request('{"protocol":1,"version":1}')


def test_handshake_then_messages_in_one_frame() -> None:
    reader = StreamReader("client")
    frame = encode_handshake_response() + encode(Ping()) + encode(Invocation("GatewayUserOrder", ({"a": 1},)))
    assert reader.feed(frame) == [HandshakeResponse(), Ping(), Invocation("GatewayUserOrder", ({"a": 1},))]
    server = StreamReader("server")
    assert server.feed(encode_handshake_request() + PING_RECORD) == [HandshakeRequest(), Ping()]


def test_record_split_across_feeds_and_empty_records() -> None:
    buffer = RecordBuffer()
    assert buffer.feed('{"type"') == []
    assert buffer.pending == 7
    assert buffer.feed(':6}\x1e\x1e{"type":7}\x1e{"ty') == ['{"type":6}', '{"type":7}']
    assert buffer.feed('pe":6}\x1e') == ['{"type":6}']
    assert buffer.pending == 0


def test_bytes_records_and_mixed_feeds() -> None:
    buffer = RecordBuffer()
    assert buffer.feed(b'{"type":6}\x1e{"ty') == [b'{"type":6}']
    assert buffer.feed('pe":7}\x1e') == [b'{"type":7}']
    assert MessageDecoder().decode(b'{"type":7}') == Close()
    assert buffer.feed(b'{"type":6}\x1e') == [b'{"type":6}']  # ends on a separator: an empty bytes tail
    assert buffer.feed('{"type":6}\x1e') == ['{"type":6}']  # found by the hub fuzz test


@given(st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)), max_size=6))
def test_mixed_str_and_bytes_feeds(chunks: list[str | bytes]) -> None:
    buffer = RecordBuffer()
    for chunk in chunks:
        try:
            records = buffer.feed(chunk)
        except ProtocolError:
            continue
        assert all(isinstance(record, str | bytes) and record for record in records)


def test_oversized_record_is_refused() -> None:
    buffer = RecordBuffer(max_record_size=10)
    with pytest.raises(ProtocolError, match="exceeds"):
        buffer.feed("x" * 11)
    assert buffer.pending == 0
    with pytest.raises(ProtocolError, match="exceeds"):
        buffer.feed("y" * 11 + RECORD_SEPARATOR)


def test_large_message_round_trips() -> None:
    payload = {"blob": "z" * (2 * 1024 * 1024)}
    text = encode(Invocation("GatewayDepth", ("C", payload)))
    (record,) = RecordBuffer().feed(text)
    decoded = MessageDecoder().decode(record)
    assert isinstance(decoded, Invocation) and decoded.arguments[1] == payload


def test_unknown_fields_ignored_and_counted() -> None:
    decoder = MessageDecoder()
    message = decoder.decode('{"type":6,"foo":1}')
    assert message == Ping()
    decoder.decode('{"type":1,"target":"X","arguments":[],"bar":2,"foo":3}')
    decoder.decode('{"type":1,"target":"X","arguments":[],"headers":{"h":"v"}}')
    assert decoder.unknown_fields == {"Ping.foo": 1, "Invocation.bar": 1, "Invocation.foo": 1}
    assert decoder.unknown_field_count == 3


def test_unknown_type_is_returned_and_counted() -> None:
    decoder = MessageDecoder()
    assert decoder.decode('{"type":42,"x":1}') == UnknownMessage(42, {"x": 1})
    assert decoder.unknown_type_count == 1


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        ("{}", "missing required field 'type'"),
        ('{"type":"1"}', "'type' must be an integer"),
        ('{"type":true}', "'type' must be an integer"),
        ('{"type":1,"arguments":[]}', "Invocation is missing required field 'target'"),
        ('{"type":1,"target":"X"}', "missing required field 'arguments'"),
        ('{"type":1,"target":"X","arguments":{}}', "'arguments' must be an array"),
        ('{"type":1,"target":"X","arguments":[],"invocationId":3}', "'invocationId' must be a string"),
        ('{"type":1,"target":"X","arguments":[],"streamIds":[1]}', "array of strings"),
        ('{"type":1,"target":"X","arguments":[],"headers":{"a":1}}', "'headers'"),
        ('{"type":2,"invocationId":"1"}', "'item'"),
        ('{"type":3}', "Completion is missing required field 'invocationId'"),
        ('{"type":3,"invocationId":"1","error":5}', "'error' must be a string"),
        ('{"type":4,"invocationId":"1","target":"X"}', "'arguments'"),
        ('{"type":5}', "'invocationId'"),
        ('{"type":7,"allowReconnect":"yes"}', "'allowReconnect' must be a boolean"),
        ('{"type":8}', "'sequenceId'"),
        ('{"type":9,"sequenceId":1.5}', "must be an integer"),
    ],
)
def test_malformed_records_name_the_problem(record: str, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle.replace("[", r"\[")):
        MessageDecoder().decode(record)


def test_error_preview_is_short() -> None:
    secret = "eyJ" + "a" * 500
    with pytest.raises(ProtocolError) as info:
        MessageDecoder().decode(f"[{secret!r}")
    assert len(str(info.value)) < 200


def test_encode_refuses_non_json_values() -> None:
    with pytest.raises(ProtocolError, match="cannot encode"):
        encode(Invocation("X", (object(),)))


def test_control_characters_are_escaped() -> None:
    text = encode(Invocation("X", ("a\x1eb",)))
    assert text.count(RECORD_SEPARATOR) == 1
    assert MessageDecoder().decode(text[:-1]) == Invocation("X", ("a\x1eb",))


def test_stream_reader_validates_role() -> None:
    with pytest.raises(ValueError, match="role"):
        StreamReader("peer")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- properties

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ids = st.text(max_size=8)
opt_ids = st.none() | ids
arguments = st.lists(json_values, max_size=4).map(tuple)
stream_ids = st.none() | st.lists(st.text(max_size=4), max_size=3).map(tuple)
headers = st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)

messages = st.one_of(
    st.builds(Invocation, st.text(max_size=20), arguments, opt_ids, stream_ids, headers),
    st.builds(StreamItem, ids, json_values, headers),
    st.builds(Completion.void, ids),
    st.builds(Completion.with_result, ids, json_values),
    st.builds(Completion.failure, ids, st.text(max_size=20)),
    st.builds(StreamInvocation, ids, st.text(max_size=20), arguments, stream_ids, headers),
    st.builds(CancelInvocation, ids, headers),
    st.just(Ping()),
    st.builds(Close, st.none() | st.text(max_size=20), st.none() | st.booleans()),
    st.builds(Ack, st.integers(min_value=0, max_value=2**53)),
    st.builds(Sequence, st.integers(min_value=0, max_value=2**53)),
)


@given(messages)
def test_encode_decode_round_trip(message: Any) -> None:
    text = encode(message)
    assert isinstance(text, str)
    assert text.endswith(RECORD_SEPARATOR) and text.count(RECORD_SEPARATOR) == 1
    text.encode("utf-8")  # valid UTF-8: safe for a websocket text frame
    (record,) = RecordBuffer().feed(text)
    assert MessageDecoder().decode(record) == message


@given(st.lists(messages, max_size=6), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_chunking_yields_the_same_messages(batch: list[Any], cuts: list[int]) -> None:
    text = encode_many(batch)
    points = sorted({min(c, len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    buffer = RecordBuffer()
    decoder = MessageDecoder()
    out = [decoder.decode(record) for chunk in chunks for record in buffer.feed(chunk)]
    assert out == batch
    assert buffer.pending == 0


@given(st.lists(messages, max_size=5), st.integers(min_value=0, max_value=300))
def test_byte_chunking_yields_the_same_messages(batch: list[Any], cut: int) -> None:
    data = encode_many(batch).encode("utf-8")
    buffer = RecordBuffer()
    decoder = MessageDecoder()
    records = buffer.feed(data[:cut]) + buffer.feed(data[cut:])
    assert [decoder.decode(r) for r in records] == batch


def _only_records_or_protocol_error(data: str | bytes) -> None:
    reader = StreamReader("server")
    try:
        out = reader.feed(data)
    except ProtocolError:
        return
    assert isinstance(out, list)


@given(st.binary(max_size=300))
def test_fuzz_bytes(data: bytes) -> None:
    _only_records_or_protocol_error(data)
    decoder = MessageDecoder()
    for record in RecordBuffer().feed(data):
        with contextlib.suppress(ProtocolError):
            decoder.decode(record)


@given(st.text(max_size=300))
def test_fuzz_text(data: str) -> None:
    _only_records_or_protocol_error(data + RECORD_SEPARATOR)
    with contextlib.suppress(ProtocolError):
        MessageDecoder().decode(data)


json_objects = st.dictionaries(
    st.sampled_from(["type", "target", "arguments", "invocationId", "result", "error", "item", "streamIds",
                     "headers", "allowReconnect", "sequenceId", "protocol", "version", "x"]),
    json_values | st.integers(min_value=0, max_value=10),
    max_size=6,
)


@given(json_objects)
def test_fuzz_structured_objects(obj: dict[str, Any]) -> None:
    """Well-formed JSON with arbitrary fields: a message or a ProtocolError, and a decoded message re-encodes."""
    record = orjson.dumps(obj)
    decoder = MessageDecoder()
    try:
        message = decoder.decode(record)
    except ProtocolError:
        return
    again = decoder.decode(encode(message)[:-1])
    assert again == message
    for fn in (decoder.decode_handshake_request, decoder.decode_handshake_response):
        with contextlib.suppress(ProtocolError):
            fn(record)


@pytest.mark.parametrize("typed", [False, True], ids=["general", "typed"])
@pytest.mark.parametrize("depth", [2_000, 20_000])
def test_a_record_nested_too_deeply_is_a_protocol_error_not_a_crash(typed: bool, depth: int) -> None:
    """msgspec's parser recurses per nesting level and raises RecursionError; the codec answers ProtocolError, as for
    any malformed record, and the reader goes on with the next frame."""
    from engine.protocol.user_events import read_user_event

    reader = StreamReader("client", read_typed=read_user_event if typed else None)
    reader.feed("{}\x1e")
    nested = "[" * depth + "]" * depth
    frame = '{"type":1,"target":"GatewayUserOrder","arguments":' + nested + "}\x1e"
    with pytest.raises(ProtocolError, match="nested too deeply"):
        reader.feed(frame)
    assert reader.feed('{"type":6}\x1e') == [Ping()]


@pytest.mark.parametrize("typed", [False, True], ids=["general", "typed"])
def test_a_text_frame_with_a_lone_surrogate_is_a_protocol_error_not_a_crash(typed: bool) -> None:
    """msgspec encodes a str to UTF-8 before parsing it and raises UnicodeEncodeError on a lone surrogate (orjson
    raised its JSONDecodeError); the codec answers ProtocolError, as for any malformed record, and reads on."""
    from engine.protocol.user_events import read_user_event

    reader = StreamReader("client", read_typed=read_user_event if typed else None)
    reader.feed("{}\x1e")
    with pytest.raises(ProtocolError, match="not valid UTF-8"):
        reader.feed('{"type":1,"target":"GatewayUserOrder","arguments":["\ud800"]}\x1e')
    assert reader.feed('{"type":6}\x1e') == [Ping()]
