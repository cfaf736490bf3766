"""The mirror's StreamPayload fast path applies what its dict path applies (engine.state.mirror.on_user_event).

Why: the user hub's codec reads the usual ``[{action, data}]`` event straight into a
:class:`~engine.protocol.user_events.StreamPayload`, every other shape arrives as dicts. Two mirrors fed the same
events, one through the typed reader and one through the general reader, must end in the same state with the same
counters and the same changes; a hand-made payload of the wrong record must be refused as malformed; and a hold must
buffer payloads like dicts, in arrival order.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.protocol.enums import OrderStatus
from engine.protocol.records import WireRecord
from engine.protocol.signalr import RECORD_SEPARATOR, Invocation, StreamReader
from engine.protocol.user_events import USER_RECORDS, StreamPayload, read_user_event
from engine.state.changes import Change, OrderChanged
from engine.state.mirror import StateMirror
from tests.protocol.strategies import mutated_dicts, wire_dicts
from tests.state.test_mirror import account, order, position, trade

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TIMESTAMPS = st.sampled_from(["2026-03-02T15:00:00+00:00", "2026-03-02T15:00:01.5Z", "2026-03-02T10:00:02-05:00",
                              "2026-03-02T15:00:03", None])
"""A few instants, so order events are newer, older or as old as the one held (and a naive one, the twin's)."""
POOLS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.integers(1, 3), "accountId": st.integers(1, 2), "orderId": st.integers(1, 3),
    "contractId": st.sampled_from(["ES", "NQ"]), "size": st.integers(0, 2), "fillVolume": st.integers(0, 2),
    "status": st.sampled_from([int(s) for s in OrderStatus]),
}
"""Small pools for the keys the mirror keys and compares on, so events meet: updates, closes, duplicates."""


@st.composite
def user_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """``(target, payload)`` of one user event: a wire dict of the target's record (sometimes a mutated one) with
    its keys from small pools."""
    target = draw(st.sampled_from(list(USER_RECORDS)))
    cls: type[WireRecord] = USER_RECORDS[target]
    data = draw(wire_dicts(cls) if draw(st.integers(0, 5)) else mutated_dicts(cls))
    for key, pool in POOLS.items():
        if key in cls.__wire_names__.values() and key in data and draw(st.integers(0, 9)):
            data[key] = draw(pool)
    for key in cls.__timestamp_keys__:
        if key in data and draw(st.integers(0, 9)):
            data[key] = draw(TIMESTAMPS)
    return target, data


def _record_text(target: str, data: dict[str, Any], action: int = 1) -> str | None:
    """The usual record of one event, or None when the payload is not JSON (a mutation put a Python value in)."""
    try:
        return msgspec.json.encode({"type": 1, "target": target, "arguments": [{"action": action, "data": data}]}
                                   ).decode()
    except (TypeError, msgspec.EncodeError):
        return None


def _reader(read_typed: Any = None) -> StreamReader:
    stream = StreamReader("client", read_typed=read_typed)
    stream.feed("{}" + RECORD_SEPARATOR)
    return stream


def _watched(mirror: StateMirror) -> list[Change]:
    seen: list[Change] = []
    mirror.subscribe(seen.append)
    return seen


def _state(mirror: StateMirror) -> dict[str, Any]:
    """Everything the mirror shows: the snapshot, the counters, the trades held per account, terminal orders."""
    return {"snapshot": mirror.snapshot(), "counters": mirror.counters.as_dict(),
            "trades": {aid: mirror.trades(aid) for aid in (1, 2)},
            "terminal": {oid: (mirror.is_terminal(oid), mirror.order(oid)) for oid in (1, 2, 3)}}


