"""An AccountSnapshot built from the real state mirror, fed as the hubs feed it, evaluates like a hand-built one."""

from __future__ import annotations

from engine.protocol.enums import OrderStatus
from engine.risk import AccountSnapshot, RiskState, Rule, evaluate
from engine.state.mirror import StateMirror

from .builders import ACCOUNT, ES, MNQ, SPECS, T0, order, position, rules, trade


def test_snapshot_from_mirror_and_a_loss_breach() -> None:
    mirror = StateMirror()
    mirror.on_user_event("GatewayUserPosition", [{"action": 1, "data": position(MNQ, 2, True, 20_000.0).wire()}])
    mirror.on_user_event("GatewayUserPosition", [position(ES, 1, True, 6_000.0, account_id=99).wire()])
    mirror.on_user_event("GatewayUserOrder", [{"action": 1, "data": order(5, MNQ, OrderStatus.SUSPENDED).wire()}])
    mirror.on_user_event("GatewayUserTrade", [{"action": 0, "data": trade(1, 4, pnl=-300.0, fees=0.5).wire()}])
    mirror.on_market_event("GatewayQuote", [MNQ, {"lastPrice": 19_800.0}])

    snapshot = AccountSnapshot.from_mirror(mirror, ACCOUNT, now=T0, contracts=SPECS)
    assert [p.contract_id for p in snapshot.positions] == [MNQ]  # the other account's position is not here
    assert [o.id for o in snapshot.working_orders] == [5]
    assert [t.id for t in snapshot.trades] == [1]
    assert snapshot.quotes[MNQ].last_price == 19_800.0

    result = evaluate(snapshot, RiskState(), rules(**{"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500}))
    [breach] = result.breaches
    assert breach.rule is Rule.DAILY_LOSS_LIMIT
    assert breach.measured["total"] == -300.5 - 800.0  # 800 ticks * $0.50 * 2 contracts, and the fee
    assert [a.describe() for a in breach.actions] == [f"cancel order 5 ({MNQ}, suspended)", f"close {MNQ} (long 2)"]
