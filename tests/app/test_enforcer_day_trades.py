"""The driver reads the trading day's trades from the mirror only when they changed: quotes on an account that
remembers thousands of older trades are evaluated from its cached day, and a trade the mirror replaced quietly
(voided: no change notification) still reaches the very next evaluation."""

from __future__ import annotations

from datetime import timedelta

import trio
from trio.testing import MockClock

from engine.app.enforcement import RiskEnforcer
from engine.protocol.models import TradingAccountModel
from engine.protocol.timebase import WallClock
from engine.state.mirror import StateMirror
from tests.risk.builders import ACCOUNT, MNQ, SPECS, T0, position, rules, trade

RULES = rules(**{"dailyLossLimit.enabled": True, "dailyLossLimit.limit": 500})


async def test_quotes_use_the_cached_day_and_a_quiet_void_reaches_the_next_evaluation(
        autojump_clock: MockClock) -> None:
    mirror = StateMirror()
    mirror.apply_account(TradingAccountModel(id=ACCOUNT, name="A", balance=50_000.0, can_trade=True,
                                             is_visible=True, simulated=True), "reconcile")
    mirror.apply_position(position(MNQ, 1, avg=20_000.0), "reconcile")
    for i in range(3_000):  # older days: remembered, not the day's
        mirror.apply_trade(trade(i + 1, i + 1, pnl=-50.0, at=T0 - timedelta(days=2, minutes=i)), "reconcile")
    mirror.apply_trade(trade(9_001, 9_001, pnl=-300.0, at=T0 - timedelta(minutes=5)), "stream")
    mirror.apply_trade(trade(9_002, 9_002, pnl=-150.0, at=T0 - timedelta(minutes=1)), "stream")
    enforcer = RiskEnforcer(mirror, None, RULES, clock=WallClock(T0), journal=lambda _: None,  # type: ignore[arg-type]
                            tick_s=10_000.0)
    enforcer.specs.update(SPECS)

    async def realized_after_quote() -> float:
        mirror.apply_quote(MNQ, {"lastPrice": 20_000.0})
        await trio.sleep(0.1)
        pnl = enforcer.last[ACCOUNT].pnl
        assert pnl is not None
        return pnl.realized

    async with trio.open_nursery() as nursery:
        await nursery.start(enforcer.run)
        await trio.sleep(0.1)
        assert await realized_after_quote() == -450.0
        reads = enforcer.day_trades.reads
        for _ in range(20):
            assert await realized_after_quote() == -450.0
        assert enforcer.day_trades.reads == reads and enforcer.day_trades.hits >= 20

        voided = trade(9_002, 9_002, pnl=-150.0, at=T0 - timedelta(minutes=1), voided=True)
        assert not mirror.apply_trade(voided, "stream")  # a known id: replaced, no notification
        assert await realized_after_quote() == -300.0
        assert enforcer.day_trades.reads == reads + 1
        nursery.cancel_scope.cancel()
