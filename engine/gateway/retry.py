"""Retry policy for READ requests: exponential backoff with jitter, Retry-After honoured (seed errorHandling.retries).

Why reads only: a read (search, retrieveBars, account list) can be re-run without side effects, so a transient
failure (408/429/5xx, a timeout, a dropped connection) is worth retrying after a pause. A mutation (Order/place,
modify, cancel; Position/closeContract, partialCloseContract) is NEVER retried by this module: an error after the
request left may mean it was executed, so a blind resend can duplicate an order. Mutations get a single attempt and
an ambiguous outcome goes to order verification instead (see the outcome classification of the command path).

Two layers:
- :class:`RetryPolicy` is pure arithmetic: the delay before the next attempt (exponential, capped, jittered with an
  injectable ``random.Random``) and whether a failure is retryable at a given attempt number. No clock, no I/O.
- :func:`retry_read` runs an async callable under a policy, sleeping on the Trio clock between attempts. It does not
  decide what a failure is: a ``classify`` callable (built with the Gateway error mapping) turns each raised exception
  or returned response into a :class:`RetryDecision`.

Attempts are numbered from 1; ``max_attempts`` counts the first attempt (5 -> at most 4 retries).
"""

from __future__ import annotations

import enum
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import trio

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Jitter(enum.Enum):
    """How the computed backoff ``d`` is randomised (AWS "Exponential Backoff And Jitter")."""

    NONE = "none"  # exactly d
    FULL = "full"  # uniform in [0, d]: spreads a herd of clients best
    EQUAL = "equal"  # d/2 + uniform in [0, d/2]: never shorter than half the backoff


class TransientKind(enum.Enum):
    """Failures without an HTTP status that are worth retrying for a read."""

    TIMEOUT = "timeout"  # connect/read/write/pool timeout
    NETWORK = "network"  # connection refused/reset, DNS, TLS, protocol errors


Failure = int | TransientKind


@dataclass(frozen=True)
class RetryDecision:
    """What ``classify`` says about one attempt's outcome.

    ``failure`` is ``None`` for an outcome that is final (success, or a business rejection that another attempt will
    not change); else the HTTP status or :class:`TransientKind`. ``retry_after_s`` carries a server's Retry-After.
    """

    failure: Failure | None = None
    retry_after_s: float | None = None
    reason: str = ""

    @property
    def is_failure(self) -> bool:
        return self.failure is not None


