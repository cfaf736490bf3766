"""The risk driver journals its "enforcing" entry once the first command is answered (off the close's path), or
after ``JOURNAL_DEFER_S`` when the command is held, and always before the "enforced" entry; the dashboard's in-memory
list has it at once. A real mirror, real rules, the real order manager against the in-process simulator."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from engine.app.enforcement import JOURNAL_DEFER_S, RiskEnforcer
from engine.state.mirror import StateMirror
from engine.store.records import EnforcementEntry
from tests.orders.harness import ACCOUNT, Harness, market, order_harness
from tests.risk.builders import rules


async def breach(h: Harness, **enforcer_kwargs: Any) -> tuple[RiskEnforcer, list[tuple[float, str]]]:
    """Two contracts held on the simulator and in the mirror, with ``maxContracts.total = 1``."""
    await h.manager.place(market(2))
    mirror = StateMirror()
    for account in await h.client.search_accounts():
        mirror.apply_account(account, "reconcile")
    for position in await h.client.search_open_positions(ACCOUNT):
        mirror.apply_position(position, "reconcile")
    journal: list[tuple[float, str]] = []

    def record(entry: Any) -> None:
        if isinstance(entry, EnforcementEntry):
            journal.append((trio.current_time(), entry.outcome))

    enforcer = RiskEnforcer(mirror, h.manager, rules(**{"maxContracts.enabled": True, "maxContracts.total": 1}),
                            clock=h.gateway.clock, journal=record, account_ids=[ACCOUNT], **enforcer_kwargs)
    return enforcer, journal


async def test_enforcing_is_journalled_after_the_first_answer_and_before_enforced(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        enforcer, journal = await breach(h)
        close = h.manager.close_position

        async def answered(*args: Any, **kwargs: Any) -> Any:
            result = await close(*args, **kwargs)
            journal.append((trio.current_time(), "close answered"))
            return result

        h.manager.close_position = answered  # type: ignore[method-assign]
        await h.nursery.start(enforcer.run)
        enforcer.evaluate_account(ACCOUNT)
        await trio.sleep(5)  # virtual time: far more than the close takes
        assert [outcome for _, outcome in journal] == ["close answered", "enforcing", "enforced: 1 accepted"]
        assert [e.outcome for e in enforcer.entries] == ["enforcing", "enforced: 1 accepted"]
        assert await h.client.search_open_positions(ACCOUNT) == []


async def test_a_held_command_does_not_hold_the_enforcing_entry_back(autojump_clock: MockClock) -> None:
    async with order_harness() as h:
        enforcer, journal = await breach(h)
        await h.nursery.start(enforcer.run)
        h.gateway.faults.arm("delay", params={"seconds": 2.0})
        start = trio.current_time()
        enforcer.evaluate_account(ACCOUNT)
        await trio.sleep(JOURNAL_DEFER_S + 0.01)
        assert [outcome for _, outcome in journal] == ["enforcing"]  # the close is still waiting for its answer
        assert abs(journal[0][0] - start - JOURNAL_DEFER_S) < 0.01
        await trio.sleep(3)
        assert [outcome for _, outcome in journal] == ["enforcing", "enforced: 1 accepted"]
        assert await h.client.search_open_positions(ACCOUNT) == []
