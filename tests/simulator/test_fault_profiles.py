"""The chaos profiles' schedules: every fault kind within one round (~96 s for ``chaos``, ~30 s for
``chaos-quick``), disruptive faults in the first half of each round, injection going on after the first round, and
the same seed replaying the same schedule."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from simulator.faults import ALL_KINDS, DISRUPTIVE, PROFILES, FaultRecord, kinds_injected


def schedule(profile: str, seed: int, until_s: float) -> list[tuple[float, str, dict[str, Any]]]:
    """(arming time, kind, arm kwargs) up to ``until_s``, drawn exactly as ``FaultInjector.run_profile`` draws."""
    rng = random.Random(f"profile:{profile}:{seed}")
    at, out = 0.0, list[tuple[float, str, dict[str, Any]]]()
    for delay, kind, kwargs in PROFILES[profile](rng):
        at += delay
        if at > until_s:
            return out
        out.append((at, kind, kwargs))
    return out


@pytest.mark.parametrize(("profile", "round_s"), [("chaos", 100.0), ("chaos-quick", 32.0)])
@pytest.mark.parametrize("seed", [0, 1, 7, 42])
def test_every_kind_within_one_round_and_injection_goes_on(profile: str, round_s: float, seed: int) -> None:
    steps = schedule(profile, seed, 3 * round_s)
    n = len(ALL_KINDS)
    first_round = [kind for _, kind, _ in steps[:n]]
    assert sorted(first_round) == sorted(ALL_KINDS)  # one of each per round
    assert steps[n - 1][0] <= round_s  # ... all armed within the round's time
    later = [kind for at, kind, _ in steps if at > round_s]
    assert set(later) == ALL_KINDS  # the next rounds again arm everything
    for n in range(3):  # disruptive faults sit in the first half of every round
        round_kinds = [kind for _, kind, _ in steps[n * len(ALL_KINDS):(n + 1) * len(ALL_KINDS)]]
        for kind in DISRUPTIVE:
            assert round_kinds.index(kind) < len(ALL_KINDS) // 2, (n, round_kinds)
    timed = {kind: kwargs["duration_s"] for _, kind, kwargs in steps if "duration_s" in kwargs}
    assert set(timed) == {"outage", "stop_pings"} and all(v <= 30.0 for v in timed.values())


def test_the_same_seed_replays_the_schedule_and_another_seed_reorders_it() -> None:
    assert schedule("chaos", 3, 300) == schedule("chaos", 3, 300)
    orders = {tuple(kind for _, kind, _ in schedule("chaos", seed, 100)) for seed in range(6)}
    assert len(orders) > 1


def test_random_chaos_keeps_the_sparse_draw() -> None:
    steps = schedule("random-chaos", 0, 3600)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(steps)]
    assert all(5.0 <= g <= 60.0 for g in gaps) and {k for _, k, _ in steps} <= ALL_KINDS


def test_kinds_injected_counts_every_kind() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    records = [FaultRecord(0.0, now, kind, {}) for kind in ("outage", "outage", "ws_drop")]
    counts = kinds_injected(records)
    assert set(counts) == ALL_KINDS
    assert counts["outage"] == 2 and counts["ws_drop"] == 1 and counts["http_429"] == 0
