"""Error mapping (seed GAP-API-006): every status, code and transport failure lands in the right class."""

from __future__ import annotations

import httpx
import pytest

from engine.gateway import errors as ge
from engine.gateway.errors import ErrorClass
from engine.protocol import errors as pe

AUTH_PATHS = {ge.LOGIN_KEY.path, ge.LOGIN_APP.path, ge.VALIDATE.path, ge.LOGOUT.path, ge.PING.path}
READS = [e for e in ge.ENDPOINTS if not e.mutation and e.path not in AUTH_PATHS]
MUTATIONS = [e for e in ge.ENDPOINTS if e.mutation]


def test_docs_errors_md_is_in_sync_with_the_table() -> None:
    assert ge.DOC_PATH.read_text(encoding="utf-8") == ge.render_markdown(), (
        "docs/errors.md is stale: run python -m engine.gateway.errors --write"
    )


def test_generated_doc_names_every_documented_code() -> None:
    text = ge.render_markdown()
    for path, table in pe.ERROR_CODES.items():
        assert f"### {path}" in text
        for member in table:
            if int(member) != 0:
                assert f"| {int(member)} | {member.name} |" in text


def test_every_gateway_endpoint_is_known_with_its_mutation_flag() -> None:
    assert {e.path for e in ge.ENDPOINTS} >= set(pe.ERROR_CODES)
    assert {e.name for e in MUTATIONS} == {
        "Order/place", "Order/modify", "Order/cancel", "Position/closeContract", "Position/partialCloseContract"}


def test_unknown_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown Gateway endpoint '/api/Nope'"):
        ge.endpoint_for("/api/Nope")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 599])
def test_server_errors_are_transient_for_reads(status: int) -> None:
    err = ge.from_status(ge.ORDER_SEARCH_OPEN.path, status)
    assert isinstance(err, ge.TransientError) and err.breaker_failure and err.status == status


@pytest.mark.parametrize("endpoint", MUTATIONS, ids=lambda e: e.name)
def test_server_errors_are_ambiguous_for_every_mutation(endpoint: ge.Endpoint) -> None:
    err = ge.from_status(endpoint.path, 500)
    assert isinstance(err, ge.AmbiguousError) and err.breaker_failure


def test_429_is_rate_limited_with_retry_after_and_not_a_breaker_failure() -> None:
    for endpoint in (ge.ORDER_PLACE, ge.RETRIEVE_BARS):
        err = ge.from_status(endpoint.path, 429, retry_after_s=7.0)
        assert isinstance(err, ge.RateLimitedError)
        assert err.retry_after_s == 7.0 and not err.breaker_failure


def test_401_is_auth_for_reads_and_mutations() -> None:
    assert isinstance(ge.from_status(ge.ORDER_CANCEL.path, 401), ge.AuthError)
    assert ge.from_status(ge.TRADE_SEARCH.path, 401).error_class is ErrorClass.AUTH


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413, 415, 418])
def test_client_errors_are_permanent(status: int) -> None:
    for endpoint in (ge.ORDER_PLACE, ge.ACCOUNT_SEARCH):
        err = ge.from_status(endpoint.path, status, detail="size: required")
        assert isinstance(err, ge.PermanentError) and not err.breaker_failure
    assert "size: required" in str(ge.from_status(ge.ORDER_PLACE.path, 400, detail="size: required"))


def test_documented_business_rejections_are_permanent() -> None:
    cases = [
        (ge.ORDER_PLACE, pe.PlaceOrderErrorCode.ORDER_REJECTED),
        (ge.ORDER_PLACE, pe.PlaceOrderErrorCode.INSUFFICIENT_FUNDS),
        (ge.ORDER_PLACE, pe.PlaceOrderErrorCode.OUTSIDE_TRADING_HOURS),
        (ge.ORDER_MODIFY, pe.ModifyOrderErrorCode.ORDER_NOT_FOUND),
        (ge.ORDER_CANCEL, pe.CancelOrderErrorCode.ACCOUNT_REJECTED),
        (ge.POSITION_PARTIAL_CLOSE, pe.PartialClosePositionErrorCode.INVALID_CLOSE_SIZE),
        (ge.RETRIEVE_BARS, pe.RetrieveBarErrorCode.UNIT_INVALID),
        (ge.ORDER_BY_ID, pe.SearchOrderByIdErrorCode.ORDER_NOT_FOUND),
    ]
    for endpoint, code in cases:
        err = ge.from_code(endpoint.path, int(code), "no")
        assert isinstance(err, ge.PermanentError), (endpoint.name, code)
        assert err.code == int(code) and code.name in (err.code_name or "")
        assert not err.breaker_failure


def test_pending_and_unknown_codes_of_mutations_are_ambiguous() -> None:
    cases = [
        (ge.ORDER_PLACE, pe.PlaceOrderErrorCode.ORDER_PENDING),
        (ge.ORDER_PLACE, pe.PlaceOrderErrorCode.UNKNOWN_ERROR),
        (ge.ORDER_MODIFY, pe.ModifyOrderErrorCode.PENDING),
        (ge.ORDER_CANCEL, pe.CancelOrderErrorCode.UNKNOWN_ERROR),
        (ge.POSITION_CLOSE, pe.ClosePositionErrorCode.ORDER_PENDING),
        (ge.POSITION_PARTIAL_CLOSE, pe.PartialClosePositionErrorCode.ORDER_PENDING),
        (ge.POSITION_PARTIAL_CLOSE, pe.PartialClosePositionErrorCode.UNKNOWN_ERROR),
    ]
    for endpoint, code in cases:
        assert ge.code_class(endpoint.path, int(code)) is ErrorClass.AMBIGUOUS, (endpoint.name, code)


