"""The shared event mix is deterministic, realistic and readable by the mirror; the helpers compute what they say."""

from __future__ import annotations

import pytest

from engine.bench import _support as s
from engine.bench import available
from engine.protocol.signalr import Invocation, StreamReader
from engine.state import StateMirror


def test_mix_is_deterministic_and_covers_every_event_kind() -> None:
    first = list(s.user_event_mix(3000, seed=3, quote_every=10))
    again = list(s.user_event_mix(3000, seed=3, quote_every=10))
    assert first == again
    counts = s.mix_counts(first)
    assert sum(counts.values()) == 3000
    assert set(counts) == {s.ORDER, s.TRADE, s.POSITION, s.ACCOUNT, s.QUOTE}
    trade_ids = [e.arguments[0]["data"]["id"] for e in first if e.target == s.TRADE]
    assert len(trade_ids) == len(set(trade_ids))  # unique trade ids: the dedup memory is exercised, not bypassed


def test_mirror_reads_every_event_of_the_mix_through_the_codec() -> None:
    mix = list(s.user_event_mix(4000, working=10))
    reader = StreamReader("client")
    reader.feed("{}\x1e")
    mirror = StateMirror(watch_accounts=s.ACCOUNTS)
    decoded = [m for text in s.frames(mix, 64) for m in reader.feed(text)]
    assert len(decoded) == len(mix)
    for message in decoded:
        assert isinstance(message, Invocation)
        mirror.on_user_event(message.target, message.arguments)
    counters = mirror.counters
    assert counters.malformed == 0 and counters.stale_orders == 0 and counters.duplicate_trades == 0
    assert sum(counters.applied.values()) == len(mix)
    assert 0 < len(mirror.working_orders()) <= 4 * 10 * 2
    terminal = sum(1 for e in mix if e.target == s.ORDER and e.arguments[0]["data"]["status"] in (2, 3))
    assert terminal > 0


def test_percentile_and_rss() -> None:
    assert s.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert s.percentile([1.0, 2.0], 1.0) == 2.0
    assert s.percentile([1.0, 3.0], 0.5) == 2.0
    with pytest.raises(ValueError, match="no values"):
        s.percentile([], 0.5)
    assert s.rss_mb() > 1.0
    assert s.machine()["cpus"] >= 1


def test_bad_mix_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="working"):
        list(s.user_event_mix(10, working=0))
    with pytest.raises(ValueError, match="per_frame"):
        list(s.frames([], 0))


def test_the_three_benchmarks_are_listed() -> None:
    assert {"events", "reconnect", "memory"} <= set(available())
