"""The compiled records read exactly as their pydantic twins (engine.protocol.records, engine.protocol.timestamps).

Why a property test: :meth:`WireRecord.model_validate` trusts msgspec's strict reading whenever msgspec accepts, and
only falls back to the lenient twin (the pydantic model, the reference reading) when it refuses. That is correct only
if msgspec never accepts an input it reads differently from the twin: a different value, a different type (``5`` vs
``5.0``, an enum vs an int), a different zone. (One difference is kept on purpose: a ``str`` subclass a Python
caller passes stays one; see :func:`_plain_strings`.) So the tests generate Gateway payloads, mutate them
in every way a newer API, a buggy server or a caller could, and compare the two readings attribute by attribute,
type included, and in every dump.
"""

from __future__ import annotations

import gc
import string
import types
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec
import pydantic
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.alias_generators import to_snake

from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderStatus, OrderType, PositionType
from engine.protocol.records import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel, WireRecord
from engine.protocol.timestamps import AwareDatetime, _parse_normalised, parse_timestamp

RECORDS: tuple[type[WireRecord], ...] = (TradingAccountModel, OrderModel, PositionModel, HalfTradeModel)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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


class _Colour(StrEnum):
    RED = "RED"


PYTHON_VALUES = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(0))]) | st.none()),
    st.sampled_from([*OrderSide, *OrderType, *OrderStatus, *PositionType]),
    st.just(_Colour.RED), st.just(b"bytes"), st.just((1, 2)),
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
def _identity(value: Any) -> Any:
    """What must match between two readings: the value's type and repr (5 vs 5.0, -0.0 vs 0.0, enum vs int), and
    for a datetime also its zone's type and offset."""
    if isinstance(value, datetime):
        return type(value), repr(value.replace(tzinfo=None)), type(value.tzinfo), value.utcoffset()
    return type(value), repr(value)


