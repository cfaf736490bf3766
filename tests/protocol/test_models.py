"""Wire models: camelCase round trips, strict request validation, lenient timestamps, error-code tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.protocol import models as m
from engine.protocol.enums import OrderStatus, OrderType
from engine.protocol.errors import ERROR_CODES, PartialClosePositionErrorCode, PlaceOrderErrorCode, describe


@pytest.mark.parametrize("text", [
    "2026-05-06T13:36:03.4962794+00:00", "2026-05-06T13:36:03.496279Z", "2026-05-06T13:36:03.496279",
])
def test_timestamps_parse_leniently(text: str) -> None:
    parsed = m.parse_timestamp(text)
    assert parsed == datetime(2026, 5, 6, 13, 36, 3, 496279, tzinfo=UTC)


def test_offset_timestamps_keep_their_instant() -> None:
    parsed = m.parse_timestamp("2026-05-06T08:36:03-05:00")
    assert parsed == datetime(2026, 5, 6, 13, 36, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="ISO-8601"):
        m.parse_timestamp("yesterday")


@given(st.datetimes(timezones=st.just(UTC)))
def test_timestamp_round_trip(instant: datetime) -> None:
    assert m.parse_timestamp(m.format_timestamp(instant)) == instant


def test_order_model_reads_a_live_stream_payload_and_ignores_new_fields() -> None:
    data = {"id": 2934939764, "accountId": 20258288, "contractId": "CON.F.US.MYM.M26", "symbolId": "F.US.MYM",
            "creationTimestamp": "2026-05-06T13:36:03.4962794+00:00", "updateTimestamp": None, "status": 6,
            "type": 2, "side": 0, "size": 15, "fillVolume": 0, "somethingNew": 1}
    order = m.GatewayUserOrder.model_validate(data)
    assert order.status is OrderStatus.PENDING and order.type is OrderType.MARKET and order.limit_price is None
    wire = order.wire(exclude_none=True)
    assert "limitPrice" not in wire and wire["creationTimestamp"] == "2026-05-06T13:36:03.496279+00:00"
    assert m.OrderModel.model_validate(order.wire()).wire() == order.wire()


def test_requests_are_strict_and_serialise_with_wire_names() -> None:
    req = m.PlaceOrderRequest(account_id=1, contract_id="C", type=1, side=0, size=1, limit_price=5.25,
                              stop_loss_bracket=m.BracketModel(ticks=-8, type=OrderType.STOP))
    assert req.wire() == {"accountId": 1, "contractId": "C", "type": 1, "side": 0, "size": 1, "limitPrice": 5.25,
                          "stopLossBracket": {"ticks": -8, "type": 4}}
    with pytest.raises(pydantic.ValidationError) as err:
        m.PlaceOrderRequest.model_validate_json(b'{"accountId":"1","contractId":"C","type":1,"side":0,"size":1,'
                                                b'"extra":true}', strict=True)
    assert {e["loc"][0] for e in err.value.errors()} == {"accountId", "extra"}


def test_envelopes_and_problem_details() -> None:
    resp = m.PlaceOrderResponse.model_validate({"orderId": 9056, "success": True, "errorCode": 0,
                                                "errorMessage": None})
    assert resp.order_id == 9056 and resp.success
    problem = m.ProblemDetails.model_validate({"type": "x", "title": "One or more validation errors occurred.",
                                               "status": 400, "errors": {"accountId": ["required"]}, "traceId": "t"})
    assert problem.errors == {"accountId": ["required"]} and problem.trace_id == "t"


def test_error_tables_are_per_endpoint() -> None:
    assert ERROR_CODES["/api/Order/place"] is PlaceOrderErrorCode
    assert PlaceOrderErrorCode(5).name == "OUTSIDE_TRADING_HOURS"
    assert PartialClosePositionErrorCode(5).name == "INVALID_CLOSE_SIZE"
    assert describe("/api/Order/place", 2).startswith("PlaceOrderErrorCode.ORDER_REJECTED (2): every validation")
    assert "undocumented" in describe("/api/Order/cancel", 42)
    assert describe("/api/Position/closeContract", 5) == "ClosePositionErrorCode.ORDER_REJECTED (5)"


def test_non_utc_datetimes_serialise_as_utc() -> None:
    trade = m.HalfTradeModel(id=1, account_id=1, contract_id="C", price=1.0, side=0, size=1, order_id=2,
                             creation_timestamp=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=-6))))
    assert trade.wire()["creationTimestamp"] == "2026-01-01T18:00:00.000000+00:00"


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_instant_without_a_utc_date_is_written_in_its_own_offset_not_a_crash(text: str) -> None:
    """Read fine, but its UTC date is outside years 1-9999: the mirror's snapshot (a periodic save) writes it anyway."""
    order = m.OrderModel.model_validate({"id": 1, "accountId": 1, "contractId": "C", "creationTimestamp": text,
                                         "status": 1, "type": 1, "side": 0, "size": 1})
    written = order.wire()["creationTimestamp"]
    assert m.parse_timestamp(written) == order.creation_timestamp
