"""The hub benchmark runs end to end (server, separate client process, closed-loop producer) and reports a rate.

The 5,000 events/s target is checked by ``python -m simulator.bench`` itself; here only a loose floor is asserted so
a busy CI machine cannot make the suite flaky.
"""

from __future__ import annotations

import pytest

from simulator.bench import measure

pytestmark = pytest.mark.system


async def test_bench_measures_a_sustained_rate() -> None:
    result = await measure(seconds=0.5, window=2000)
    assert result["events"] > 0
    assert result["events_per_s"] >= 500
    assert result["target_events_per_s"] == 5000