def _typed(tree: Any) -> Any:
    """A dump with the type of every leaf, so ``==`` also compares types."""
    if isinstance(tree, dict):
        return {key: _typed(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_typed(value) for value in tree]
    return _identity(tree)


def errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors, comparable (an exception in ``ctx`` compares by identity, so by its repr here)."""
    return [{**error, "ctx": {key: repr(value) for key, value in error.get("ctx", {}).items()}}
            for error in exc.errors(include_url=False)]


def _written(write: Any, **options: Any) -> Any:
    """A dump with its types, or the error writing it raised: an instant whose UTC date is before year 1 or after
    9999 (``0001-01-01T00:00:00+01:00``) is read by both paths but cannot be written in UTC."""
    try:
        return _typed(write(**options))
    except (OverflowError, pydantic_core.PydanticSerializationError) as exc:
        return "unwritable" if "out of range" in str(exc) else exc


def assert_identical(got: WireRecord, expected: WireRecord) -> None:
    assert type(got) is type(expected)
    assert got == expected
    for name in type(got).__struct_fields__:
        assert _identity(getattr(got, name)) == _identity(getattr(expected, name)), name
    assert _written(got.wire) == _written(expected.wire)


def assert_same_reading(cls: type[WireRecord], data: Any) -> None:
    """If the compiled path accepts ``data`` (msgspec reads it, and no text field holds a ``str`` subclass), the
    twin reads the same record; ``model_validate`` always agrees with the twin."""
    try:
        compiled: WireRecord | None = msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError:
        compiled = None
    if compiled is not None:
        compiled = _plain_strings(compiled)
    try:
        twin: pydantic.BaseModel | None = cls.__lenient__.model_validate(data)
        twin_error = None
    except pydantic.ValidationError as exc:
        twin, twin_error = None, exc
    if compiled is not None:
        assert twin is not None, f"msgspec accepts what the twin refuses: {data!r}\n{twin_error}"
        assert_identical(compiled, cls.from_lenient(twin))
    if twin is None:
        assert twin_error is not None
        with pytest.raises(pydantic.ValidationError) as raised:
            cls.model_validate(data)
        assert errors(raised.value) == errors(twin_error)
        assert raised.value.error_count() == twin_error.error_count()
    else:
        assert_identical(_plain_strings(cls.model_validate(data)), cls.from_lenient(twin))


def _plain_strings(record: WireRecord) -> WireRecord:
    """``record`` with any ``str`` subclass in it made a ``str``: the one difference the compiled path keeps on
    purpose (a StrEnum a Python caller passes stays one; JSON never holds one, and checking every text field of every
    event for it cost ~0.13 us per order)."""
    subclassed = {name: str(value) for name in record.__struct_fields__
                  if isinstance(value := getattr(record, name), str) and type(value) is not str}
    return msgspec.structs.replace(record, **subclassed) if subclassed else record


# --------------------------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@FAST
@given(data=st.data())
def test_valid_wire_dicts_read_as_the_twin_reads_them(cls: type[WireRecord], data: st.DataObject) -> None:
    assert_same_reading(cls, data.draw(wire_dicts(cls)))


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@settings(FAST, max_examples=100)
@given(data=st.data())
def test_mutated_wire_dicts_read_as_the_twin_reads_them(cls: type[WireRecord], data: st.DataObject) -> None:
    assert_same_reading(cls, data.draw(mutated_dicts(cls)))


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@FAST
@given(value=JSON_VALUES | PYTHON_VALUES | st.lists(st.dictionaries(st.text(max_size=4), JSON_SCALARS), max_size=2))
def test_non_dict_inputs_are_refused_as_the_twin_refuses_them(cls: type[WireRecord], value: Any) -> None:
    assert_same_reading(cls, value)
    if not isinstance(value, dict):
        with pytest.raises(pydantic.ValidationError):
            cls.model_validate(value)


ORDER = {"id": 2934939764, "accountId": 20258288, "contractId": "CON.F.US.MYM.M26", "symbolId": "F.US.MYM",
         "creationTimestamp": "2026-05-06T13:36:03.4962794+00:00", "updateTimestamp": None, "status": 6,
         "type": 2, "side": 0, "size": 15, "limitPrice": 5, "fillVolume": 0}


@pytest.mark.parametrize(("key", "value"), [
    ("size", 5.0), ("size", True), ("size", "5"), ("size", 2**70), ("limitPrice", 5), ("limitPrice", 2**70),
    ("limitPrice", "5.5"), ("limitPrice", float("inf")), ("side", 7), ("side", True), ("side", OrderType.LIMIT),
    ("size", OrderSide.ASK), ("contractId", _Colour.RED), ("contractId", 5), ("customTag", None),
    ("creationTimestamp", "2026-05-06T13:36:03"), ("creationTimestamp", 1_700_000_000),
    ("creationTimestamp", datetime(2026, 5, 6)), ("creationTimestamp", datetime(2026, 5, 6, tzinfo=UTC)),
    ("creationTimestamp", " 2026-05-06T13:36:03Z"), ("creationTimestamp", "2026-05-06t13:36:03z"),
    ("account_id", 1), ("accountId", None),
])
def test_named_edge_cases_read_as_the_twin_reads_them(key: str, value: Any) -> None:
    """The cases the property test must cover, spelled out so a regression names its input."""
    assert_same_reading(OrderModel, {**ORDER, key: value})


@pytest.mark.parametrize("key", ["contractId", "symbolId", "customTag"])
def test_a_str_subclass_is_kept_as_given(key: str) -> None:
    """msgspec keeps a ``str`` subclass (a StrEnum) as it is where pydantic would make it a ``str``: the value is the
    same, only its type is the caller's (a known, documented difference; JSON never produces one)."""
    data = {**ORDER, key: _Colour.RED}
    record = OrderModel.model_validate(data)
    assert type(getattr(record, to_snake(key))) is _Colour
    assert record.wire()[key] == "RED"


def test_huge_integers_go_to_the_twin() -> None:
    """An id beyond 64 bits is still an int (pydantic reads it); a price beyond 64 bits is a float."""
    order = OrderModel.model_validate({**ORDER, "id": 2**70, "limitPrice": 2**70})
    assert order.id == 2**70 and type(order.limit_price) is float and order.wire()["id"] == 2**70


def test_an_instance_validates_as_itself() -> None:
    """As a pydantic model's ``model_validate``: an instance of the class passes unchanged."""
    order = OrderModel.model_validate(ORDER)
    assert OrderModel.model_validate(order) is order


# --------------------------------------------------------------------------------------------------- writing
DUMPS: tuple[dict[str, Any], ...] = (
    {}, {"by_alias": True}, {"mode": "json"}, {"mode": "json", "by_alias": True}, {"exclude_none": True},
    {"mode": "json", "by_alias": True, "exclude_none": True}, {"by_alias": True, "exclude_none": True},
)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@FAST
@given(data=st.data())
def test_dumps_are_the_twins_dumps(cls: type[WireRecord], data: st.DataObject) -> None:
    wire = data.draw(wire_dicts(cls))
    try:
        twin = cls.__lenient__.model_validate(wire)
    except pydantic.ValidationError:
        return  # a junk timestamp: nothing to dump
    record = cls.model_validate(wire)
    assert _written(record.wire) == _written(twin.model_dump, mode="json", by_alias=True)
    assert _written(record.wire, exclude_none=True) == _written(
        twin.model_dump, mode="json", by_alias=True, exclude_none=True)
    for options in DUMPS:
        assert _written(record.model_dump, **options) == _written(twin.model_dump, **options), options


# --------------------------------------------------------------------------------------------------- nesting
RESPONSES: tuple[tuple[type[m.Envelope], str, type[WireRecord]], ...] = (
    (m.SearchAccountResponse, "accounts", TradingAccountModel), (m.SearchOrderResponse, "orders", OrderModel),
    (m.SearchPositionResponse, "positions", PositionModel), (m.SearchTradeResponse, "trades", HalfTradeModel),
)


def _reference(response: type[m.Envelope], key: str, cls: type[WireRecord]) -> type[pydantic.BaseModel]:
    """The same response with the twin nested: what the response read and wrote when the records were pydantic."""
    items: Any = list[cls.__lenient__]  # type: ignore[name-defined]
    fields: dict[str, Any] = {key: (items, ...)}
    return pydantic.create_model(f"Reference{response.__name__}", __base__=m.Envelope, **fields)


@pytest.mark.parametrize(("response", "key", "cls"), RESPONSES, ids=lambda x: getattr(x, "__name__", x))
@FAST
@given(data=st.data())
def test_responses_nest_records_read_and_written_as_the_twin(
        response: type[m.Envelope], key: str, cls: type[WireRecord], data: st.DataObject) -> None:
    items = data.draw(st.lists(wire_dicts(cls) | mutated_dicts(cls), min_size=1, max_size=3))
    body = {"success": True, "errorCode": 0, key: items}
    reference = _reference(response, key, cls)
    try:
        expected = reference.model_validate(body)
    except pydantic.ValidationError as refused:
        with pytest.raises(pydantic.ValidationError) as raised:
            response.model_validate(body)
        assert errors(raised.value) == errors(refused)
        return
    got = response.model_validate(body)
    records = getattr(got, key)
    assert all(type(item) is cls for item in records)
    for item, twin in zip(records, getattr(expected, key), strict=True):
        assert_identical(item, cls.from_lenient(twin))
    written = _written(got.model_dump, mode="json", by_alias=True)
    if written != "unwritable":
        assert written[key] == _typed([item.wire() for item in records])
        assert got.model_dump_json(by_alias=True) == expected.model_dump_json(by_alias=True)
    for options in DUMPS:
        assert _written(got.model_dump, **options) == _written(expected.model_dump, **options), options


def test_a_nested_infinite_price_is_written_as_the_twin_writes_it() -> None:
    """Found by the property test: a dict returned by a plain serializer went through pydantic's untyped writer,
    which made ``inf`` None in ``model_dump(mode="json")`` where the nested model (and :meth:`wire`) keep it."""
    body = {"success": True, "accounts": [{"id": 1, "name": "A", "balance": float("inf"), "canTrade": True,
                                           "isVisible": True}]}
    response = m.SearchAccountResponse.model_validate(body)
    assert response.model_dump(mode="json", by_alias=True)["accounts"] == [response.accounts[0].wire()]
    assert response.model_dump(mode="json")["accounts"][0]["balance"] == float("inf")


def test_a_bad_nested_record_is_reported_with_its_location() -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        m.SearchOrderResponse.model_validate({"success": True, "orders": [ORDER, {**ORDER, "size": "many"}]})
    (error,) = raised.value.errors()
    assert error["loc"] == ("orders", 1, "size") and error["type"] == "int_parsing"


def test_a_record_instance_nests_as_it_is() -> None:
    """Building a response from records (the simulator does) keeps them, as pydantic keeps a model instance."""
    order = OrderModel.model_validate(ORDER)
    user_order = m.GatewayUserOrder.model_validate(ORDER)
    response = m.SearchOrderResponse(success=True, orders=[order, user_order])
    assert response.orders[0] is order and response.orders[1] is user_order
    assert response.model_dump(mode="json", by_alias=True)["orders"] == [order.wire(), user_order.wire()]


# --------------------------------------------------------------------------------------------------- timestamps
@settings(FAST, max_examples=300)
@given(text=any_timestamp())
def test_the_python_timestamp_path_reads_what_msgspec_reads(text: str) -> None:
    try:
        compiled = msgspec.convert(text, AwareDatetime, strict=True)
    except msgspec.ValidationError:
        return
    normalised = _parse_normalised(text)
    assert compiled == normalised and _identity(compiled) == _identity(normalised), text
    assert parse_timestamp(text) == compiled


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-01-01T00:00:00.0000005Z", datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
    ("2025-01-01T00:00:00.0000004999Z", datetime(2025, 1, 1, tzinfo=UTC)),
    ("2026-05-06T13:36:03.4962794+00:00", datetime(2026, 5, 6, 13, 36, 3, 496279, tzinfo=UTC)),
    ("2026-05-06T13:36:03.4962795+00:00", datetime(2026, 5, 6, 13, 36, 3, 496280, tzinfo=UTC)),
    ("2025-12-31T23:59:59.9999995Z", datetime(2026, 1, 1, tzinfo=UTC)),
])
@pytest.mark.parametrize("spelling", [str, lambda text: text.replace("T", " ").replace(".", ",") + " "])
def test_fractions_round_half_up_at_the_seventh_digit(text: str, expected: datetime, spelling: Any) -> None:
    """Both paths: the compiled one (RFC 3339) and the Python one (a comma and a trailing blank)."""
    assert parse_timestamp(spelling(text)) == expected
    assert _parse_normalised(text) == expected


