"""A quote re-evaluates exactly the accounts holding its contract, as the mirror's positions come and go (held before
the driver started, opened, closed, or their account removed); the driver finds them without listing every
position of every account."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from engine.app.enforcement import RiskEnforcer
from engine.protocol.models import TradingAccountModel
from engine.protocol.timebase import WallClock
from engine.state.mirror import StateMirror
from tests.risk.builders import ES, MNQ, position, rules


def account(account_id: int) -> TradingAccountModel:
    return TradingAccountModel(id=account_id, name=f"A{account_id}", balance=50_000.0, can_trade=True,
                               is_visible=True, simulated=True)


async def evaluated_after_quote(mirror: StateMirror, enforcer: RiskEnforcer, contract: str) -> set[int]:
    await trio.sleep(0.1)  # whatever the last change marked is evaluated first
    enforcer.last.clear()
    mirror.apply_quote(contract, {"lastPrice": 20_000.0})
    await trio.sleep(0.1)
    return set(enforcer.last)


async def test_a_quote_re_evaluates_the_accounts_holding_its_contract(autojump_clock: MockClock) -> None:
    mirror = StateMirror()
    for account_id in (1, 2, 3):
        mirror.apply_account(account(account_id), "reconcile")
    mirror.apply_position(position(MNQ, 1, account_id=1), "reconcile")  # held before the driver listens
    enforcer = RiskEnforcer(mirror, None, rules(), clock=WallClock(), journal=lambda _: None,  # type: ignore[arg-type]
                            tick_s=10_000.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(enforcer.run)
        mirror.apply_position(position(ES, 2, account_id=2), "stream")
        mirror.apply_position(position(MNQ, 1, account_id=3), "stream")
        assert await evaluated_after_quote(mirror, enforcer, MNQ) == {1, 3}
        assert await evaluated_after_quote(mirror, enforcer, ES) == {2}

        mirror.apply_position(position(MNQ, 0, account_id=1), "stream")  # closed (the Gateway's size 0)
        assert await evaluated_after_quote(mirror, enforcer, MNQ) == {3}
        mirror.remove_account(3, "reconcile")
        assert await evaluated_after_quote(mirror, enforcer, MNQ) == set()
        mirror.apply_position(position(MNQ, 2, account_id=2), "stream")  # a second contract of account 2
        assert await evaluated_after_quote(mirror, enforcer, MNQ) == {2}
        assert await evaluated_after_quote(mirror, enforcer, ES) == {2}
        nursery.cancel_scope.cancel()
