"""Order verification and idempotency (the seed's "Order Verification" unit tests, and more), against the
in-process simulator through the real client, on virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from engine.orders import PlaceIntent, ResultKind
from engine.orders.tags import new_tag
from engine.protocol import models as m
from engine.protocol.enums import OrderSide, OrderType
from engine.store import UNRESOLVED_STATUSES, OrderIntent
from tests.orders.harness import ACCOUNT, CONTRACT, EPOCH, Harness, limit, market, order_harness


async def stored(h: Harness, intent_id: str | None) -> Any:
    assert intent_id is not None
    await h.store.flush()
    return await h.store.get_intent(intent_id)


async def transitions(h: Harness, intent_id: str) -> list[tuple[str, str]]:
    await h.store.flush()
    rows = await h.store.history("transitions")
    return [(r["from_state"], r["to_state"]) for r in rows if r["order_ref"] == intent_id]


async def test_accepted_order_is_recorded_with_its_tag_before_the_request_is_sent(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        seen_at_send: list[Any] = []
        original = h.client.place_order

        async def spy(request: m.PlaceOrderRequest, *, enforcement: bool = False) -> Any:
            seen_at_send.append(await h.store.get_intent(account_id=ACCOUNT, custom_tag=request.custom_tag))
            return await original(request, enforcement=enforcement)

        h.client.place_order = spy  # type: ignore[method-assign]
        result = await h.manager.place(market(2))
        assert result.kind is ResultKind.ACCEPTED and result.order_id is not None
        assert seen_at_send[0] is not None and seen_at_send[0].status == "submitted"
        assert seen_at_send[0].custom_tag == result.custom_tag
        row = await stored(h, result.intent_id)
        assert row.gateway_order_id == result.order_id
        assert [o["id"] for o in h.sim_orders(result.custom_tag)] == [result.order_id]


async def test_every_intent_gets_its_own_tag(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        results = [await h.manager.place(market()) for _ in range(5)]
        tags = [r.custom_tag for r in results]
        assert len(set(tags)) == 5 and all(tags)
        assert h.tag_counts() == {tag: 1 for tag in tags}


async def test_definitive_rejection_is_final_and_never_resent(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        result = await h.manager.place(PlaceIntent(ACCOUNT, "CON.F.US.NOPE.Z26", OrderSide.BID, 1))
        assert result.kind is ResultKind.REJECTED and result.code == 8
        assert result.attempts == 1
        assert (await stored(h, result.intent_id)).status == "rejected"
        assert h.sim_orders() == []


async def test_lost_response_is_verified_and_the_order_adopted_without_a_resend(autojump_clock: MockClock) -> None:
    async with order_harness(stream=False) as h:
        h.gateway.faults.arm("lose_response")
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.ACCEPTED
        assert result.attempts == 1
        sim = h.sim_orders(result.custom_tag)
        assert len(sim) == 1 and sim[0]["id"] == result.order_id
        assert result.state == "filled"
        chain = await transitions(h, result.intent_id or "")
        assert chain[:4] == [("created", "submitting"), ("submitting", "ambiguous"), ("ambiguous", "verifying"),
                             ("verifying", "filled")]


async def test_5xx_not_executed_is_proven_absent_and_resent_with_the_same_tag(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        h.gateway.faults.arm("http_5xx", params={"status": 503})
        result = await h.manager.place(limit(6000.0, 2))
        assert result.kind is ResultKind.ACCEPTED and result.attempts == 2
        assert h.tag_counts() == {result.custom_tag: 1}
        assert result.state == "working"
        chain = await transitions(h, result.intent_id or "")
        assert ("verifying", "absent") in chain and ("submitting", "working") in chain


async def test_tag_already_in_use_means_the_first_attempt_landed_and_it_is_found(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        tag = new_tag(h.manager.policy.tag_prefix, "entry-42")
        earlier = await h.client.place_order(m.PlaceOrderRequest(
            account_id=ACCOUNT, contract_id=CONTRACT, type=int(OrderType.MARKET), side=0, size=1, custom_tag=tag))
        assert earlier.accepted
        result = await h.manager.place(market(1), key="entry-42")
        assert result.kind is ResultKind.ACCEPTED and result.order_id == earlier.order_id
        assert h.tag_counts() == {tag: 1}


async def test_tag_in_use_without_any_order_ends_rejected_not_placed(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        tag = new_tag(h.manager.policy.tag_prefix, "burnt")
        burnt = await h.client.place_order(m.PlaceOrderRequest(
            account_id=ACCOUNT, contract_id=CONTRACT, type=int(OrderType.MARKET), side=0, size=0, custom_tag=tag))
        assert burnt.rejected  # the Gateway keeps the tag of a rejected attempt
        result = await h.manager.place(market(1), key="burnt")
        assert result.kind is ResultKind.REJECTED
        assert "no order" in (result.reason or "")
        assert h.sim_orders() == []
        assert (await stored(h, result.intent_id)).status not in UNRESOLVED_STATUSES


async def test_same_key_within_ttl_returns_the_first_outcome_and_places_nothing(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        first = await h.manager.place(market(1), key="rule-7")
        second = await h.manager.place(market(1), key="rule-7")
        assert second == first
        assert len(h.sim_orders()) == 1


async def test_same_key_after_ttl_is_answered_from_the_store(autojump_clock: MockClock) -> None:
    async with order_harness(settings={"orderManagement.idempotency.cacheTTL": 10}) as h:
        first = await h.manager.place(market(1), key="rule-8")
        await trio.sleep(11)
        second = await h.manager.place(market(1), key="rule-8")
        assert second.kind is ResultKind.ACCEPTED and second.order_id == first.order_id
        assert second.intent_id == first.intent_id
        assert len(h.sim_orders()) == 1


async def test_concurrent_calls_with_one_key_place_once(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        results: list[Any] = []

        async def go() -> None:
            results.append(await h.manager.place(market(1), key="burst"))

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(go)
        assert len({r.order_id for r in results}) == 1
        assert len(h.sim_orders()) == 1


async def test_verification_disabled_leaves_the_intent_unknown_and_hands_it_over(autojump_clock: MockClock) -> None:
    async with order_harness(settings={"orderManagement.verification.enabled": False}) as h:
        h.gateway.faults.arm("lose_response")
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.UNKNOWN and not result.known
        assert (await stored(h, result.intent_id)).status == "ambiguous"
        assert [x.kind for x in h.manager.handoffs] == ["unresolved"]
        assert len(h.sim_orders()) == 1  # it did land; nothing was re-sent


async def test_idempotency_disabled_sends_no_tag_and_never_resends_after_absence(autojump_clock: MockClock) -> None:
    async with order_harness(settings={"orderManagement.idempotency.enabled": False}) as h:
        h.gateway.faults.arm("lose_response")
        found = await h.manager.place(market(1))
        assert found.kind is ResultKind.ACCEPTED and found.custom_tag is None
        assert h.sim_orders()[0]["customTag"] is None
        h.gateway.faults.arm("http_5xx")
        absent = await h.manager.place(market(2))
        assert absent.kind is ResultKind.ABSENT
        assert len(h.sim_orders()) == 1


async def test_inconclusive_verification_is_handed_over_then_resolved_in_the_background(
    autojump_clock: MockClock,
) -> None:
    async with order_harness(stream=False) as h:
        h.gateway.faults.arm("lose_response")
        original = h.client.place_order

        async def network_dies_after_the_send(request: m.PlaceOrderRequest, *, enforcement: bool = False) -> Any:
            outcome = await original(request, enforcement=enforcement)
            h.gateway.faults.arm("outage", duration_s=3600)  # every verification search now fails
            return outcome

        h.client.place_order = network_dies_after_the_send  # type: ignore[method-assign]
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.UNKNOWN
        assert (await stored(h, result.intent_id)).status in UNRESOLVED_STATUSES
        assert h.manager.handoffs and h.manager.handoffs[-1].kind == "unresolved"
        assert await h.manager.recover() == [result]  # still being verified: recover() does not start a second driver
        await trio.sleep(4000)
        row = await stored(h, result.intent_id)
        assert row.status == "filled" and row.gateway_order_id == h.sim_orders()[0]["id"]
        assert await h.store.unresolved_intents() == []
        assert len(h.sim_orders()) == 1


async def test_no_answer_within_the_timeout_is_ambiguous_and_verified(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        h.gateway.faults.arm("delay", params={"seconds": 60})
        result = await h.manager.place(market(1))
        assert result.known
        counts = h.tag_counts()
        assert counts.get(result.custom_tag or "", 0) == (1 if result.kind is ResultKind.ACCEPTED else 0)
        assert all(n == 1 for n in counts.values())


async def test_cancelling_the_caller_mid_send_does_not_abandon_the_intent(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        h.gateway.faults.arm("delay", params={"seconds": 1})
        with trio.move_on_after(0.5):
            await h.manager.place(market(1))
        await trio.sleep(30)
        assert await h.store.unresolved_intents() == []
        assert len(h.sim_orders()) == 1
        row = (await h.store.history("orders"))[0]
        assert row["status"] == "filled" and row["gateway_order_id"] == h.sim_orders()[0]["id"]


async def test_request_refused_before_sending_is_denied_and_nothing_exists(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        h.gateway.faults.arm("outage", duration_s=600)
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.DENIED
        assert (await stored(h, result.intent_id)).status == "rejected"
        assert h.sim_orders() == []


async def test_429_is_waited_out_and_placed_once(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        h.gateway.faults.arm("http_429", params={"retry_after_s": 2})
        result = await h.manager.place(market(1))
        assert result.kind is ResultKind.ACCEPTED
        assert h.tag_counts() == {result.custom_tag: 1}


async def test_recover_resolves_intents_left_unresolved_by_a_crash(autojump_clock: MockClock) -> None:
    async with order_harness(start_manager=False) as h:
        now = h.gateway.clock.now()
        landed_tag, lost_tag = "tx-landed-before-crash", "tx-never-sent"
        await h.client.place_order(m.PlaceOrderRequest(
            account_id=ACCOUNT, contract_id=CONTRACT, type=2, side=0, size=1, custom_tag=landed_tag))
        for intent_id, tag in (("i-landed", landed_tag), ("i-lost", lost_tag)):
            await h.store.record_intent(OrderIntent(intent_id, ACCOUNT, CONTRACT, 0, 1, 2, tag, now))
        await h.nursery.start(h.manager.run)  # recovery runs before run() reports started
        assert await h.store.unresolved_intents() == []
        landed, lost = await h.store.get_intent("i-landed"), await h.store.get_intent("i-lost")
        assert landed is not None and lost is not None
        assert landed.gateway_order_id == h.sim_orders(landed_tag)[0]["id"]
        assert lost.gateway_order_id == h.sim_orders(lost_tag)[0]["id"]  # proven absent, re-sent with its tag
        assert h.tag_counts() == {landed_tag: 1, lost_tag: 1}


async def test_place_before_run_is_refused(autojump_clock: MockClock) -> None:
    from engine.orders import ManagerNotRunning

    async with order_harness(start_manager=False) as h:
        with pytest.raises(ManagerNotRunning):
            await h.manager.place(market(1))


def test_bad_intents_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="size must be >= 1"):
        PlaceIntent(ACCOUNT, CONTRACT, OrderSide.BID, 0)
    with pytest.raises(ValueError, match="limit order needs a limit price"):
        PlaceIntent(ACCOUNT, CONTRACT, OrderSide.BID, 1, OrderType.LIMIT)
    with pytest.raises(ValueError, match="not supported"):
        PlaceIntent(ACCOUNT, CONTRACT, OrderSide.BID, 1, OrderType.TRAILING_STOP)
    assert EPOCH.tzinfo is not None
