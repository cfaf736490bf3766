"""Where the store's blocking database calls run: one at a time, off the Trio thread (or inline in tests).

Every call (reads, the writer's batches, retention) goes through one ``trio.CapacityLimiter(1)``, so there is one
database user at a time; that also keeps an in-memory SQLite database (a single shared connection) correct.

``threads=False`` runs the calls inline on the Trio thread instead. It exists for virtual-time tests: under
``MockClock(autojump_threshold=0)`` a task waiting on a worker thread counts as blocked, so the clock jumps to the
next timer while the database is still working and timers fire "early". Inline calls take no Trio time at all.
Use it only with a fast database (in-memory or a temp-file SQLite); production keeps ``threads=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")


class BlockingRunner:
    def __init__(self, *, threads: bool = True) -> None:
        self.threads = threads
        self._limiter = trio.CapacityLimiter(1)

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        if self.threads:
            return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)
        async with self._limiter:
            return fn(*args)
