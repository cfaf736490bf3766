"""The garbage-collector setting of a process that runs the hub event path (the engine, and its benchmarks).

Why: every websocket frame from a hub carries up to a few hundred events, and the reader decodes the whole frame
before the mirror applies any of it, so a frame's short-lived container objects (JSON dicts, invocations, hub
events) are all alive at once. CPython's default young-generation threshold (700 net container allocations) then
runs several young collections per frame while those objects are still alive: they get promoted, fill the older
generations and drive full collections that also scan the ~100,000 objects every import leaves behind. Measured on
the events benchmark's stream: ~7 us of collector time per event and full-collection pauses of 100-200 ms. With a
young threshold of 10,000 a frame's objects die before the first collection: ~1 us per event, no full collection
in 100,000 events, longest pause ~25 ms. Only what the mirror keeps survives (bounded, see ``engine.state.mirror``).

The setting is process-wide, so it is applied where the process is shaped (``Engine.run``) and by the benchmarks
that stand in for that process; it only ever raises the threshold (a caller that set a higher one keeps it).
"""

from __future__ import annotations

import gc
from typing import Final

EVENT_PATH_GEN0_THRESHOLD: Final = 10_000


def tune_gc_for_event_path(threshold0: int = EVENT_PATH_GEN0_THRESHOLD) -> tuple[int, int, int]:
    """Raise the young-generation threshold to ``threshold0`` (never lowers it); returns the thresholds now set."""
    if threshold0 < 1:
        raise ValueError(f"threshold0 must be >= 1, got {threshold0}")
    current, older, oldest = gc.get_threshold()
    if current < threshold0:
        gc.set_threshold(threshold0, older, oldest)
    return gc.get_threshold()
