"""``python -m engine run --simulate --chaos`` end to end, compressed: the ``chaos-quick`` profile arms every fault
kind within ~30 s (the demo's ``chaos`` does the same within ~100 s), the engine is configured with short health
and breaker timings to match, and the summary must show every kind injected, no duplicate order, no 429 provoked by
the engine, and the final mirrored state equal to the simulator's. A real process over loopback, ~45 s."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from simulator.faults import ALL_KINDS, LOSE_RESPONSE, PROFILES
from tests.system.procs import Proc

pytestmark = pytest.mark.system

DURATION_S = 34
FAST_ENGINE = [
    "signalr.health.pingInterval=2000", "signalr.health.pingTimeout=1500", "signalr.health.staleThreshold=6000",
    "errorHandling.circuitBreaker.timeout=3000", "signalr.reconnection.delays=[0,500,1000,2000]",
]


def early_lose_response_seed(by_s: float = 15.0) -> int:
    """A seed whose first round arms ``lose_response`` (taken only by a mutation) early enough for the trader to
    send one before the run ends; the rest of the schedule does not depend on traffic that much."""
    for seed in range(100):
        rng = random.Random(f"profile:chaos-quick:{seed}")
        at = 0.0
        for delay, kind, _ in PROFILES["chaos-quick"](rng):
            at += delay
            if kind == LOSE_RESPONSE:
                break
        if at <= by_s:
            return seed
    raise AssertionError("no seed arms lose_response early")


def test_chaos_run_rides_through_every_fault_kind(tmp_path: Path) -> None:
    seed = early_lose_response_seed()
    args = ["run", "--simulate", "--chaos", "--faults", "chaos-quick", "--duration", str(DURATION_S),
            "--no-dashboard", "--seed", str(seed)]
    for override in FAST_ENGINE:
        args += ["--set", override]
    proc = Proc(*args)
    try:
        stderr = proc.finish(DURATION_S + 45)
    finally:
        proc.stop()
    text = "\n".join(proc.lines)
    assert proc.popen.returncode == 0, (text[-5000:], stderr[-3000:])
    by_kind = next(line for line in proc.lines if line.startswith("  Faults injected by kind: "))
    counts = {kind: int(n) for kind, n in re.findall(r"(\w+) (\d+)", by_kind.split(": ", 1)[1])}
    assert set(counts) == ALL_KINDS
    missing = sorted(kind for kind, n in counts.items() if n == 0)
    assert missing == [], (missing, text[-5000:])
    assert "  Duplicate orders: 0" in proc.lines
    assert "  429s received: 0" in proc.lines
    assert "  Final mirrored state equals the simulator's: yes" in proc.lines
    assert int(re.search(r"  Reconnects: (\d+)", text).group(1)) >= 2  # type: ignore[union-attr]
