"""Retention windows (``database.retention``, in days) and the periodic Trio task that applies them.

Which tables follow which window:
- ``dailyUnrealizedPnl`` (7): the P&L snapshots;
- ``enforcementLogs`` (30): the enforcement log, and also the other operational journals (reconciliation findings,
  connection / breaker / token events), which the seed config has no window of their own for;
- ``orderHistory`` (90): order intents, their transitions and fills. An intent whose outcome is still unknown is
  kept whatever its age (the order manager must verify it first).

The interval is measured on the Trio clock (``trio.sleep``), "now" comes from the injectable
:class:`~engine.protocol.timebase.WallClock`, so a test runs months of retention under a MockClock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import trio

log = logging.getLogger("engine.store")

DEFAULT_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of record is kept; the defaults are the seed config's."""

    daily_unrealized_pnl: int = 7
    enforcement_logs: int = 30
    order_history: int = 90

    def __post_init__(self) -> None:
        for name in ("daily_unrealized_pnl", "enforcement_logs", "order_history"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"database.retention.{name} must be a whole number of days >= 1, got {value!r}")


class _Clock(Protocol):
    def now(self) -> datetime: ...


async def run_retention(
    apply: Callable[[datetime], Awaitable[object]],
    clock: _Clock,
    *,
    interval: float = DEFAULT_INTERVAL_SECONDS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply retention now and then every ``interval`` seconds of Trio time, forever (cancel to stop).

    ``apply`` is usually ``store.apply_retention``. A failed pass is logged and retried at the next interval.
    """
    if interval <= 0:
        raise ValueError(f"retention interval must be positive, got {interval!r}")
    task_status.started()
    while True:
        try:
            await apply(clock.now())
        except Exception as exc:  # a database hiccup must not take the engine down: try again next interval
            log.warning("store retention pass failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc, interval)
        await trio.sleep(interval)