def test_shifted_code_numbers_are_read_per_endpoint() -> None:
    # 5 is OutsideTradingHours on place, UnknownError on modify, InvalidCloseSize on partialClose.
    assert ge.code_class(ge.ORDER_PLACE.path, 5) is ErrorClass.PERMANENT
    assert ge.code_class(ge.ORDER_MODIFY.path, 5) is ErrorClass.AMBIGUOUS
    assert ge.code_class(ge.POSITION_PARTIAL_CLOSE.path, 5) is ErrorClass.PERMANENT
    assert ge.code_class(ge.POSITION_CLOSE.path, 7) is ErrorClass.AMBIGUOUS
    assert ge.code_class(ge.POSITION_PARTIAL_CLOSE.path, 7) is ErrorClass.AMBIGUOUS


@pytest.mark.parametrize("endpoint", READS, ids=lambda e: e.name)
def test_undocumented_codes_are_permanent_for_reads(endpoint: ge.Endpoint) -> None:
    err = ge.from_code(endpoint.path, 77, None)
    assert isinstance(err, ge.PermanentError)
    assert "undocumented" in (err.code_name or "")


@pytest.mark.parametrize("endpoint", MUTATIONS, ids=lambda e: e.name)
def test_undocumented_codes_are_ambiguous_for_mutations(endpoint: ge.Endpoint) -> None:
    assert isinstance(ge.from_code(endpoint.path, 77, None), ge.AmbiguousError)


def test_permanent_login_codes_stop_and_unknown_login_error_is_transient() -> None:
    for code in (pe.LoginErrorCode.INVALID_CREDENTIALS, pe.LoginErrorCode.AGREEMENTS_NOT_SIGNED,
                 pe.LoginErrorCode.API_SUBSCRIPTION_NOT_FOUND, pe.LoginErrorCode.API_KEY_AUTHENTICATION_DISABLED):
        err = ge.from_code(ge.LOGIN_KEY.path, int(code), None)
        assert isinstance(err, ge.PermanentLoginError) and isinstance(err, ge.AuthError)
    assert isinstance(ge.from_code(ge.LOGIN_KEY.path, int(pe.LoginErrorCode.UNKNOWN_ERROR), None), ge.TransientError)


def test_agreements_message_is_clear() -> None:
    err = ge.from_code(ge.LOGIN_KEY.path, 7, "Please log into the ProjectX platform")
    assert "AGREEMENTS_NOT_SIGNED" in str(err) and "ProjectX platform" in str(err)


def test_validate_session_codes_need_a_login() -> None:
    for code in (1, 2, 3):
        assert isinstance(ge.from_code(ge.VALIDATE.path, code, None), ge.AuthError)
    assert isinstance(ge.from_code(ge.VALIDATE.path, 4, None), ge.TransientError)


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://x/api/Order/place")


def test_connection_refused_is_transient_and_not_sent_even_for_a_mutation() -> None:
    err = ge.from_transport(ge.ORDER_PLACE.path, httpx.ConnectError("refused", request=_request()))
    assert isinstance(err, ge.TransientError) and not err.sent and err.breaker_failure


def test_connect_and_pool_timeouts_are_not_sent() -> None:
    for exc in (httpx.ConnectTimeout("t", request=_request()), httpx.PoolTimeout("t", request=_request())):
        err = ge.from_transport(ge.ORDER_CANCEL.path, exc)
        assert isinstance(err, ge.TransientError) and not err.sent


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError,
                                      httpx.WriteError, httpx.WriteTimeout])
def test_errors_after_sending_are_ambiguous_for_mutations_and_transient_for_reads(exc_type: type) -> None:
    exc = exc_type("boom", request=_request())
    mutation = ge.from_transport(ge.ORDER_PLACE.path, exc)
    read = ge.from_transport(ge.ORDER_SEARCH.path, exc)
    assert isinstance(mutation, ge.AmbiguousError) and mutation.sent
    assert isinstance(read, ge.TransientError) and read.breaker_failure


def test_our_timeout_is_ambiguous_for_a_mutation() -> None:
    assert isinstance(ge.from_timeout(ge.POSITION_CLOSE.path, 30.0), ge.AmbiguousError)
    err = ge.from_timeout(ge.ACCOUNT_SEARCH.path, 30.0)
    assert isinstance(err, ge.TransientError) and "30 s" in str(err)


def test_circuit_open_error_says_when_the_next_probe_is() -> None:
    err = ge.CircuitOpenError("rest", 42.0, endpoint="/api/Order/place")
    assert "42.0 s" in str(err) and not err.sent and err.retry_in_s == 42.0


def test_every_status_rule_class_is_consistent() -> None:
    for status, rule in ge.STATUS_RULES.items():
        if rule.breaker_failure:
            assert rule.error_class is ErrorClass.TRANSIENT, status
        if rule.error_class is not ErrorClass.TRANSIENT:
            assert rule.mutation_class is rule.error_class, status


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert ge.main([]) == 0
    assert capsys.readouterr().out == ge.render_markdown()
