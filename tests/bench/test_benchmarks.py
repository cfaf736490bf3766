"""Each benchmark runs end to end with tiny parameters and reports sane figures. No timing is asserted: the figures
are measured and printed by ``python -m engine bench``, never checked against a clock in a test."""

from __future__ import annotations

import json

import pytest

from engine.bench import events, memory, reconnect


def _serialisable(result: dict[str, object]) -> None:
    json.dumps(result)
    assert isinstance(result["passed"], bool)
    assert isinstance(result["notes"], list) and all(isinstance(n, str) for n in result["notes"])


def test_memory_reads_rss_at_each_checkpoint() -> None:
    result = memory.run(total=4000, baseline=1000)
    _serialisable(result)
    assert result["events"] == 4000
    assert result["rss_mb_at_1000"] > 0 and result["rss_mb_at_4000"] > 0
    assert result["growth_mb"] == pytest.approx(result["rss_mb_at_4000"] - result["rss_mb_at_1000"], abs=0.11)
    assert result["malformed"] == 0
    assert result["trades_seen"] == result["trades_kept"] > 0  # far below the cap in so short a run
    assert result["terminal_orders_seen"] > 0


def test_memory_refuses_a_baseline_past_the_end() -> None:
    with pytest.raises(ValueError, match="baseline"):
        memory.run(total=1000, baseline=1000)


@pytest.mark.system
def test_events_runs_engine_floor_and_transport_on_one_stream() -> None:
    result = events.run(count=3000, rounds=2)
    _serialisable(result)
    assert len(result["engine_vs_floor_per_round"]) == 2
    assert result["engine_vs_floor"] in result["engine_vs_floor_per_round"]
    for key in ("engine_events_per_s", "floor_events_per_s", "transport_events_per_s"):
        assert result[key] > 0
    assert result["engine_vs_floor"] == pytest.approx(result["engine_events_per_s"] / result["floor_events_per_s"],
                                                      rel=0.01)
    assert result["mirror_malformed"] == 0
    assert result["mirror_working_orders"] > 0
    assert result["engine_codec_us_per_event"] > 0 and result["engine_mirror_us_per_event"] > 0


@pytest.mark.system
def test_reconnect_measures_a_drop_and_reconciles_every_order() -> None:
    result = reconnect.run(drops=1, accounts=2, orders=5)
    _serialisable(result)
    assert result["drops"] == 1
    assert result["working_orders_mirrored"] == result["working_orders_expected"] == 10
    assert result["requests_per_reconcile"] > 0
    # ordering of the instants, not their size: resubscribed after the connect, reconciled after that
    assert result["return_to_reconciled_ms_max"] >= result["return_to_resubscribed_ms_max"] > 0
    assert result["scheduled_wait_ms_p50"] >= 1000  # resubscribeDelay is part of the schedule
