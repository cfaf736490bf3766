"""The simulator's event bus: the one contract between the trading model and the hubs.

The trading model (REST side) publishes every change as a :class:`HubEvent` shaped exactly as it goes on the wire;
each hub connection subscribes and filters by what that connection has subscribed to (SubscribeOrders(accountId),
SubscribeContractQuotes(contractId), ...). Publishing never blocks the model: every subscriber has a bounded buffer,
and a subscriber that falls behind is cut off (its hub connection then closes, as a real server drops a slow
consumer), so a client must reconcile, never silently miss events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import trio

Hub = Literal["user", "market"]


@dataclass(frozen=True, slots=True)
class HubEvent:
    hub: Hub
    target: str
    """SignalR target, e.g. ``GatewayUserOrder`` or ``GatewayQuote``."""
    arguments: tuple[Any, ...]
    """The Invocation's ``arguments`` exactly as sent: ``({"action": 1, "data": {...}},)`` on the user hub,
    ``(contract_id, payload)`` on the market hub."""
    account_id: int | None = None
    """User-hub events: the account they concern (None for SubscribeAccounts-wide events is not used: account
    events carry their account's id too)."""
    contract_id: str | None = None
    """Market-hub events: the contract they concern."""


class SubscriberOverflow(Exception):
    """Raised from a subscriber's receive when it fell behind and was cut off."""


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, _Subscriber] = {}
        self._next_id = 0

    def publish(self, event: HubEvent) -> None:
        """Deliver ``event`` to every subscriber of its hub, never blocking."""
        for subscriber in list(self._subscribers.values()):
            if subscriber.hub == event.hub:
                subscriber.offer(event)

    @contextmanager
    def subscribe(self, hub: Hub, max_buffer: int = 10_000) -> Iterator[_Subscriber]:
        subscriber = _Subscriber(hub, max_buffer)
        key = self._next_id
        self._next_id += 1
        self._subscribers[key] = subscriber
        try:
            yield subscriber
        finally:
            del self._subscribers[key]
            subscriber.close()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


class _Subscriber:
    def __init__(self, hub: Hub, max_buffer: int) -> None:
        self.hub = hub
        self._send, self._receive = trio.open_memory_channel[HubEvent](max_buffer)
        self.overflowed = False

    def offer(self, event: HubEvent) -> None:
        if self.overflowed:
            return
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.overflowed = True
            self._send.close()
        except trio.ClosedResourceError:
            pass

    async def receive(self) -> HubEvent:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise SubscriberOverflow("subscriber fell behind and was cut off") from None

    def receive_nowait(self) -> HubEvent:
        """The next buffered event without waiting: ``trio.WouldBlock`` when none is buffered (lets a hub batch
        every queued event into one frame)."""
        try:
            return self._receive.receive_nowait()
        except trio.EndOfChannel:
            raise SubscriberOverflow("subscriber fell behind and was cut off") from None

    def close(self) -> None:
        self._send.close()
        self._receive.close()
