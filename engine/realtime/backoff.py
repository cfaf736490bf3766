"""Reconnect delays (``signalr.reconnection``): a fixed schedule, then ``maxDelayMs`` with jitter.

Why its own module: the delay before attempt *n* is pure arithmetic that the tests check to the millisecond in
virtual time. Attempt 1 waits ``delays[0]`` (0 ms: the first retry is immediate, as in the official client), attempt
*n* waits ``delays[n-1]``; past the end of the list every attempt waits ``maxDelayMs`` scaled by a random factor in
``[1 - jitter, 1]``, so a fleet of clients that lost the gateway together does not come back in lockstep, and the
configured maximum is never exceeded. Listed delays are capped at ``maxDelayMs`` too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReconnectBackoff:
    delays_s: Sequence[float] = (0.0, 2.0, 10.0, 30.0, 60.0)
    max_delay_s: float = 60.0
    jitter: float = 0.2
    """Fraction of ``max_delay_s`` that may be taken off (0 = no jitter)."""
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if any(d < 0 for d in self.delays_s):
            raise ValueError(f"reconnection delays must be >= 0, got {list(self.delays_s)}")
        if self.max_delay_s <= 0:
            raise ValueError(f"max_delay_s must be > 0, got {self.max_delay_s}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be within [0, 1), got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        if attempt <= len(self.delays_s):
            return min(float(self.delays_s[attempt - 1]), self.max_delay_s)
        return self.max_delay_s * (1.0 - self.jitter * self.rng.random())
