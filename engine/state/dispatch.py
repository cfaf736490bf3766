"""The event dispatcher's mirror stage: hub events from the connection managers' sink channel into the mirror.

Why a separate, tiny stage: the hub managers deliver user-hub events in order and never drop them (their sink
applies back-pressure) and coalesce quotes; this task only routes each event by hub to the mirror, in the order it
was received, so the order guarantee survives end to end. The sink's items are batches (the events of one websocket
frame, see :data:`engine.realtime.events.HubEvents`): one channel hand-off per frame instead of one per event. The
mirror never raises on bad input, so one malformed event can never stop the loop. The types stay structural (a
batch is any sequence of objects with ``hub``, ``target``, ``arguments``) so this module does not depend on the
realtime package.
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
"""Events applied back to back from a full channel before the feeder yields once (so other tasks keep running); the
yield comes between two batches, so one frame's events are always applied together."""


async def feed_mirror(mirror: StateMirror, batches: AsyncIterable[Sequence[Event]]) -> None:
    """Apply every event of ``batches`` (e.g. the receive side of the hub managers' sink, whose items are the events
    of one frame each) to ``mirror``, batch after batch and each batch in order, until the channel closes.
    ``hub == "user"`` goes to :meth:`StateMirror.on_user_event`, anything else to :meth:`StateMirror.on_market_event`.

    From a Trio memory channel, the batches already queued are drained without yielding (``receive_nowait``, one
    yield once :data:`DRAIN_BURST` events were applied, between two batches) and the feeder only waits when the
    channel is empty: a ``receive`` per batch would cost a pass of the scheduler per frame. The order is the
    channel's either way."""
    on_user, on_market = mirror.on_user_event, mirror.on_market_event
    if not isinstance(batches, trio.MemoryReceiveChannel):
        async for batch in batches:
            for event in batch:
                if event.hub == "user":
                    on_user(event.target, event.arguments)
                else:
                    on_market(event.target, event.arguments)
        return
    receive_nowait, receive = batches.receive_nowait, batches.receive
    burst = 0
    while True:
        try:
            batch = receive_nowait()
        except trio.WouldBlock:
            burst = 0
            try:
                batch = await receive()
            except trio.EndOfChannel:
                return
        except trio.EndOfChannel:
            return
        for event in batch:
            if event.hub == "user":
                on_user(event.target, event.arguments)
            else:
                on_market(event.target, event.arguments)
        burst += len(batch)
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
