"""Contract tests of the simulator's REST side: every endpoint's request/response shape and error codes.

In-process through SimulatorTransport under virtual time; responses are parsed with the shared pydantic models, so
a shape drift between simulator and models fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from engine.protocol import models as m
from engine.protocol.errors import (
    LoginErrorCode,
    RetrieveBarErrorCode,
    SearchContractByIdErrorCode,
    SearchOrderByIdErrorCode,
    SearchOrderErrorCode,
    SearchPositionErrorCode,
    SearchTradeErrorCode,
)
from simulator.config import SimConfig
from simulator.gateway import SimulatedGateway
from simulator.rest import RestApp
from simulator.transport import SimulatorTransport

EPOCH = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday, CME open
ES = "CON.F.US.EP.Z26"
ACCOUNT = 1001


@asynccontextmanager
async def sim_client(config: SimConfig | None = None, *, login: bool = True) -> AsyncIterator[
    tuple[httpx.AsyncClient, SimulatedGateway]
]:
    """A running simulator (background loop included) and an httpx client on it, logged in unless told not to."""
    config = config or SimConfig(epoch=EPOCH)
    if config.epoch is None:
        config.epoch = EPOCH
    gateway = SimulatedGateway(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(gateway.run)
        transport = SimulatorTransport(RestApp(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            if login:
                r = await client.post("/api/Auth/loginKey", json={"userName": "sim", "apiKey": "sim-key"})
                client.headers["Authorization"] = f"Bearer {r.json()['token']}"
            yield client, gateway
        nursery.cancel_scope.cancel()


async def call(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await client.post(f"/api/{path}", json=body) if body is not None else await client.post(f"/api/{path}")
    assert r.status_code == 200, (path, r.status_code, r.text)
    data: dict[str, Any] = r.json()
    return data


async def test_login_validate_logout_and_401s(autojump_clock: Any) -> None:
    async with sim_client(login=False) as (client, _):
        bad = await call(client, "Auth/loginKey", {"userName": "sim", "apiKey": "wrong"})
        assert m.LoginResponse.model_validate(bad) == m.LoginResponse(
            success=False, error_code=LoginErrorCode.INVALID_CREDENTIALS, token=None)
        good = m.LoginResponse.model_validate(
            await call(client, "Auth/loginKey", {"userName": "sim", "apiKey": "sim-key"}))
        assert good.success and good.token and good.token.count(".") == 2
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 401
        headers = {"Authorization": f"Bearer {good.token}"}
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True},
                                  headers={"Authorization": "Bearer nonsense"})).status_code == 401
        r = await client.post("/api/Auth/validate", headers=headers)
        validated = m.ValidateResponse.model_validate(r.json())
        assert validated.success and validated.new_token and validated.new_token != good.token
        # both tokens stay valid; logout revokes only the caller's
        assert (await client.post("/api/Auth/logout", headers=headers)).json()["success"] is True
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True},
                                  headers=headers)).status_code == 401
        r = await client.post("/api/Account/search", json={"onlyActiveAccounts": False},
                              headers={"Authorization": f"Bearer {validated.new_token}"})
        assert r.status_code == 200


async def test_token_expiry_gives_401(autojump_clock: Any) -> None:
    async with sim_client(SimConfig(epoch=EPOCH, token_ttl_s=30)) as (client, gateway):
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 200
        await trio.sleep(31)
        r = await client.post("/api/Account/search", json={"onlyActiveAccounts": True})
        assert r.status_code == 401
        assert (await client.post("/api/Auth/validate")).status_code == 401
        assert not gateway.tokens.verify(client.headers["Authorization"][7:])


async def test_accounts_and_contracts(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        accounts = m.SearchAccountResponse.model_validate(await call(client, "Account/search",
                                                                     {"onlyActiveAccounts": True}))
        assert {a.id for a in accounts.accounts} == {1001, 1002, 1003}
        assert all(a.balance > 0 and a.can_trade and a.simulated for a in accounts.accounts)
        everything = await call(client, "Account/search", {"onlyActiveAccounts": False})
        assert {a["id"] for a in everything["accounts"]} == {1001, 1002, 1003, 1004}
        assert set(everything["accounts"][0]) == {"id", "name", "balance", "canTrade", "isVisible", "simulated"}

        found = m.SearchContractResponse.model_validate(await call(client, "Contract/search",
                                                                   {"searchText": "NQ", "live": False}))
        assert {c.id for c in found.contracts} == {"CON.F.US.ENQ.Z26", "CON.F.US.MNQ.Z26"}
        by_id = await call(client, "Contract/searchById", {"contractId": ES})
        assert set(by_id) == {"contract", "success", "errorCode", "errorMessage"}
        contract = m.SearchContractByIdResponse.model_validate(by_id).contract
        assert contract is not None and contract.tick_size == 0.25 and contract.tick_value == 12.5
        assert contract.symbol_id == "F.US.EP"
        missing = await call(client, "Contract/searchById", {"contractId": "CON.F.US.NOPE.Z26"})
        assert missing["errorCode"] == SearchContractByIdErrorCode.CONTRACT_NOT_FOUND and not missing["success"]
        available = m.ListAvailableContractResponse.model_validate(await call(client, "Contract/available",
                                                                              {"live": False}))
        assert len(available.contracts) == 6 and all(c.active_contract for c in available.contracts)


async def test_retrieve_bars_and_its_error_codes(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        body = {"contractId": ES, "live": False, "startTime": "2026-11-25T10:00:00Z",
                "endTime": "2026-11-25T14:00:00", "unit": 2, "unitNumber": 5, "limit": 10,
                "includePartialBar": False}
        bars = m.RetrieveBarResponse.model_validate(await call(client, "History/retrieveBars", body)).bars
        assert len(bars) == 10
        assert bars[0].t > bars[-1].t  # newest first
        assert bars[0].t == datetime(2026, 11, 25, 13, 55, tzinfo=UTC)  # the most recent bars kept
        assert all(b.l <= min(b.o, b.c) and b.h >= max(b.o, b.c) for b in bars)
        for change, code in [({"contractId": "X"}, RetrieveBarErrorCode.CONTRACT_NOT_FOUND),
                             ({"unit": 9}, RetrieveBarErrorCode.UNIT_INVALID),
                             ({"unitNumber": 0}, RetrieveBarErrorCode.UNIT_NUMBER_INVALID),
                             ({"limit": 20_001}, RetrieveBarErrorCode.LIMIT_INVALID)]:
            answer = await call(client, "History/retrieveBars", {**body, **change})
            assert (answer["success"], answer["errorCode"]) == (False, code)


async def test_order_endpoints_shapes_and_codes(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        price = gateway.markets[ES].quote.last
        placed = m.PlaceOrderResponse.model_validate(await call(client, "Order/place", {
            "accountId": ACCOUNT, "contractId": ES, "type": 1, "side": 0, "size": 2,
            "limitPrice": price - 25, "customTag": "rest-1"}))
        assert placed.success and placed.order_id is not None
        oid = placed.order_id
        open_orders = m.SearchOrderResponse.model_validate(await call(client, "Order/searchOpen",
                                                                      {"accountId": ACCOUNT})).orders
        assert [(o.id, o.status, o.custom_tag, o.size) for o in open_orders] == [(oid, 1, "rest-1", 2)]
        assert (await call(client, "Order/modify", {"accountId": ACCOUNT, "orderId": oid, "size": 3,
                                                     "limitPrice": price - 24.75}))["success"]
        one = m.SearchOrderByIdResponse.model_validate(await call(client, "Order/searchById",
                                                                  {"accountId": ACCOUNT, "orderId": oid})).order
        assert one is not None and one.size == 3 and one.limit_price == price - 24.75
        assert (await call(client, "Order/modify", {"accountId": ACCOUNT, "orderId": 1}))["errorCode"] == 2
        assert (await call(client, "Order/modify", {"accountId": 999, "orderId": oid}))["errorCode"] == 1
        assert (await call(client, "Order/cancel", {"accountId": ACCOUNT, "orderId": oid}))["success"]
        again = await call(client, "Order/cancel", {"accountId": ACCOUNT, "orderId": oid})
        assert again["errorCode"] == 3
        missing = await call(client, "Order/cancel", {"accountId": ACCOUNT, "orderId": 123})
        assert (missing["errorCode"], missing["errorMessage"]) == (2, None)
        assert (await call(client, "Order/cancel", {"accountId": 999, "orderId": oid}))["errorCode"] == 1
        history = await call(client, "Order/search", {"accountId": ACCOUNT,
                                                      "startTimestamp": (EPOCH - timedelta(hours=1)).isoformat()})
        assert [(o["id"], o["status"]) for o in history["orders"]] == [(oid, 3)]
        assert set(history["orders"][0]) >= {"id", "accountId", "contractId", "symbolId", "creationTimestamp",
                                              "updateTimestamp", "status", "type", "side", "size", "limitPrice",
                                              "stopPrice", "fillVolume", "filledPrice", "customTag"}
        later = await call(client, "Order/search", {"accountId": ACCOUNT,
                                                    "startTimestamp": (EPOCH + timedelta(days=1)).isoformat()})
        assert later["orders"] == []
        assert (await call(client, "Order/search", {"accountId": 5, "startTimestamp": EPOCH.isoformat()}))[
            "errorCode"] == SearchOrderErrorCode.ACCOUNT_NOT_FOUND
        assert (await call(client, "Order/searchById", {"accountId": ACCOUNT, "orderId": 1}))[
            "errorCode"] == SearchOrderByIdErrorCode.ORDER_NOT_FOUND
        query = m.OrderQueryResponse.model_validate(await call(client, "Order/v2/query", {
            "filter": {"accountId": ACCOUNT, "statuses": [3]}, "includeTotalCount": True}))
        assert [o.id for o in query.orders] == [oid] and query.total_count == 1


async def test_position_and_trade_endpoints(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        assert (await call(client, "Order/place", {"accountId": ACCOUNT, "contractId": ES, "type": 2, "side": 0,
                                                   "size": 3}))["success"]
        positions = m.SearchPositionResponse.model_validate(await call(client, "Position/searchOpen",
                                                                       {"accountId": ACCOUNT})).positions
        assert [(p.contract_id, p.type, p.size) for p in positions] == [(ES, 1, 3)]
        bad_size = await call(client, "Position/partialCloseContract", {"accountId": ACCOUNT, "contractId": ES,
                                                                        "size": 4})
        assert bad_size["errorCode"] == 5
        assert (await call(client, "Position/partialCloseContract", {"accountId": ACCOUNT, "contractId": ES,
                                                                     "size": 1}))["success"]
        assert (await call(client, "Position/closeContract", {"accountId": ACCOUNT, "contractId": ES}))["success"]
        none = await call(client, "Position/closeContract", {"accountId": ACCOUNT, "contractId": ES})
        assert none["errorCode"] == 2
        assert (await call(client, "Position/closeContract", {"accountId": ACCOUNT, "contractId": "X"}))[
            "errorCode"] == 3
        assert (await call(client, "Position/closeContract", {"accountId": ACCOUNT,
                                                              "contractId": "CON.F.US.EP.U26"}))["errorCode"] == 4
        assert (await call(client, "Position/searchOpen", {"accountId": 7}))[
            "errorCode"] == SearchPositionErrorCode.ACCOUNT_NOT_FOUND
        trades = m.SearchTradeResponse.model_validate(await call(client, "Trade/search", {
            "accountId": ACCOUNT, "startTimestamp": EPOCH.isoformat()})).trades
        assert [(t.side, t.size, t.profit_and_loss is None) for t in trades] == [(0, 3, True), (1, 1, False),
                                                                                  (1, 2, False)]
        assert (await call(client, "Trade/search", {"accountId": 7}))[
            "errorCode"] == SearchTradeErrorCode.ACCOUNT_NOT_FOUND


async def test_ping_and_bad_input(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        r = await client.get("/api/Status/ping")
        assert (r.status_code, r.text) == (200, "pong")
        r = await client.post("/api/Order/place", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["title"] == "One or more validation errors occurred."
        r = await client.post("/api/Order/place", json={"contractId": ES, "type": 2, "side": 0, "size": 1})
        assert r.status_code == 400 and "$.accountId" in r.json()["errors"]
        r = await client.post("/api/Order/place", json={"accountId": "1001", "contractId": ES, "type": 2,
                                                        "side": 0, "size": 1, "bogus": True})
        problem = m.ProblemDetails.model_validate(r.json())
        assert r.status_code == 400 and set(problem.errors) == {"$.accountId", "$.bogus"}
        r = await client.post("/api/Account/search", content=b"")
        assert r.status_code == 400
        r = await client.post("/api/Account/search", content=b"[" * (2 << 20))
        assert r.status_code == 413
        assert (await client.post("/api/Nope/nothing", json={})).status_code == 404
        # the server is still fine
        assert (await call(client, "Account/search", {"onlyActiveAccounts": True}))["success"]


async def test_internal_error_is_a_500_not_a_crash(autojump_clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with sim_client() as (client, gateway):
        def boom(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

        monkeypatch.setattr(gateway.book, "positions_of", boom)
        r = await client.post("/api/Position/searchOpen", json={"accountId": ACCOUNT})
        assert r.status_code == 500 and "boom" not in r.text
        assert (await call(client, "Account/search", {"onlyActiveAccounts": True}))["success"]


async def test_rate_limits_429_with_retry_after_and_switch(autojump_clock: Any) -> None:
    config = SimConfig(epoch=EPOCH, general_limit=(5, 60.0), history_limit=(2, 30.0))
    async with sim_client(config) as (client, _):
        statuses = [(await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code
                    for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]  # the login counted too
        r = await client.post("/api/Account/search", json={"onlyActiveAccounts": True})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        await trio.sleep(int(r.headers["retry-after"]))
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 200
        bars = {"contractId": ES, "live": False, "startTime": "2026-11-25T10:00:00Z",
                "endTime": "2026-11-25T11:00:00Z", "unit": 3, "unitNumber": 1, "limit": 1, "includePartialBar": True}
        assert [(await client.post("/api/History/retrieveBars", json=bars)).status_code
                for _ in range(3)] == [200, 200, 429]
    async with sim_client(SimConfig(epoch=EPOCH, general_limit=(2, 60.0), rate_limits=False)) as (client, _):
        for _ in range(10):
            assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 200


async def test_sim_control_endpoints(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        r = await client.post("/_sim/price", json={"contractId": ES, "price": 6400})
        assert r.json()["price"] == 6400
        await call(client, "Order/place", {"accountId": ACCOUNT, "contractId": ES, "type": 2, "side": 1, "size": 1})
        state = (await client.get("/_sim/state")).json()
        assert [p["type"] for p in state["positions"]] == [2]
        assert state["orders"][0]["status"] == 2 and state["trades"][0]["price"] == 6400
        received: list[Any] = []
        with gateway.bus.subscribe("user") as sub:
            assert (await client.post("/_sim/burst", json={"accountId": ACCOUNT, "count": 8})).json() == {
                "published": 8}
            for _ in range(8):
                received.append(await sub.receive())
        assert {e.target for e in received} == {"GatewayUserOrder", "GatewayUserTrade"}
        assert all(e.account_id == ACCOUNT and set(e.arguments[0]) == {"action", "data"} for e in received)
        assert (await client.post("/_sim/faults", json={"kind": "bogus"})).status_code == 400
