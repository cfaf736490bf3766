"""Events a hub received, and how they reach the engine: in order for the user hub, coalesced quotes for the market.

Why two deliveries: the account mirror and the risk rules must see every user-hub event (orders, positions, trades,
accounts) exactly once and in arrival order, so :class:`OrderedDelivery` hands each event to the sink and waits when
the sink is full (back-pressure, never a drop). Market quotes are different: a consumer that fell behind only needs
the newest quote per contract, so :class:`CoalescingDelivery` keeps one pending quote per contract and merges a newer
one into it (``GatewayQuote`` payloads may be *partial*: only the changed fields, so the fields are merged, newest
wins) while everything else (trades, depth) keeps its order.

The sink carries :data:`HubEvents` batches, not single events: the events of one websocket frame travel as one
channel item (the user hub), so the hand-off costs one ``send_nowait`` / ``receive_nowait`` per frame instead of one
per event (a hub pushes up to a few hundred events per frame). A consumer iterates each batch in order; the order of
the channel's items and of the events inside each one is the arrival order.

Every event carries the socket ``generation`` it arrived on: a consumer can tell events of an old socket from the
ones of its replacement.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final, NamedTuple, Protocol, TypeAlias

import trio

QUOTE_TARGET: Final = "GatewayQuote"
LOGOUT_TARGET: Final = "GatewayLogout"


class HubEvent(NamedTuple):
    """One server-to-client invocation, exactly as the codec read it (``arguments`` unchanged: the mirror unwraps them;
    dicts, or on the user hub one :class:`~engine.protocol.user_events.StreamPayload` holding the record, see
    :func:`user_hub`'s ``read_typed``).

    A named tuple: one is built per event on the hot path, where a frozen dataclass's construction costs several
    times as much (see :class:`engine.protocol.signalr.Invocation`)."""

    hub: str
    target: str
    arguments: tuple[Any, ...]
    generation: int
    received_at: float
    """Trio-clock time the frame was read."""

    @property
    def contract_id(self) -> str | None:
        """Market-hub events carry the contract id as their first argument."""
        if self.arguments and isinstance(self.arguments[0], str):
            return self.arguments[0]
        return None


HubEvents: TypeAlias = tuple[HubEvent, ...]
"""One item of a hub sink: the events of one websocket frame, in arrival order (never empty)."""


class Delivery(Protocol):
    async def deliver(self, event: HubEvent) -> None: ...

    async def deliver_many(self, events: HubEvents) -> None:
        """The events of one frame, in order (one call instead of one per event)."""

    async def run(self) -> None: ...


class OrderedDelivery:
    """Every event, in order, with back-pressure: a frame's events go to the sink as one :data:`HubEvents` item, and
    :meth:`deliver_many` waits while the sink is full (never a drop). The sink's capacity counts frames."""

    def __init__(self, sink: trio.MemorySendChannel[HubEvents]) -> None:
        self._sink = sink
        self.delivered = 0
        """Events handed to the sink (not batches)."""

    async def deliver(self, event: HubEvent) -> None:
        """Hand ``event`` to the sink as a one-event batch; waits only while the sink is full."""
        await self.deliver_many((event,))

    async def deliver_many(self, events: HubEvents) -> None:
        """Hand the events of one frame to the sink as ONE item; waits only while the sink is full.

        Hot path: when the sink has room this does not yield (``send_nowait``); a ``sink.send`` would cost two task
        switches and a pass of the scheduler. The hub's reader yields once per websocket frame when it waits for the
        next one, so the consumer wakes once per frame and drains what the frames carried. One item per frame
        rather than per event: the channel's bookkeeping is paid once per frame on both sides."""
        if not events:
            return
        try:
            self._sink.send_nowait(events)
        except trio.WouldBlock:
            await self._sink.send(events)
        self.delivered += len(events)

    async def run(self) -> None:
        """Nothing to pump (delivery is direct); exists so both deliveries run the same way."""
        await trio.sleep_forever()


class CoalescingDelivery:
    """Events of ``coalesce`` targets (quotes) coalesce per (target, contract); all others keep their order.

    A pump task (:meth:`run`) forwards the queue to the sink, one event per item (a one-event batch), so the queue,
    where newer quotes merge, holds everything the sink has no room for. A coalesced event keeps its place in the
    queue (the first unsent one's) and takes the newest payload, merged field by field into the pending one.
    Non-coalescing events wait in :meth:`deliver` when more than ``max_backlog`` are queued (back-pressure, never a
    drop).
    """

    def __init__(self, sink: trio.MemorySendChannel[HubEvents], coalesce: frozenset[str] = frozenset({QUOTE_TARGET}),
                 max_backlog: int = 10_000) -> None:
        if max_backlog < 1:
            raise ValueError(f"max_backlog must be >= 1, got {max_backlog}")
        self._sink = sink
        self._coalesce = coalesce
        self._max_backlog = max_backlog
        self._queue: OrderedDict[object, HubEvent] = OrderedDict()
        self._seq = 0
        self._ordered_backlog = 0
        self._wakeup = trio.Event()
        self._room = trio.Event()
        self.delivered = 0
        self.coalesced = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    async def deliver(self, event: HubEvent) -> None:
        if event.target in self._coalesce:
            key: object = ("c", event.target, event.contract_id)
            pending = self._queue.get(key)
            if pending is not None:
                self._queue[key] = _merge(pending, event)
                self.coalesced += 1
                await trio.lowlevel.checkpoint()
                return
        else:
            while self._ordered_backlog >= self._max_backlog:
                await self._room.wait()
            self._seq += 1
            key = ("o", self._seq)
            self._ordered_backlog += 1
        self._queue[key] = event
        self._wakeup.set()
        await trio.lowlevel.checkpoint()

    async def deliver_many(self, events: HubEvents) -> None:
        for event in events:
            await self.deliver(event)

    async def run(self) -> None:
        while True:
            while not self._queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            key, event = self._queue.popitem(last=False)
            if isinstance(key, tuple) and key[0] == "o":
                self._ordered_backlog -= 1
                self._room.set()
                self._room = trio.Event()
            await self._sink.send((event,))
            self.delivered += 1


def _merge(older: HubEvent, newer: HubEvent) -> HubEvent:
    if len(older.arguments) == 2 and len(newer.arguments) == 2:
        old_payload, new_payload = older.arguments[1], newer.arguments[1]
        if isinstance(old_payload, dict) and isinstance(new_payload, dict):
            return newer._replace(arguments=(newer.arguments[0], {**old_payload, **new_payload}))
    return newer