@FAST
@given(events=st.lists(user_events(), min_size=1, max_size=12), hold=st.booleans())
def test_typed_and_dict_events_leave_two_mirrors_equal(events: list[tuple[str, dict[str, Any]]], hold: bool) -> None:
    """The same records through the typed reader and the general reader, into two mirrors (held or not): the same
    state, counters and changes."""
    texts = [text for target, data in events if (text := _record_text(target, data)) is not None]
    frame = "".join(text + RECORD_SEPARATOR for text in texts)
    typed_messages, dict_messages = _reader(read_user_event).feed(frame), _reader().feed(frame)
    typed_mirror, dict_mirror = StateMirror(), StateMirror()
    typed_changes, dict_changes = _watched(typed_mirror), _watched(dict_mirror)
    for mirror, messages in ((typed_mirror, typed_messages), (dict_mirror, dict_messages)):
        if hold:
            with mirror.holding():
                for message in messages:
                    assert isinstance(message, Invocation)
                    mirror.on_user_event(message.target, message.arguments)
        else:
            for message in messages:
                assert isinstance(message, Invocation)
                mirror.on_user_event(message.target, message.arguments)
    assert all(not isinstance(a, StreamPayload) for m in dict_messages if isinstance(m, Invocation)
               for a in m.arguments)
    assert _state(typed_mirror) == _state(dict_mirror)
    assert typed_changes == dict_changes


def test_the_usual_events_take_the_typed_path_and_apply_as_dicts_do() -> None:
    """One event of each kind, as the Gateway sends them: every one arrives as a StreamPayload and the two mirrors
    agree (the property test above also covers events the typed reader refuses)."""
    events = [("GatewayUserAccount", account(1)), ("GatewayUserOrder", order(1, account=1)),
              ("GatewayUserPosition", position(account=1)), ("GatewayUserTrade", trade(5, account=1)),
              ("GatewayUserOrder", order(1, account=1, status=OrderStatus.FILLED, fill=2, at=timedelta(seconds=1)))]
    frame = "".join(_record_text(target, data) + RECORD_SEPARATOR for target, data in events)  # type: ignore[operator]
    typed_messages = _reader(read_user_event).feed(frame)
    assert all(isinstance(m, Invocation) and type(m.arguments[0]) is StreamPayload for m in typed_messages)
    typed_mirror, dict_mirror = StateMirror(), StateMirror()
    for message in typed_messages:
        assert isinstance(message, Invocation)
        typed_mirror.on_user_event(message.target, message.arguments)
    for target, data in events:
        dict_mirror.on_user_event(target, [{"action": 1, "data": data}])
    assert _state(typed_mirror) == _state(dict_mirror)
    assert typed_mirror.counters.applied == {"GatewayUserAccount": 1, "GatewayUserOrder": 2,
                                             "GatewayUserPosition": 1, "GatewayUserTrade": 1}
    assert typed_mirror.is_terminal(1) and typed_mirror.trades(1)[0].id == 5


def test_a_payload_of_another_record_is_malformed_and_not_applied() -> None:
    """Only a hand-made event can pair a target with another record's payload: counted malformed, nothing applied."""
    mirror = StateMirror()
    changes = _watched(mirror)
    an_order = USER_RECORDS["GatewayUserOrder"].model_validate(order(1))
    mirror.on_user_event("GatewayUserAccount", (StreamPayload(data=an_order, action=1),))
    mirror.on_user_event("GatewayUserPosition", (StreamPayload(data=an_order),))
    assert mirror.counters.malformed == 2
    assert mirror.counters.applied == {}
    assert changes == [] and mirror.snapshot() == {"accounts": [], "positions": [], "orders": []}


def test_held_stream_payloads_are_applied_in_arrival_order_with_dicts() -> None:
    """StreamPayloads and dict events buffered during a hold: nothing applied while it lasts, then all of them in
    the order they came (the fill count climbs 0, 1, 2 and the order ends terminal)."""
    mirror = StateMirror()
    changes = _watched(mirror)
    records = [USER_RECORDS["GatewayUserOrder"].model_validate(order(1, fill=f, at=timedelta(seconds=f)))
               for f in (0, 2)]
    with mirror.holding():
        mirror.on_user_event("GatewayUserOrder", (StreamPayload(data=records[0], action=0),))
        mirror.on_user_event("GatewayUserOrder", [{"action": 1, "data": order(1, fill=1, at=timedelta(seconds=1))}])
        filled = msgspec.structs.replace(records[1], status=OrderStatus.FILLED)
        mirror.on_user_event("GatewayUserOrder", (StreamPayload(data=filled, action=1),))
        assert changes == [] and mirror.working_orders() == [] and mirror.counters.applied == {}
    assert mirror.counters.buffered == 3
    assert [c.after.fill_volume for c in changes if isinstance(c, OrderChanged) and c.after] == [0, 1, 2]
    assert mirror.counters.applied == {"GatewayUserOrder": 3}
    assert mirror.is_terminal(1) and mirror.counters.stale_orders == 0
