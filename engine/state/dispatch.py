"""The event dispatcher's mirror stage: hub events from the connection managers' sink channel into the mirror.

Why a separate, tiny stage: the hub managers deliver user-hub events in order and never drop them (their sink
applies back-pressure) and coalesce quotes; this task only routes each event by hub to the mirror, in the order it
was received, so the order guarantee survives end to end. The mirror never raises on bad input, so one malformed
event can never stop the loop. The types stay structural (``hub``, ``target``, ``arguments``) so this module does not
depend on the realtime package.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, Protocol

import trio

from engine.state.changes import Change, WatchedContractsChanged
from engine.state.mirror import StateMirror


class Event(Protocol):
    @property
    def hub(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def arguments(self) -> Sequence[Any]: ...


DRAIN_BURST = 512
"""Events applied back to back from a full channel before the feeder yields once (so other tasks keep running)."""


async def feed_mirror(mirror: StateMirror, events: AsyncIterable[Event]) -> None:
    """Apply every event of ``events`` (e.g. the receive side of the hub managers' sink) to ``mirror`` until the
    channel closes. ``hub == "user"`` goes to :meth:`StateMirror.on_user_event`, anything else to
    :meth:`StateMirror.on_market_event`.

    From a Trio memory channel, the events already queued are drained without yielding (``receive_nowait``, one
    yield per :data:`DRAIN_BURST`) and the feeder only waits when the channel is empty: a ``receive`` per event
    would cost a pass of the scheduler per event. The order is the channel's either way."""
    on_user, on_market = mirror.on_user_event, mirror.on_market_event
    if not isinstance(events, trio.MemoryReceiveChannel):
        async for event in events:
            if event.hub == "user":
                on_user(event.target, event.arguments)
            else:
                on_market(event.target, event.arguments)
        return
    receive_nowait, receive = events.receive_nowait, events.receive
    burst = 0
    while True:
        try:
            event = receive_nowait()
        except trio.WouldBlock:
            burst = 0
            try:
                event = await receive()
            except trio.EndOfChannel:
                return
        except trio.EndOfChannel:
            return
        if event.hub == "user":
            on_user(event.target, event.arguments)
        else:
            on_market(event.target, event.arguments)
        burst += 1
        if burst >= DRAIN_BURST:
            burst = 0
            await trio.lowlevel.checkpoint()


def follow_watched_contracts(mirror: StateMirror, apply: Callable[[set[str]], None]) -> Callable[[], None]:
    """Call ``apply(contracts)`` now and whenever the set of held or worked contracts changes (for the market hub:
    ``follow_watched_contracts(mirror, market_manager.set_market_contracts)``). Returns the unsubscribe function."""

    def on_change(change: Change) -> None:
        if isinstance(change, WatchedContractsChanged):
            apply(set(change.contracts))

    apply(set(mirror.watched_contracts()))
    return mirror.subscribe(on_change)
