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
from datetime import UTC, datetime
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.alias_generators import to_snake

from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderType
from engine.protocol.records import HalfTradeModel, OrderModel, PositionModel, TradingAccountModel, WireRecord
from engine.protocol.timestamps import AwareDatetime, _parse_normalised, parse_timestamp
from tests.protocol.strategies import (
    JSON_SCALARS,
    JSON_VALUES,
    PYTHON_VALUES,
    RECORDS,
    Colour,
    any_timestamp,
    assert_identical,
    dumped,
    errors,
    identity,
    mutated_dicts,
    typed_dump,
    wire_dicts,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
    ("size", OrderSide.ASK), ("contractId", Colour.RED), ("contractId", 5), ("customTag", None),
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
    data = {**ORDER, key: Colour.RED}
    record = OrderModel.model_validate(data)
    assert type(getattr(record, to_snake(key))) is Colour
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
    assert dumped(record.wire) == dumped(twin.model_dump, mode="json", by_alias=True)
    assert dumped(record.wire, exclude_none=True) == dumped(
        twin.model_dump, mode="json", by_alias=True, exclude_none=True)
    for options in DUMPS:
        assert dumped(record.model_dump, **options) == dumped(twin.model_dump, **options), options


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
    written = dumped(got.model_dump, mode="json", by_alias=True)
    assert written[key] == typed_dump([item.wire() for item in records])
    assert got.model_dump_json(by_alias=True) == expected.model_dump_json(by_alias=True)
    for options in DUMPS:
        assert dumped(got.model_dump, **options) == dumped(expected.model_dump, **options), options


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
    assert compiled == normalised and identity(compiled) == identity(normalised), text
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
