"""Retry policy (pure arithmetic) and retry_read (virtual time)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from engine.gateway.retry import (
    FINAL,
    Jitter,
    RetriesExhausted,
    RetryDecision,
    RetryPolicy,
    TransientKind,
    parse_retry_after,
    retry_read,
)
from settings import EngineSettings, load_settings


def classify(outcome: BaseException | httpx.Response) -> RetryDecision:
    """A small stand-in for the colleague's Gateway error mapping (status and transport errors only)."""
    if isinstance(outcome, httpx.TimeoutException):
        return RetryDecision(TransientKind.TIMEOUT)
    if isinstance(outcome, httpx.TransportError):
        return RetryDecision(TransientKind.NETWORK)
    if isinstance(outcome, BaseException):
        return FINAL
    if outcome.status_code >= 400:
        return RetryDecision(outcome.status_code, parse_retry_after(outcome.headers.get("Retry-After")))
    return FINAL


class Script:
    """An async read whose successive outcomes are given up front; records the Trio time of each attempt."""

    def __init__(self, *outcomes: BaseException | int | tuple[int, dict[str, str]]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[float] = []

    async def __call__(self) -> httpx.Response:
        self.calls.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        status, headers = outcome if isinstance(outcome, tuple) else (outcome, {})
        return httpx.Response(status, headers=headers)


def test_backoff_doubles_from_one_second_and_caps_at_sixty() -> None:
    policy = RetryPolicy(jitter=Jitter.NONE)
    assert [policy.backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.backoff(10_000) == 60
    assert list(policy.delays()) == [1, 2, 4, 8]  # 5 attempts -> 4 sleeps
    with pytest.raises(ValueError, match="start at 1"):
        policy.backoff(0)


@given(attempt=st.integers(min_value=1, max_value=60), seed=st.integers(min_value=0, max_value=2**32))
def test_property_jitter_stays_inside_its_band(attempt: int, seed: int) -> None:
    full = RetryPolicy(jitter=Jitter.FULL)
    equal = RetryPolicy(jitter=Jitter.EQUAL)
    d = full.backoff(attempt)
    assert 0 <= full.delay(attempt, random.Random(seed)) <= d
    assert d / 2 <= equal.delay(attempt, random.Random(seed)) <= d


def test_jitter_is_reproducible_with_a_seeded_rng_and_varies_across_draws() -> None:
    policy = RetryPolicy(jitter=Jitter.FULL)
    first = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    assert first == [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    rng = random.Random(7)
    assert len({round(policy.delay(4, rng), 9) for _ in range(20)}) > 1


def test_retry_after_wins_over_the_computed_delay() -> None:
    policy = RetryPolicy(jitter=Jitter.NONE)
    assert policy.delay(1, retry_after_s=42.0) == 42.0
    assert policy.delay(6, retry_after_s=0.5) == 0.5
    assert policy.delay(1, retry_after_s=-3) == 0.0


def test_should_retry_listed_statuses_and_transients_until_the_last_attempt() -> None:
    policy = RetryPolicy()
    for status in (408, 429, 500, 502, 503, 504):
        assert policy.should_retry(status, 1)
        assert policy.should_retry(status, 4)
        assert not policy.should_retry(status, 5)
    for status in (400, 401, 403, 404, 409, 501):
        assert not policy.should_retry(status, 1)
    assert policy.should_retry(TransientKind.TIMEOUT, 1)
    assert policy.should_retry(TransientKind.NETWORK, 2)
    assert not policy.should_retry(FINAL, 1)
    capped = RetryPolicy(max_retry_after_s=120)
    assert capped.should_retry(RetryDecision(429, retry_after_s=120), 1)
    assert not capped.should_retry(RetryDecision(429, retry_after_s=3600), 1)


def test_bad_policy_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier"):
        RetryPolicy(multiplier=0.5)


def test_from_settings_converts_milliseconds() -> None:
    settings = load_settings(env={}, overrides={
        "errorHandling.retries.maxAttempts": 3,
        "errorHandling.retries.backoffBase": 250,
        "errorHandling.retries.backoffMultiplier": 3,
        "errorHandling.retries.maxBackoffMs": 5000,
        "errorHandling.retries.retryableErrors": [503],
    })
    policy = RetryPolicy.from_settings(settings, jitter=Jitter.NONE)
    assert (policy.max_attempts, policy.base_s, policy.multiplier, policy.max_delay_s) == (3, 0.25, 3.0, 5.0)
    assert policy.retryable_statuses == frozenset({503})
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [0.25, 0.75, 2.25, 5.0]
    seed = RetryPolicy.from_settings(EngineSettings(), jitter=Jitter.NONE)
    assert list(seed.delays()) == [1, 2, 4, 8]
    assert seed.retryable_statuses == frozenset({408, 429, 500, 502, 503, 504})


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad, now) is None


async def test_retry_read_backs_off_exponentially_in_virtual_time(autojump_clock: object) -> None:
    read = Script(503, httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 200)
    seen: list[tuple[int, float]] = []
    response = await retry_read(
        read, RetryPolicy(jitter=Jitter.NONE), classify=classify, on_retry=lambda n, d, _: seen.append((n, d))
    )
    assert response.status_code == 200
    t0 = read.calls[0]
    assert [round(t - t0, 9) for t in read.calls] == [0, 1, 3, 7]
    assert seen == [(1, 1.0), (2, 2.0), (3, 4.0)]


async def test_retry_read_honours_retry_after_from_a_429(autojump_clock: object) -> None:
    read = Script((429, {"Retry-After": "17"}), 200)
    await retry_read(read, RetryPolicy(jitter=Jitter.NONE), classify=classify)
    assert read.calls[1] - read.calls[0] == pytest.approx(17)


async def test_retry_read_gives_up_after_max_attempts(autojump_clock: object) -> None:
    read = Script(*([502] * 5))
    response = await retry_read(read, RetryPolicy(jitter=Jitter.NONE), classify=classify)
    assert response.status_code == 502
    assert len(read.calls) == 5
    with pytest.raises(RetriesExhausted, match="after 2 attempt"):
        await retry_read(Script(500, 500), RetryPolicy(max_attempts=2), classify=classify,
                         raise_on_exhausted_response=True)
    raising = Script(*[httpx.ConnectError("down")] * 3)
    with pytest.raises(httpx.ConnectError):
        await retry_read(raising, RetryPolicy(max_attempts=3), classify=classify)
    assert len(raising.calls) == 3


async def test_retry_read_does_not_retry_a_final_outcome(autojump_clock: object) -> None:
    read = Script(404, 200)
    assert (await retry_read(read, RetryPolicy(), classify=classify)).status_code == 404
    assert len(read.calls) == 1
    boom = Script(KeyError("bug"), 200)
    with pytest.raises(KeyError):
        await retry_read(boom, RetryPolicy(), classify=classify)
    assert len(boom.calls) == 1


async def test_retry_read_jitter_uses_the_injected_rng(autojump_clock: object) -> None:
    policy = RetryPolicy(jitter=Jitter.FULL)
    read = Script(500, 500, 200)
    await retry_read(read, policy, classify=classify, rng=random.Random(3))
    expected = random.Random(3)
    sleeps = [policy.delay(1, expected), policy.delay(2, expected)]
    assert [round(b - a, 9) for a, b in itertools.pairwise(read.calls)] == [round(s, 9) for s in sleeps]


async def test_retry_read_sleep_is_cancellable(autojump_clock: object) -> None:
    read = Script(*[503] * 5)
    with trio.move_on_after(2.5) as scope:
        await retry_read(read, RetryPolicy(jitter=Jitter.NONE), classify=classify)
    assert scope.cancelled_caught
    assert len(read.calls) == 2  # t=0 and t=1; the sleep until t=3 was cancelled
