"""Wall-clock instants tied to the Trio clock.

Durations and deadlines always use the Trio clock (``trio.current_time()``), so ``trio.testing.MockClock`` drives
every timer. Some things are wall-clock instants, though: a JWT's ``exp``, a trading session, the daily reset, the
timestamps on orders and trades. :class:`WallClock` maps the Trio clock onto a wall-clock epoch, so that under a
MockClock a test can run days of *wall* time in seconds, and the engine and an in-process simulator agree on "now".

Shared by the engine and the simulator, hence here in the pure protocol package; it reads the Trio clock only when
asked, and never sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import trio


class WallClock:
    """``now()`` = the epoch given at first use + the Trio time elapsed since then.

    ``epoch=None`` pins the epoch to the real wall clock at the first call to :meth:`now` (production). Tests pass a
    fixed epoch so runs are reproducible. One instance must be used from one ``trio.run`` only.
    """

    def __init__(self, epoch: datetime | None = None) -> None:
        if epoch is not None and epoch.tzinfo is None:
            raise ValueError("WallClock epoch must be timezone-aware")
        self._epoch = epoch
        self._trio_origin: float | None = None

    def now(self) -> datetime:
        current = trio.current_time()
        if self._trio_origin is None:
            self._trio_origin = current
            if self._epoch is None:
                self._epoch = datetime.now(UTC)
        assert self._epoch is not None
        return self._epoch + timedelta(seconds=current - self._trio_origin)

    def timestamp(self) -> float:
        """Seconds since the Unix epoch (for JWT ``exp``/``iat`` claims)."""
        return self.now().timestamp()

    def trio_time_at(self, instant: datetime) -> float:
        """The Trio clock reading at which ``instant`` will be (or was) ``now()``: for sleeping until a wall instant."""
        now = self.now()
        return trio.current_time() + (instant - now).total_seconds()
