"""The codec's hot paths read exactly what the general paths read: ``parse_timestamp`` trying msgspec's RFC 3339
parser on the raw text first, and the decoder's shortcut for a bare ``{type: 1, target, arguments}`` server event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol import models as m
from engine.protocol import timestamps
from engine.protocol.signalr import HandshakeResponse, Invocation, MessageDecoder, Ping, ProtocolError, StreamReader

_FRACTIONS = st.text(alphabet="0123456789", min_size=0, max_size=9)
_ZONES = st.sampled_from(["", "Z", "z", "+00:00", "-05:00", "+05:30", " ", "+0000"])


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1)), _FRACTIONS, _ZONES,
       st.sampled_from(["T", " "]), st.booleans())
def test_timestamp_fast_path_reads_what_the_normalised_path_reads(instant: datetime, fraction: str, zone: str,
                                                                  sep: str, pad: bool) -> None:
    text = instant.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if fraction else "") + zone
    text = f" {text} " if pad else text
    try:
        slow: Any = timestamps._parse_normalised(text)
    except ValueError:
        slow = ValueError
    try:
        fast: Any = m.parse_timestamp(text)
    except ValueError:
        fast = ValueError
    assert fast == slow
    if fast is not ValueError:
        assert fast.tzinfo is not None


def test_datetimes_and_other_values_pass_through() -> None:
    naive = datetime(2026, 1, 1, 12)
    assert m.parse_timestamp(naive) == naive.replace(tzinfo=UTC)
    assert m.parse_timestamp(5) == 5


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=8)


@given(st.text(min_size=1, max_size=20), st.lists(_JSON, max_size=4))
def test_bare_server_event_decodes_like_the_general_path(target: str, arguments: list[Any]) -> None:
    decoder = MessageDecoder()
    record = orjson.dumps({"type": 1, "target": target, "arguments": arguments})
    assert decoder.decode(record) == Invocation(target, tuple(arguments))
    with_id = orjson.dumps({"type": 1, "target": target, "arguments": arguments, "invocationId": "7"})
    assert decoder.decode(with_id) == Invocation(target, tuple(arguments), "7")
    assert decoder.unknown_field_count == 0


@pytest.mark.parametrize(("obj", "needle"), [
    ({"type": 1, "target": 5, "arguments": []}, "'target' must be a string"),
    ({"type": 1, "target": "T", "arguments": {}}, "'arguments' must be an array"),
    ({"type": 1, "target": None, "arguments": []}, "missing required field 'target'"),
    ({"type": 1, "target": "T", "extra": []}, "missing required field 'arguments'"),
    ({"type": True, "target": "T", "arguments": []}, "'type' must be an integer"),
])
def test_a_bad_three_key_event_still_gets_the_general_paths_error(obj: dict[str, Any], needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle):
        MessageDecoder().decode(orjson.dumps(obj))


def test_unknown_fields_are_still_counted_beside_a_target() -> None:
    decoder = MessageDecoder()
    assert decoder.decode(b'{"type":1,"target":"T","arguments":[],"new":1}') == Invocation("T", ())
    assert decoder.unknown_fields == {"Invocation.new": 1}


_EVENT_RECORDS = st.builds(lambda target, arguments: orjson.dumps({"type": 1, "target": target,
                                                                   "arguments": arguments}).decode(),
                           st.text(min_size=1, max_size=12), st.lists(_JSON, max_size=3))
_OTHER_RECORDS = st.sampled_from([
    '{"type":6}',  # a Ping
    '{"type":3,"invocationId":"1","result":true}',  # a Completion
    '{"type":1,"target":"T","arguments":[],"new":1}',  # an unknown field (counted)
    '{"type":42}',  # an unknown type (counted)
    '{"type":1,"target":"A","arguments":[]},{"type":1,"target":"B","arguments":[]}',  # two values: not a record
    '[{"type":1,"target":"A","arguments":[]}]',  # an array, not an object
    '{"type":1,"target":5,"arguments":[]}',  # a mistyped target
    'not json', '', ' ', '{"type":1,"target":"T","arguments":[]', '"\\u001e"',
])


def _general(complete_frames: list[str]) -> tuple[list[Any], Any, dict[str, int], dict[int, int]]:
    """What the record-by-record path makes of the frames: messages, or the first ProtocolError's text (a frame that
    raises yields none of its messages: StreamReader.feed returns all of a frame's messages or raises)."""
    reader = StreamReader("client")
    reader.feed("{}\x1e")
    out: list[Any] = []
    try:
        for frame in complete_frames:
            out.extend([reader.decoder.decode(r) for r in reader.records.feed(frame)])
    except ProtocolError as exc:
        return out, str(exc), dict(reader.decoder.unknown_fields), dict(reader.decoder.unknown_types)
    return out, None, dict(reader.decoder.unknown_fields), dict(reader.decoder.unknown_types)


