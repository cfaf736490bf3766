"""Machine transitions into the store's journal: one :class:`~engine.store.records.ComponentEvent` per state change.

Why a listener and not logging alone: after an incident the question is "what was the connection / breaker / token
doing at 14:02?", and the answer must survive the process. Every lifecycle (hub connection, REST breaker, token)
emits :class:`machines.observe.Transition` values synchronously; this listener stamps them with the wall clock and
queues them on the store's fire-and-forget journal (never blocking the machine's driver). Self-transitions (a counted
failure that does not change the state) are not journalled: they are counters, not history.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.protocol.timebase import WallClock
from engine.store.records import ComponentEvent, Record
from machines.observe import Transition, TransitionListener

Journal = Callable[[Record], object]


def transition_journal(journal: Journal, clock: WallClock, component: str | None = None) -> TransitionListener:
    """A listener that journals every real state change; ``component`` overrides the machine name."""

    def listener(transition: Transition) -> None:
        if transition.source == transition.target:
            return
        journal(ComponentEvent(
            component=component or transition.machine,
            from_state=str(transition.source),
            to_state=str(transition.target),
            cause=transition.cause or transition.event,
            at=clock.now(),
        ))

    return listener
