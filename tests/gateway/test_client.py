"""GatewayClient against the in-process simulator: every endpoint, read retries, mutation outcomes, timeouts."""

from __future__ import annotations

import random
from datetime import timedelta

import httpx
import pytest
import trio

from engine.gateway.errors import PermanentError, TransientError
from engine.gateway.outcome import OutcomeKind
from engine.gateway.ratelimit import RateLimiter
from engine.gateway.testing import SIM_EPOCH, simulated_client
from engine.protocol import models as m
from engine.protocol.enums import AggregateBarUnit, OrderSide, OrderType
from tests.gateway.sim_helpers import ScriptedTransport

ES = "CON.F.US.EP.Z26"
PLACE = "/api/Order/place"
SEARCH_OPEN = "/api/Order/searchOpen"


class Wrap:
    def __init__(self) -> None:
        self.transport: ScriptedTransport | None = None

    def __call__(self, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        self.transport = ScriptedTransport(inner)
        return self.transport

    @property
    def t(self) -> ScriptedTransport:
        assert self.transport is not None
        return self.transport


def market(size: int = 1, tag: str | None = None) -> m.PlaceOrderRequest:
    return m.PlaceOrderRequest(account_id=1001, contract_id=ES, type=int(OrderType.MARKET), side=int(OrderSide.BID),
                               size=size, custom_tag=tag)


def limit(price: float = 6000.0) -> m.PlaceOrderRequest:
    return m.PlaceOrderRequest(account_id=1001, contract_id=ES, type=int(OrderType.LIMIT), side=int(OrderSide.BID),
                               size=1, limit_price=price)


async def test_every_read_endpoint_returns_typed_models(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        c = sim.client
        assert await c.ping() is True
        assert [a.id for a in await c.search_accounts()] == [1001, 1002, 1003]
        assert 1004 in [a.id for a in await c.search_accounts(only_active=False)]
        assert any(x.id == ES for x in await c.search_contracts("ES"))
        contract = await c.contract_by_id(ES)
        assert contract is not None and contract.tick_size == 0.25
        assert await c.contract_by_id("CON.F.US.NOPE.Z26") is None
        assert len(await c.available_contracts()) >= 6
        bars = await c.retrieve_bars(m.RetrieveBarRequest(
            contract_id=ES, live=False, start_time=SIM_EPOCH - timedelta(hours=1), end_time=SIM_EPOCH,
            unit=int(AggregateBarUnit.MINUTE), unit_number=1, limit=30, include_partial_bar=False))
        assert 0 < len(bars) <= 30 and isinstance(bars[0], m.AggregateBarModel)
        placed = await c.place_order(limit())
        assert placed.accepted and placed.order_id is not None
        assert [o.id for o in await c.search_open_orders(1001)] == [placed.order_id]
        assert [o.id for o in await c.search_orders(1001, SIM_EPOCH - timedelta(hours=1))] == [placed.order_id]
        found = await c.order_by_id(1001, placed.order_id)
        assert found is not None and found.limit_price == 6000.0
        assert await c.order_by_id(1001, 987654) is None
        page = await c.query_orders_v2(m.OrderQueryRequest(filter=m.OrderQueryFilter(account_id=1001),
                                                           include_total_count=True))
        assert [o.id for o in page.orders] == [placed.order_id]
        assert await c.search_open_positions(1001) == []
        assert await c.search_trades(1001, SIM_EPOCH - timedelta(hours=1)) == []


async def test_every_mutation_is_accepted_with_a_typed_outcome(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        c = sim.client
        working = await c.place_order(limit())
        assert working.kind is OutcomeKind.ACCEPTED and working.order_id is not None
        modified = await c.modify_order(m.ModifyOrderRequest(account_id=1001, order_id=working.order_id,
                                                             limit_price=6001.0))
        assert modified.accepted
        assert (await c.cancel_order(1001, working.order_id)).accepted
        assert (await c.place_order(market(size=3))).accepted
        assert (await c.partial_close_position(1001, ES, 1)).accepted
        assert [p.size for p in await c.search_open_positions(1001)] == [2]
        assert (await c.close_position(1001, ES, enforcement=True)).accepted
        assert await c.search_open_positions(1001) == []
        assert len(await c.search_trades(1001)) == 3


async def test_business_rejection_is_returned_with_its_code_and_never_resent(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        outcome = await sim.client.cancel_order(1001, 424242)
        assert outcome.rejected and outcome.code == 2 and outcome.code_name == "CancelOrderErrorCode.ORDER_NOT_FOUND"
        outcome = await sim.client.place_order(market(size=0))
        assert outcome.rejected and outcome.code == 2
        assert wrap.t.counts["/api/Order/cancel"] == 1 and wrap.t.counts[PLACE] == 1
        assert sim.client.breaker.machine.failures == 0


async def test_lost_response_on_place_is_ambiguous_and_not_resent(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("lose_response")
        outcome = await sim.client.place_order(market(tag="lost-1"))
        assert outcome.ambiguous and "RemoteProtocolError" in (outcome.reason or "")
        assert wrap.t.counts[PLACE] == 1
        # it was executed: verification finds it
        orders = await sim.client.search_orders(1001, SIM_EPOCH - timedelta(hours=1))
        assert [o.custom_tag for o in orders] == ["lost-1"]


async def test_server_error_on_a_mutation_is_ambiguous(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("http_5xx", params={"status": 502})
        outcome = await sim.client.cancel_order(1001, 1, enforcement=True)
        assert outcome.ambiguous and "502" in (outcome.reason or "")
        assert wrap.t.counts["/api/Order/cancel"] == 1


async def test_refused_connection_is_safe_to_resend_even_for_a_place(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap, rng=random.Random(7)) as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("outage", duration_s=0.5)
        outcome = await sim.client.place_order(market(tag="after-outage"))
        assert outcome.accepted
        assert wrap.t.counts[PLACE] >= 2
        assert len(await sim.client.search_open_positions(1001)) == 1
        tags = [o.custom_tag for o in await sim.client.search_orders(1001, SIM_EPOCH - timedelta(hours=1))]
        assert tags == ["after-outage"]


async def test_429_on_a_mutation_waits_retry_after_and_resends(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("http_429", params={"retry_after_s": 4})
        start = trio.current_time()
        outcome = await sim.client.place_order(limit())
        assert outcome.accepted and wrap.t.counts[PLACE] == 2
        assert trio.current_time() - start >= 4.0
        assert sim.client.limiter.stats().rate_limited_429_total == 1


async def test_reads_are_retried_with_backoff_on_transient_failures(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        await sim.client.search_accounts()
        wrap.t.script(SEARCH_OPEN, 503, httpx.ReadError("reset"), 500)
        assert await sim.client.search_open_orders(1001) == []
        assert wrap.t.counts[SEARCH_OPEN] == 4


async def test_read_retries_give_up_after_max_attempts(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap, overrides={
            "error_handling": {"retries": {"max_attempts": 3}, "circuit_breaker": {"failure_threshold": 50}}}) as sim:
        wrap.t.script(SEARCH_OPEN, *[500] * 10)
        with pytest.raises(TransientError, match="HTTP 500"):
            await sim.client.search_open_orders(1001)
        assert wrap.t.counts[SEARCH_OPEN] == 3


async def test_permanent_read_errors_are_not_retried(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap) as sim:
        wrap.t.script(SEARCH_OPEN, 400)
        with pytest.raises(PermanentError, match="HTTP 400"):
            await sim.client.search_open_orders(1001)
        assert wrap.t.counts[SEARCH_OPEN] == 1
        with pytest.raises(PermanentError, match="ACCOUNT_NOT_FOUND"):
            await sim.client.search_open_positions(5555)


async def test_api_timeout_is_a_cancel_scope(autojump_clock: object) -> None:
    wrap = Wrap()
    async with simulated_client(wrap_transport=wrap, overrides={"api": {"timeout": 2000}}) as sim:
        await sim.client.search_accounts()
        sim.gateway.faults.arm("delay", params={"seconds": 10})
        start = trio.current_time()
        assert await sim.client.search_open_orders(1001) == []  # first attempt timed out, the retry succeeded
        assert wrap.t.counts[SEARCH_OPEN] == 2 and trio.current_time() - start < 10
        sim.gateway.faults.arm("delay", params={"seconds": 10})
        outcome = await sim.client.place_order(limit())
        assert outcome.ambiguous and "api.timeout" in (outcome.reason or "")


async def test_full_rate_limit_queue_denies_a_mutation_locally(autojump_clock: object) -> None:
    limiter = RateLimiter(queue_size=2, drop_oldest=False)
    async with simulated_client(limiter=limiter) as sim:
        await sim.client.tokens.current()
        outcomes = []

        async def place() -> None:
            outcomes.append(await sim.client.place_order(limit()))

        limiter.pause_for(5.0)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(place)
        kinds = sorted(o.kind.value for o in outcomes)
        assert kinds.count("denied") == 1 and kinds.count("accepted") == 2
        denied = next(o for o in outcomes if o.denied)
        assert "queue full" in (denied.reason or "")


async def test_logout_revokes_the_token_and_the_next_call_logs_in_again(autojump_clock: object) -> None:
    async with simulated_client() as sim:
        await sim.client.search_accounts()
        await sim.client.logout()
        assert len(await sim.client.search_accounts()) == 3
        assert sim.client.tokens.logins == 2
