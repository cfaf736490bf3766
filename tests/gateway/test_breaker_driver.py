"""The circuit-breaker driver (GAP-API-008) on the Trio clock, alone and inside the client against the simulator."""

from __future__ import annotations

import httpx
import pytest
import trio

from engine.gateway import errors as ge
from engine.gateway.breaker import BreakerState, CircuitBreaker
from engine.gateway.testing import simulated_client
from machines.observe import Transition
from settings import load_settings
from tests.gateway.sim_helpers import ScriptedTransport

PATH = "/api/Order/searchOpen"


def transient() -> ge.GatewayError:
    return ge.from_status(PATH, 503)


def fail(breaker: CircuitBreaker, n: int, error: ge.GatewayError | None = None) -> None:
    for _ in range(n):
        breaker.record(breaker.admit(PATH), error or transient())


async def test_from_settings_uses_the_circuit_breaker_section() -> None:
    settings = load_settings(env={}, overrides={"error_handling": {"circuit_breaker": {
        "failure_threshold": 2, "timeout": 5000, "half_open_requests": 1}}})
    breaker = CircuitBreaker.from_settings(settings, "user_hub")
    assert (breaker.machine.failure_threshold, breaker.machine.open_timeout_s, breaker.machine.half_open_requests) == (
        2, 5.0, 1)
    assert breaker.name == "user_hub" and breaker.state is BreakerState.CLOSED


async def test_threshold_consecutive_transient_failures_open_it_and_calls_fail_fast(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=5, open_timeout_s=60)
    fail(breaker, 4)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(ge.CircuitOpenError, match=r"next probe in 60\.0 s") as info:
        breaker.admit(PATH)
    assert info.value.retry_in_s == pytest.approx(60.0) and not info.value.sent


async def test_a_success_resets_the_consecutive_count() -> None:
    breaker = CircuitBreaker("rest", failure_threshold=3)
    fail(breaker, 2)
    breaker.record(breaker.admit(PATH), None)
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


async def test_business_rejections_401_and_429_never_count() -> None:
    breaker = CircuitBreaker("rest", failure_threshold=2)
    for error in (ge.from_code("/api/Order/place", 2, "bad size"), ge.from_status(PATH, 401),
                  ge.from_status(PATH, 429), ge.from_status(PATH, 400)) * 3:
        breaker.record(breaker.admit(PATH), error)
    assert breaker.state is BreakerState.CLOSED and breaker.machine.failures == 0


async def test_lost_responses_and_timeouts_count() -> None:
    breaker = CircuitBreaker("rest", failure_threshold=2)
    breaker.record(breaker.admit(), ge.from_transport("/api/Order/place", httpx.RemoteProtocolError("x")))
    breaker.record(breaker.admit(), ge.from_timeout("/api/Order/place", 30))
    assert breaker.state is BreakerState.OPEN


async def test_half_open_admits_the_configured_probes_only(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=1, half_open_requests=2, open_timeout_s=10)
    fail(breaker, 1)
    await trio.sleep(10)
    probes = [breaker.admit(PATH), breaker.admit(PATH)]
    assert breaker.state is BreakerState.HALF_OPEN and all(p.probe for p in probes)
    with pytest.raises(ge.CircuitOpenError):
        breaker.admit(PATH)
    breaker.record(probes[0], KeyError("no verdict"))  # e.g. cancelled: not a Gateway answer
    third = breaker.admit(PATH)  # the cancelled probe freed its slot
    breaker.record(third, None)
    assert breaker.state is BreakerState.CLOSED


async def test_probe_failure_reopens_and_restarts_the_timeout(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=1, open_timeout_s=10)
    fail(breaker, 1)
    await trio.sleep(10)
    breaker.record(breaker.admit(PATH), transient())
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in_s() == pytest.approx(10.0)
    await trio.sleep(4)
    assert breaker.retry_in_s() == pytest.approx(6.0)


async def test_every_state_change_reaches_the_listeners(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=1, open_timeout_s=5)
    seen: list[Transition] = []
    breaker.add_listener(seen.append)
    fail(breaker, 1)
    await trio.sleep(5)
    breaker.record(breaker.admit(PATH), None)
    changes = [(t.source, t.target) for t in seen if t.source != t.target]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert seen[0].cause == "TransientError" and seen[0].machine == "breaker:rest"


async def test_wait_until_closed_without_probe_waits_for_other_traffic(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=1, open_timeout_s=5)
    fail(breaker, 1)
    closed_at: list[float] = []

    async def waiter() -> None:
        await breaker.wait_until_closed()
        closed_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(20)
        assert closed_at == []
        breaker.record(breaker.admit(PATH), None)
    assert closed_at == [pytest.approx(20.0)]


async def test_wait_until_closed_drives_its_own_probe(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest", failure_threshold=1, open_timeout_s=5)
    fail(breaker, 1)
    answers = iter([transient(), None])
    probes: list[float] = []

    async def probe() -> None:
        permit = breaker.admit(PATH)
        probes.append(trio.current_time())
        error = next(answers)
        breaker.record(permit, error)
        if error is not None:
            raise error

    await breaker.wait_until_closed(probe=probe)
    assert probes == [pytest.approx(5.0), pytest.approx(10.0)]
    assert breaker.state is BreakerState.CLOSED


async def test_forced_open_holds_waiters_until_reset(autojump_clock: object) -> None:
    breaker = CircuitBreaker("rest")
    breaker.machine.force_open("operator")
    with pytest.raises(ge.CircuitOpenError, match="when a probe succeeds"):
        breaker.admit(PATH)
    done: list[float] = []

    async def waiter() -> None:
        await breaker.wait_until_closed()
        done.append(trio.current_time())

    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.sleep(100)
            assert done == []
            breaker.machine.reset("operator")
    assert done == [pytest.approx(100.0)]


async def test_client_reads_fail_fast_without_sending_while_open(autojump_clock: object) -> None:
    holder: list[ScriptedTransport] = []

    def wrap(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        holder.append(ScriptedTransport(inner))
        return holder[0]

    async with simulated_client(wrap_transport=wrap, overrides={
            "error_handling": {"retries": {"max_attempts": 1}}}) as sim:
        await sim.client.search_accounts()
        holder[0].script(PATH, *[500] * 5)
        for _ in range(5):
            with pytest.raises(ge.TransientError):
                await sim.client.search_open_orders(1001)
        assert sim.client.breaker.state is BreakerState.OPEN
        with pytest.raises(ge.CircuitOpenError):
            await sim.client.search_open_orders(1001)
        assert holder[0].counts[PATH] == 5
        denied = await sim.client.cancel_order(1001, 1)
        assert denied.denied and "circuit breaker 'rest' is open" in (denied.reason or "")