FINAL = RetryDecision()


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``delay(n) = min(max_delay_s, base_s * multiplier ** (n - 1))``, then jitter.

    ``max_retry_after_s``: a Retry-After longer than this is not waited for (the read gives up instead); ``None``
    waits whatever the server asks.
    """

    max_attempts: int = 5
    base_s: float = 1.0
    multiplier: float = 2.0
    max_delay_s: float = 60.0
    retryable_statuses: frozenset[int] = DEFAULT_RETRYABLE_STATUSES
    retryable_kinds: frozenset[TransientKind] = frozenset(TransientKind)
    jitter: Jitter = Jitter.FULL
    max_retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"retry max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_s < 0 or self.max_delay_s < 0:
            raise ValueError(f"retry delays must be >= 0, got base {self.base_s} s, cap {self.max_delay_s} s")
        if self.multiplier < 1:
            raise ValueError(f"retry backoff multiplier must be >= 1, got {self.multiplier}")

    @classmethod
    def from_settings(cls, settings: EngineSettings, **overrides: Any) -> RetryPolicy:
        """From ``EngineSettings.error_handling.retries`` (milliseconds in the config, seconds here)."""
        r = settings.error_handling.retries
        params: dict[str, Any] = {
            "max_attempts": int(r.max_attempts),
            "base_s": r.backoff_base / 1000.0,
            "multiplier": float(r.backoff_multiplier),
            "max_delay_s": r.max_backoff_ms / 1000.0,
            "retryable_statuses": frozenset(int(s) for s in r.retryable_errors),
        }
        params.update(overrides)
        return cls(**params)

    def backoff(self, attempt: int) -> float:
        """The un-jittered delay after failed attempt ``attempt`` (1-based), capped at ``max_delay_s``."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        try:
            raw = self.base_s * self.multiplier ** (attempt - 1)
        except OverflowError:  # absurd attempt numbers: the cap was reached long before
            return self.max_delay_s
        return min(self.max_delay_s, raw)

    def delay(self, attempt: int, rng: random.Random | None = None, retry_after_s: float | None = None) -> float:
        """Seconds to sleep after failed attempt ``attempt``. A server's Retry-After wins over the computed delay."""
        if retry_after_s is not None:
            return max(0.0, retry_after_s)
        d = self.backoff(attempt)
        r = rng if rng is not None else _default_rng
        if self.jitter is Jitter.FULL:
            return r.uniform(0.0, d)
        if self.jitter is Jitter.EQUAL:
            return d / 2 + r.uniform(0.0, d / 2)
        return d

    def is_retryable(self, failure: Failure) -> bool:
        if isinstance(failure, TransientKind):
            return failure in self.retryable_kinds
        return failure in self.retryable_statuses

    def should_retry(self, failure: Failure | RetryDecision, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` (1-based) may be followed by another one."""
        if isinstance(failure, RetryDecision):
            if failure.failure is None:
                return False
            if (
                failure.retry_after_s is not None
                and self.max_retry_after_s is not None
                and failure.retry_after_s > self.max_retry_after_s
            ):
                return False
            failure = failure.failure
        return attempt < self.max_attempts and self.is_retryable(failure)

    def delays(self, rng: random.Random | None = None) -> Iterable[float]:
        """The sleeps of a run that fails every time (``max_attempts - 1`` values), for logs and docs."""
        return [self.delay(n, rng) for n in range(1, self.max_attempts)]


_default_rng = random.Random()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: delta-seconds or an HTTP-date. ``None`` if absent or bad.

    ``now`` (aware) is the wall-clock instant to measure an HTTP-date from (pass ``WallClock.now()``); defaults to
    the real UTC time, which is only used for that subtraction, never as a timer.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = now if now is not None else datetime.now(UTC)
        return max(0.0, (when - reference).total_seconds())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class RetriesExhausted(Exception):
    """Raised by :func:`retry_read` only when ``raise_on_exhausted_response`` and the last response was a failure."""

    def __init__(self, attempts: int, decision: RetryDecision, response: object) -> None:
        super().__init__(f"read failed after {attempts} attempt(s): {decision.failure} {decision.reason}".rstrip())
        self.attempts = attempts
        self.decision = decision
        self.response = response


OnRetry = Callable[[int, float, RetryDecision], None]


async def retry_read(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    classify: Callable[[BaseException | T], RetryDecision],
    rng: random.Random | None = None,
    on_retry: OnRetry | None = None,
    raise_on_exhausted_response: bool = False,
    description: str = "read",
) -> T:
    """Run the READ ``operation`` until it succeeds or the policy gives up, sleeping on the Trio clock in between.

    Never use it for a mutation (see the module docstring). Each attempt is one call of ``operation`` (so each
    attempt takes its own rate-limiter permit inside ``operation``). ``classify`` is called with the exception an
    attempt raised (``Exception`` subclasses only; cancellation always propagates) or the response it returned.

    When the policy gives up: a raised exception is re-raised; a returned failed response is returned as is (or
    :class:`RetriesExhausted` is raised if ``raise_on_exhausted_response``). ``on_retry(attempt, delay_s, decision)``
    is called before each sleep (logging, limiter pause on 429, metrics).
    """
    attempt = 1
    while True:
        try:
            result = await operation()
        except Exception as exc:
            decision = classify(exc)
            if not policy.should_retry(decision, attempt):
                raise
        else:
            decision = classify(result)
            if not decision.is_failure:
                return result
            if not policy.should_retry(decision, attempt):
                if raise_on_exhausted_response:
                    raise RetriesExhausted(attempt, decision, result)
                return result
        pause = policy.delay(attempt, rng, decision.retry_after_s)
        log.info(
            "%s failed on attempt %d/%d (%s%s); retrying in %.3f s",
            description,
            attempt,
            policy.max_attempts,
            decision.failure.value if isinstance(decision.failure, TransientKind) else decision.failure,
            f": {decision.reason}" if decision.reason else "",
            pause,
        )
        if on_retry is not None:
            on_retry(attempt, pause, decision)
        await trio.sleep(pause)
        attempt += 1