# --------------------------------------------------------------------------------------------------- identity
@pytest.mark.parametrize("cls", [*RECORDS, m.GatewayUserAccount, m.GatewayUserOrder, m.GatewayUserPosition,
                                 m.GatewayUserTrade], ids=lambda cls: cls.__name__)
def test_records_are_untracked_by_the_collector_and_read_as_their_own_class(cls: type[WireRecord]) -> None:
    base = next(record for record in RECORDS if issubclass(cls, record))
    valid = {TradingAccountModel: {"id": 1, "name": "A", "canTrade": True, "isVisible": True},
             OrderModel: ORDER,
             PositionModel: {"id": 1, "accountId": 2, "contractId": "C", "creationTimestamp": "2026-05-06T13:36:00Z",
                             "type": 1, "size": 1, "averagePrice": 1.5},
             HalfTradeModel: {"id": 1, "accountId": 2, "contractId": "C", "creationTimestamp": "2026-05-06T13:36:03Z",
                              "price": 1.5, "side": 0, "size": 1, "orderId": 3}}[base]
    compiled = cls.model_validate(valid)
    lenient = cls.model_validate({**valid, "id": str(valid["id"])})  # the twin's path
    for record in (compiled, lenient, cls.from_lenient(cls.__lenient__.model_validate(valid))):
        assert type(record) is cls
        assert not gc.is_tracked(record)
    assert compiled == lenient
