"""tune_gc_for_event_path raises the young-generation threshold, never lowers it, and refuses nonsense."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from engine.realtime import tune_gc_for_event_path


@pytest.fixture(autouse=True)
def restore_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_raises_the_young_threshold_and_keeps_the_others() -> None:
    gc.set_threshold(700, 10, 10)
    assert tune_gc_for_event_path(10_000) == (10_000, 10, 10) == gc.get_threshold()


def test_never_lowers_a_higher_threshold() -> None:
    gc.set_threshold(50_000, 20, 5)
    assert tune_gc_for_event_path(10_000) == (50_000, 20, 5)


def test_refuses_a_threshold_below_one() -> None:
    with pytest.raises(ValueError, match="threshold0"):
        tune_gc_for_event_path(0)
