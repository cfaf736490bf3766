"""``run --simulate``'s final comparison waits for the mirror to catch up with the simulator, not for a fixed pause.

Two real mirrors in virtual time: the engine's, and one standing for the simulator's truth. ``caught_up`` returns as
soon as an event brings the engine's mirror level with the truth, however late it comes within the bound, and gives up
(False) at the bound when the mirror never gets there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing

from engine.cli._simrun import caught_up
from engine.state.mirror import StateMirror
from tests.state.test_mirror import order, wrap

ACCOUNT = 1001


@dataclass
class MirroringEngine:
    """What ``caught_up`` reads of the Engine: its mirror, the mirror's snapshot and the watched accounts."""

    mirror: StateMirror = field(default_factory=StateMirror)
    account_ids: tuple[int, ...] = (ACCOUNT,)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return self.mirror.snapshot()


def _truth_with_working_order() -> StateMirror:
    truth = StateMirror()
    truth.on_user_event("GatewayUserOrder", (wrap(order(1, account=ACCOUNT)),))
    return truth


async def test_returns_when_the_late_event_arrives(autojump_clock: trio.testing.MockClock) -> None:
    engine, truth = MirroringEngine(), _truth_with_working_order()

    async def late_event() -> None:
        await trio.sleep(2.5)  # longer than the 0.5 s pause this replaced
        engine.mirror.on_user_event("GatewayUserOrder", (wrap(order(1, account=ACCOUNT)),))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(late_event)
        started = trio.current_time()
        assert await caught_up(engine, truth.snapshot, timeout_s=5.0)
        assert trio.current_time() - started == 2.5


async def test_returns_at_once_when_already_level(autojump_clock: trio.testing.MockClock) -> None:
    engine, truth = MirroringEngine(), _truth_with_working_order()
    engine.mirror.on_user_event("GatewayUserOrder", (wrap(order(1, account=ACCOUNT)),))
    started = trio.current_time()
    assert await caught_up(engine, truth.snapshot, timeout_s=5.0)
    assert trio.current_time() == started


async def test_gives_up_at_the_bound_when_the_mirror_never_catches_up(
        autojump_clock: trio.testing.MockClock) -> None:
    engine, truth = MirroringEngine(), _truth_with_working_order()

    async def other_change() -> None:
        await trio.sleep(1)  # the mirror changes, yet is not level: caught_up looks again and waits on
        engine.mirror.on_user_event("GatewayUserOrder", (wrap(order(2, account=ACCOUNT)),))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_change)
        started = trio.current_time()
        assert not await caught_up(engine, truth.snapshot, timeout_s=5.0)
        assert trio.current_time() - started == 5.0
    assert engine.mirror._listeners == []  # it unsubscribed