@given(st.lists(st.lists(_EVENT_RECORDS | _OTHER_RECORDS, min_size=1, max_size=8), min_size=1, max_size=4),
       st.integers(min_value=0, max_value=40))
def test_whole_frame_fast_path_reads_what_the_record_path_reads(frames: list[list[str]], cut: int) -> None:
    """StreamReader.feed parses a frame of nothing but server events in one go; any frame, valid or not, must yield
    the same messages, the same error and the same counters as decoding it record by record."""
    texts = ["\x1e".join(records) + "\x1e" for records in frames]
    if cut and len(texts[0]) > cut:  # a record split across two frames as well
        texts = [texts[0][:cut], texts[0][cut:], *texts[1:]]
    expected, error, unknown_fields, unknown_types = _general(texts)
    reader = StreamReader("client")
    reader.feed("{}\x1e")
    out: list[Any] = []
    try:
        for text in texts:
            out.extend(reader.feed(text))
    except ProtocolError as exc:
        assert str(exc) == error
    else:
        assert error is None
    assert out == expected
    assert (reader.decoder.unknown_fields, reader.decoder.unknown_types) == (unknown_fields, unknown_types)


def test_a_frame_of_events_is_one_parse_and_keeps_order() -> None:
    reader = StreamReader("client")
    assert reader.feed('{}\x1e{"type":1,"target":"A","arguments":[1]}\x1e') == [HandshakeResponse(),
                                                                                  Invocation("A", (1,))]
    frame = "".join(f'{{"type":1,"target":"E{i}","arguments":[{{"n":{i}}}]}}\x1e' for i in range(300))
    events = reader.feed(frame + '{"type":1,"target":"tail"')
    assert events == [Invocation(f"E{i}", ({"n": i},)) for i in range(300)]
    assert reader.feed(',"arguments":[]}\x1e') == [Invocation("tail", ())]


def test_a_text_frame_after_a_binary_tail_takes_the_record_path() -> None:
    reader = StreamReader("client")
    reader.feed("{}\x1e")
    assert reader.feed(b'{"type":1,"target":"A",') == []
    assert reader.feed('"arguments":[]}\x1e{"type":6}\x1e') == [Invocation("A", ()), Ping()]


@pytest.mark.parametrize("frame", [
    # a record of two values and a record that only completes the one before it: the joined array has as many
    # elements as there are records, yet neither record is one JSON value on its own
    '{"type":1,"target":"A","arguments":[]},{"type":1,"target":"B"\x1e"arguments":[]}\x1e',
    '{"type":1,"target":"A","arguments":[]},{"type":1,"target":"B","arguments":[{}\x1e{}]}\x1e',
])
def test_records_that_are_json_only_when_joined_are_refused_as_the_record_path_refuses(frame: str) -> None:
    reader = StreamReader("client")
    reader.feed("{}\x1e")
    with pytest.raises(ProtocolError, match="not valid JSON"):
        reader.feed(frame)
