"""Health of one hub, as a snapshot a dashboard (or ``engine state``) can render: ``HubHealth``.

Why a snapshot: the manager's counters change on every frame; a frozen copy taken at one Trio-clock instant is
consistent (the age of the last message and the state belong together) and safe to hand to another task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from machines.connection import ConnectionState


@dataclass(frozen=True, slots=True)
class HubHealth:
    hub: str
    state: ConnectionState
    generation: int
    """Socket generation: grows by one per connect attempt."""
    attempt: int
    """The (re)connect attempt in progress (0 while connected)."""
    reconnects: int
    connected_for_s: float | None
    """Seconds since the current socket connected (None when not connected)."""
    last_message_age_s: float | None
    """Seconds since anything (event, completion, ping) was received on the current socket."""
    last_event_age_s: float | None
    """Seconds since the last hub event (for the market hub: the feed)."""
    latency_s: float | None
    """Round trip of the last answered heartbeat."""
    heartbeats_sent: int
    heartbeats_missed: int
    stale_reconnects: int
    events_received: int
    subscriptions: int
    """Subscriptions the manager holds (replayed after every reconnect)."""
    reconcile_runs: int
    reconcile_failures: int
    last_disconnect: str | None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (for a dashboard or ``engine state``)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["state"] = self.state.value
        return out
