"""Every record kind written through the writer and read back unchanged, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.store import (
    ComponentEvent,
    DuplicateIntentError,
    EnforcementEntry,
    Fill,
    OrderUpdate,
    PnlSnapshot,
    ReconcileFinding,
    StateSnapshot,
    StoreError,
    open_store,
)
from tests.store.helpers import T0, intent, transition


async def test_order_intent_update_and_transition_round_trip(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.record_intent(intent(1, stop_price=20990.0), transition(1, "new", "submitted", cause="place"))
        await store.update_order(
            OrderUpdate("intent-1", T0 + timedelta(seconds=2), status="working", gateway_order_id=90210),
            transition(1, "submitted", "working", at=T0 + timedelta(seconds=2), cause="accepted"),
        )
        await store.update_order(OrderUpdate("intent-1", T0 + timedelta(seconds=5), filled_qty=1, avg_price=21001.5))
        stored = await store.get_intent("intent-1")
        by_tag = await store.get_intent(account_id=1001, custom_tag="tag-1")
        transitions = await store.history("transitions")
    assert stored is not None and stored == by_tag
    assert (stored.status, stored.gateway_order_id) == ("working", 90210)
    assert (stored.filled_qty, stored.avg_price) == (1, 21001.5)
    assert (stored.limit_price, stored.stop_price, stored.trail_price) == (21001.25, 20990.0, None)
    assert stored.created_at == T0 and stored.updated_at == T0 + timedelta(seconds=5)
    assert [(t["from_state"], t["to_state"], t["cause"]) for t in transitions] == [
        ("new", "submitted", "place"),
        ("submitted", "working", "accepted"),
    ]
    assert transitions[0]["at"] == T0 and transitions[0]["order_ref"] == "intent-1"


async def test_custom_tag_is_unique_per_account_only(db_url: str) -> None:
    async with open_store(db_url) as store:
        await store.record_intent(intent(1))
        with pytest.raises(DuplicateIntentError, match="customTag 'tag-1'"):
            await store.record_intent(intent(2, custom_tag="tag-1"))
        with pytest.raises(DuplicateIntentError):
            await store.record_intent(intent(1, custom_tag="other"))
        await store.record_intent(intent(3, custom_tag="tag-1", account=2002))  # another account: fine
        rows = await store.history("orders")
    assert sorted((r["intent_id"], r["account_id"]) for r in rows) == [("intent-1", 1001), ("intent-3", 2002)]


async def test_update_of_an_unknown_intent_is_an_error(db_url: str) -> None:
    async with open_store(db_url) as store:
        with pytest.raises(StoreError, match="unknown intent 'ghost'"):
            await store.update_order(OrderUpdate("ghost", T0, status="working"))


async def test_fills_are_unique_by_trade_id_and_updated_on_repeat(db_url: str) -> None:
    fill = Fill(7001, 1001, 90210, "CON.F.US.MNQ.M25", 0, 21001.5, 1, 0.37, T0, pnl=None, commissions=0.5)
    async with open_store(db_url) as store:
        store.journal(fill)
        store.journal(Fill(7002, 1001, 90210, "CON.F.US.MNQ.M25", 1, 21010.0, 1, 0.37, T0, pnl=17.0))
        await store.commit_now(Fill(7001, 1001, 90210, "CON.F.US.MNQ.M25", 0, 21001.5, 1, 0.37, T0, voided=True))
        rows = await store.history("fills")
    assert [r["trade_id"] for r in rows] == [7001, 7002]
    assert rows[0]["voided"] is True and rows[0]["commissions"] is None
    assert rows[1]["pnl"] == 17.0 and rows[1]["side"] == 1 and rows[1]["at"] == T0


async def test_enforcement_pnl_findings_and_component_events_round_trip(db_url: str) -> None:
    async with open_store(db_url) as store:
        store.journal(
            EnforcementEntry(
                rule="daily_loss",
                measured={"realized": -612.5, "unrealized": -90.0, "contracts": ["CON.F.US.MNQ.M25"]},
                limit=-600.0,
                actions=["cancel_all", "flatten"],
                outcome="flat",
                triggered_at=T0,
                completed_at=T0 + timedelta(seconds=1),
                account_id=1001,
            ),
            PnlSnapshot(1001, date(2025, 3, 3), -90.0, T0),
            ReconcileFinding("missed_fill", {"tradeId": 7003, "orderId": 90211}, T0, account_id=1001),
            ComponentEvent("user_hub", "connected", "reconnecting", "ws closed 1006", T0),
        )
        await store.flush()
        enforcement = await store.history("enforcement")
        pnl = await store.history("pnl")
        findings = await store.history("reconcile")
        events = await store.history("connection")
    assert enforcement[0]["measured"] == {"realized": -612.5, "unrealized": -90.0, "contracts": ["CON.F.US.MNQ.M25"]}
    assert enforcement[0]["actions"] == ["cancel_all", "flatten"]
    row = enforcement[0]
    assert (row["limit_value"], row["outcome"], row["account_id"]) == (-600.0, "flat", 1001)
    assert enforcement[0]["completed_at"] == T0 + timedelta(seconds=1)
    assert (pnl[0]["trading_day"], pnl[0]["unrealized_pnl"], pnl[0]["at"]) == (date(2025, 3, 3), -90.0, T0)
    assert (findings[0]["kind"], findings[0]["details"]) == ("missed_fill", {"tradeId": 7003, "orderId": 90211})
    assert [(e["component"], e["from_state"], e["to_state"], e["cause"]) for e in events] == [
        ("user_hub", "connected", "reconnecting", "ws closed 1006")
    ]


GATEWAY_STATE = {
    "accounts": [
        {"id": 1001, "name": "50KTC-1", "balance": 50210.5, "canTrade": True, "isVisible": True, "simulated": True},
        {"id": 2002, "name": "PRAC-2", "balance": 150000.0, "canTrade": False, "isVisible": True, "simulated": True},
    ],
    "positions": [
        {"id": 11, "accountId": 1001, "contractId": "CON.F.US.MNQ.M25", "creationTimestamp": "2025-03-03T14:30:00Z",
         "type": 1, "size": 2, "averagePrice": 21001.25},
    ],
    "orders": [
        {"id": 90210, "accountId": 1001, "contractId": "CON.F.US.MNQ.M25", "status": 1, "type": 1, "side": 1,
         "size": 2, "limitPrice": 21050.0, "stopPrice": None, "fillVolume": 0, "filledPrice": None,
         "customTag": "tag-9", "creationTimestamp": "2025-03-03T14:30:01Z", "updateTimestamp": None},
    ],
}


async def test_mirrored_state_round_trips_with_gateway_field_names(db_url: str) -> None:
    async with open_store(db_url) as store:
        assert (await store.load_state()).saved_at is None
        await store.save_state(StateSnapshot.from_gateway(GATEWAY_STATE, T0))
        saved = await store.load_state()
    assert saved.as_gateway_dict() == GATEWAY_STATE
    assert saved.saved_at == T0


async def test_saving_one_account_leaves_other_accounts_untouched(db_url: str) -> None:
    later = T0 + timedelta(minutes=1)
    async with open_store(db_url) as store:
        await store.save_state(StateSnapshot.from_gateway(GATEWAY_STATE, T0))
        # a second engine process watching only account 2002 saves its view
        await store.save_state(
            StateSnapshot.from_gateway({"accounts": [GATEWAY_STATE["accounts"][1] | {"balance": 1.0}],
                                        "positions": [], "orders": []}, later)
        )
        saved = await store.load_state()
        only_1001 = await store.load_state(account_ids=[1001])
    assert [a["balance"] for a in saved.accounts] == [50210.5, 1.0]
    assert saved.positions == GATEWAY_STATE["positions"] and saved.orders == GATEWAY_STATE["orders"]
    assert saved.saved_at == later
    assert [a["id"] for a in only_1001.accounts] == [1001]


def test_state_snapshot_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="lacks positions, orders"):
        StateSnapshot.from_gateway({"accounts": []}, T0)


async def test_state_rows_without_an_account_id_are_rejected(db_url: str) -> None:
    async with open_store(db_url) as store:
        with pytest.raises(StoreError, match="a position has no integer 'accountId'"):
            await store.save_state(StateSnapshot([], [{"id": 1}], [], T0))


async def test_naive_datetimes_are_refused(sqlite_url: str) -> None:
    async with open_store(sqlite_url) as store:
        with pytest.raises(StoreError, match="naive datetime"):
            await store.record_intent(intent(1, at=T0.replace(tzinfo=None)))
