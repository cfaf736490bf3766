"""Hypothesis strategies for Gateway wire payloads, and the oracle that compares two readings of one record.

Why a module of its own: the compiled records (tests/protocol/test_records.py) and the typed reading of user-hub
events (tests/protocol/test_user_events.py) hold their readings equal over the same inputs, with the same notion of
"identical" (value, type, zone, what :meth:`~engine.protocol.records.WireRecord.wire` writes).
"""

from __future__ import annotations

import string
import types
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec
import pydantic
from hypothesis import strategies as st
from pydantic.alias_generators import to_snake

from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.records import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel, WireRecord
from engine.protocol.timestamps import AwareDatetime

RECORDS: tuple[type[WireRecord], ...] = (TradingAccountModel, OrderModel, PositionModel, HalfTradeModel)


# --------------------------------------------------------------------------------------------------- strategies
@st.composite
def timestamp_texts(draw: st.DrawFn) -> str:
    """Timestamps as the Gateway, other servers and hand-written fixtures write them, and some that are not."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    separator = draw(st.sampled_from("Tt "))
    clock = f"{moment:%H:%M}" if draw(st.integers(0, 9)) == 0 else f"{moment:%H:%M:%S}"
    digits = draw(st.integers(0, 9))
    fraction = draw(st.text(alphabet=string.digits, min_size=digits, max_size=digits))
    decimal = draw(st.sampled_from(".,")) if digits or draw(st.booleans()) else ""
    zone = draw(st.sampled_from(["Z", "z", "+00:00", "-00:00", "-05:00", "+0530", "+05:30", "", "+05", "+14:00",
                                 "-23:59", "+24:00", "+05:30:15"]))
    pad = draw(st.sampled_from(["", " ", "\t"]))
    text = f"{pad}{moment:%Y-%m-%d}{separator}{clock}{decimal}{fraction}{zone}{draw(st.sampled_from(['', ' ']))}"
    if draw(st.integers(0, 7)) == 0:  # junk: one character replaced, or text appended
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from("x:-+.9 ")) + text[at + 1:]
    return text


def tricky_timestamps() -> st.SearchStrategy[str]:
    """The edges of the rounding (half up at the 7th digit, carry into the second, the minute, the year)."""
    return st.sampled_from([
        "2026-05-06T13:36:03.4962794+00:00", "2026-05-06T13:36:03.4962795+00:00", "2025-01-01T00:00:00.0000005Z",
        "2025-12-31T23:59:59.9999995Z", "2025-12-31T23:59:59.9999995-05:00", "2025-01-01T00:00:00.0000004999Z",
        "9999-12-31T23:59:59.9999995Z", "0001-01-01T00:00:00+01:00", "2025-01-01T00:00:60Z",
        "2025-01-01T24:00:00Z", "2025-02-29T00:00:00Z", "yesterday", "", "1700000000",
    ])


def any_timestamp() -> st.SearchStrategy[str]:
    return st.one_of(timestamp_texts(), tricky_timestamps())


HUGE = st.one_of(st.integers(min_value=2**64), st.integers(max_value=-(2**63) - 1))
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1), HUGE,
    st.floats(allow_nan=False), st.integers(-1000, 1000).map(float),
    st.text(max_size=6), st.integers(-100, 100).map(str), st.floats(allow_nan=False).map(str),
    st.sampled_from(["true", "false", "null", "1e3", " 5", "0x10"]),
    st.integers(-3, 12), any_timestamp(),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=4)
"""Any value a JSON document can hold, weighted to the ones a wire field could be confused with."""


class Colour(StrEnum):
    RED = "RED"


PYTHON_VALUES = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]) | st.none()),
    st.sampled_from([*OrderSide, *OrderType, *OrderStatus, *PositionType]),
    st.just(Colour.RED), st.just(b"bytes"), st.just((1, 2)),
)
"""Values only a Python caller could pass (what a JSON decoder never produces)."""


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        return members[0], True
    return annotation, False


def valid_value(annotation: Any) -> st.SearchStrategy[Any]:
    """A value of the field's wire type (JSON types), None too when the field is optional."""
    inner, optional = _unwrap_optional(annotation)
    strategy: st.SearchStrategy[Any]
    if inner == AwareDatetime:
        strategy = any_timestamp()
    elif isinstance(inner, type) and issubclass(inner, IntEnum):
        strategy = st.sampled_from([member.value for member in inner])
    elif inner is bool:
        strategy = st.booleans()
    elif inner is int:
        strategy = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif inner is float:
        strategy = st.floats(allow_nan=False) | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    elif inner is str:
        strategy = st.text(max_size=8)
    else:  # pragma: no cover - a new field type needs a strategy here
        raise AssertionError(f"no strategy for {annotation!r}")
    return strategy | st.none() if optional else strategy


@st.composite
def wire_dicts(draw: st.DrawFn, cls: type[WireRecord]) -> dict[str, Any]:
    """A wire dict of ``cls``: camelCase keys, right JSON types, optional fields present, absent or None."""
    hints = get_type_hints(cls, include_extras=True)
    out: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        if f.required or draw(st.booleans()):
            out[f.encode_name] = draw(valid_value(hints[f.name]))
    return out


@st.composite
def mutated_dicts(draw: st.DrawFn, cls: type[WireRecord]) -> dict[str, Any]:
    """A wire dict with up to three mutations: a value of another type, a key missing, an unknown key, a
    snake_case key instead of or beside the camelCase one."""
    data = draw(wire_dicts(cls))
    names = list(cls.__wire_names__.values())
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(names))
        action = draw(st.sampled_from(["replace", "replace", "python", "delete", "extra", "snake", "snake_beside"]))
        if action == "replace":
            data[key] = draw(JSON_VALUES)
        elif action == "python":
            data[key] = draw(PYTHON_VALUES)
        elif action == "delete":
            data.pop(key, None)
        elif action == "extra":
            data[draw(st.text(max_size=8))] = draw(JSON_VALUES)
        else:
            value = data.pop(key, None) if action == "snake" else draw(JSON_VALUES)
            data[to_snake(key)] = value
    return data


# --------------------------------------------------------------------------------------------------- oracle
def identity(value: Any) -> Any:
    """What must match between two readings: the value's type and repr (5 vs 5.0, -0.0 vs 0.0, enum vs int), and
    for a datetime also its zone's type and offset."""
    if isinstance(value, datetime):
        return type(value), repr(value.replace(tzinfo=None)), type(value.tzinfo), value.utcoffset()
    return type(value), repr(value)


def typed_dump(tree: Any) -> Any:
    """A dump with the type of every leaf, so ``==`` also compares types."""
    if isinstance(tree, dict):
        return {key: typed_dump(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [typed_dump(value) for value in tree]
    return identity(tree)


def errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, comparable (an exception in ``ctx`` compares by identity, so by its repr here)."""
    return [{**error, "ctx": {key: repr(value) for key, value in error.get("ctx", {}).items()}}
            for error in exc.errors(include_url=False)]


def dumped(write: Any, **options: Any) -> Any:
    """A dump with its types. Every record read can be written: an instant whose UTC date is before year 1 or after
    9999 (``0001-01-01T00:00:00+01:00``) is written in its own offset (engine.protocol.timestamps.format_timestamp)."""
    return typed_dump(write(**options))


def assert_identical(got: WireRecord, expected: WireRecord) -> None:
    assert type(got) is type(expected)
    assert got == expected
    for name in type(got).__struct_fields__:
        assert identity(getattr(got, name)) == identity(getattr(expected, name)), name
    assert dumped(got.wire) == dumped(expected.wire)
