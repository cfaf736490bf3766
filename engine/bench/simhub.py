"""The simulator's user-hub event rate to one client over loopback (target: at least 5,000 events/s).

The simulator must never be what limits the engine's own benchmarks, so its hub rate is measured beside them.
The measurement itself lives with the simulator (:mod:`simulator.bench`); this module only lists it here.
"""

from __future__ import annotations

from typing import Any

TARGET_EVENTS_PER_S = 5_000


def run() -> dict[str, Any]:
    from simulator import bench  # the benchmark drives the simulator; the engine proper never imports it

    figures = bench.run()
    rate = float(figures.get("events_per_s", 0.0))
    figures.setdefault("passed", rate >= TARGET_EVENTS_PER_S)
    figures.setdefault("target_events_per_s", TARGET_EVENTS_PER_S)
    return figures
