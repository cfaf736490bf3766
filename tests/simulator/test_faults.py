"""Fault injection: every REST fault kind as a client observes it, seeded replay, profiles, and a lost response over a
real hypercorn socket."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from simulator import faults as fk
from simulator.config import SimConfig
from simulator.faults import FaultInjector
from tests.simulator.test_rest import ACCOUNT, EPOCH, ES, call, sim_client

ORDER = {"accountId": ACCOUNT, "contractId": ES, "type": 2, "side": 0, "size": 1}


async def arm(client: httpx.AsyncClient, **body: Any) -> None:
    r = await client.post("/_sim/faults", json=body)
    assert r.status_code == 200, r.text


async def test_http_5xx_and_429(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        await arm(client, kind="http_5xx", count=2, params={"status": [503]})
        codes = [(await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code
                 for _ in range(3)]
        assert codes == [503, 503, 200]
        await arm(client, kind="http_429", params={"retry_after_s": 7})
        r = await client.post("/api/Account/search", json={"onlyActiveAccounts": True})
        assert (r.status_code, r.headers["retry-after"]) == (429, "7")


async def test_delay_holds_the_answer_on_the_trio_clock(autojump_clock: Any) -> None:
    async with sim_client() as (client, _):
        await arm(client, kind="delay", params={"seconds": 12})
        start = trio.current_time()
        with trio.move_on_after(5) as scope:
            await client.post("/api/Account/search", json={"onlyActiveAccounts": True})
        assert scope.cancelled_caught  # a client timeout shorter than the delay fires
        await arm(client, kind="delay", params={"seconds": 12})
        start = trio.current_time()
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 200
        assert trio.current_time() - start == pytest.approx(12)


async def test_lose_response_executes_then_breaks_the_connection(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        await arm(client, kind="lose_response")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/Order/place", json={**ORDER, "customTag": "lost-1"})
        # the order exists although the client never heard of it; a retry with the same tag is refused
        assert [o.custom_tag for o in gateway.book.orders.values()] == ["lost-1"]
        retry = await call(client, "Order/place", {**ORDER, "customTag": "lost-1"})
        assert retry["errorCode"] == 2 and "already in use" in retry["errorMessage"]
        # reads are never "lost": the fault waits for a mutation
        await arm(client, kind="lose_response")
        assert (await call(client, "Account/search", {"onlyActiveAccounts": True}))["success"]
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/Order/cancel", json={"accountId": ACCOUNT, "orderId": 1})


async def test_a_fault_aimed_at_a_path_spares_every_other_request(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        await arm(client, kind="delay", params={"seconds": 7, "path": "/api/Order/place"})
        start = trio.current_time()
        assert (await call(client, "Account/search", {"onlyActiveAccounts": True}))["success"]
        assert (await call(client, "Order/searchOpen", {"accountId": ACCOUNT}))["success"]
        assert trio.current_time() == start  # the reads went through at once, the fault still armed
        assert (await call(client, "Order/place", {**ORDER, "customTag": "aimed-1"}))["success"]
        assert trio.current_time() - start == pytest.approx(7)
        assert [r.context["path"] for r in gateway.faults.log] == ["/api/Order/place"]


async def test_outage_refuses_connections_for_its_duration(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        await arm(client, kind="outage", duration_s=30)
        with pytest.raises(httpx.ConnectError):
            await client.post("/api/Order/place", json=ORDER)
        assert gateway.book.orders == {}  # nothing executed
        assert gateway.faults.active("outage") is not None
        await trio.sleep(30)
        assert (await call(client, "Order/place", ORDER))["success"]
        assert [r.kind for r in gateway.faults.log] == ["outage"]


async def test_expire_and_revoke_tokens(autojump_clock: Any) -> None:
    async with sim_client() as (client, gateway):
        token = client.headers["Authorization"][7:]
        await arm(client, kind="expire_tokens")
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 401
        assert not gateway.tokens.verify(token)
        fresh = (await call(client, "Auth/loginKey", {"userName": "sim", "apiKey": "sim-key"}))["token"]
        client.headers["Authorization"] = f"Bearer {fresh}"
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 200
        await arm(client, kind="revoke_tokens")
        assert (await client.post("/api/Account/search", json={"onlyActiveAccounts": True})).status_code == 401
        validate = await client.post("/api/Auth/validate")
        assert (validate.status_code, validate.json()["errorCode"]) == (200, 1)


async def test_seeded_probability_replays_exactly(autojump_clock: Any) -> None:
    def run(seed: int) -> list[bool]:
        injector = FaultInjector(seed)
        injector.arm(fk.DROP_EVENTS, count=None, probability=0.3)
        return [injector.take(fk.DROP_EVENTS, n=i) is not None for i in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert 30 < sum(run(7)) < 90


async def test_fault_arming_rules(autojump_clock: Any) -> None:
    injector = FaultInjector(1)
    with pytest.raises(ValueError, match="unknown fault kind"):
        injector.arm("nope")
    with pytest.raises(ValueError, match="probability"):
        injector.arm(fk.WS_DROP, probability=2)
    injector.arm(fk.STOP_PINGS, duration_s=10, params={"x": 1})
    active = injector.active(fk.STOP_PINGS)
    assert active is not None and active.params == {"x": 1}
    assert injector.active(fk.STOP_PINGS) is not None  # not consumed
    await trio.sleep(10)
    assert injector.active(fk.STOP_PINGS) is None
    injector.arm(fk.WS_CLOSE, count=2)
    assert [injector.take(fk.WS_CLOSE) is not None for _ in range(3)] == [True, True, False]
    injector.arm(fk.WS_DROP, count=None)
    injector.disarm()
    assert injector.take(fk.WS_DROP) is None


async def test_profiles_arm_a_seeded_schedule(autojump_clock: Any) -> None:
    async def armed_kinds(seed: int) -> list[str]:
        injector = FaultInjector(seed)
        seen: list[str] = []
        original = injector.arm

        def spy(kind: str, **kwargs: Any) -> None:
            seen.append(kind)
            original(kind, **kwargs)

        injector.arm = spy  # type: ignore[method-assign]
        with trio.move_on_after(3600):
            await injector.run_profile("chaos")
        return seen

    first = await armed_kinds(3)
    assert first == await armed_kinds(3) and len(first) > 20
    with pytest.raises(ValueError, match="unknown fault profile"):
        await FaultInjector(0).run_profile("bogus")


@pytest.mark.system
async def test_lose_response_over_a_real_hypercorn_socket() -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from simulator.gateway import SimulatedGateway
    from simulator.rest import RestApp

    gateway = SimulatedGateway(SimConfig(epoch=EPOCH))
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    shutdown = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(lambda task_status: serve(RestApp(gateway), config,  # type: ignore[arg-type]
                                                                 shutdown_trigger=shutdown.wait,
                                                                 task_status=task_status))
            base = urls[0] if isinstance(urls, list) else urls
            async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                token = (await call(client, "Auth/loginKey", {"userName": "sim", "apiKey": "sim-key"}))[
                    "token"]
                client.headers["Authorization"] = f"Bearer {token}"
                gateway.faults.arm(fk.LOSE_RESPONSE)
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.post("/api/Order/place", json={**ORDER, "customTag": "sock-1"})
                assert [o.custom_tag for o in gateway.book.orders.values()] == ["sock-1"]
                assert (await call(client, "Order/searchOpen", {"accountId": ACCOUNT}))["success"]
            shutdown.set()
