"""Circuit breaker: stop hammering a gateway that is failing, then probe carefully until it recovers.

What it models (after resilience4j's CircuitBreaker, with the seed's ``errorHandling.circuitBreaker`` settings):

- ``closed``: calls flow. Transient failures are counted; ``failure_threshold`` *consecutive* failures (the seed's
  acceptance test: "5 consecutive API failures open the circuit") trip the breaker. A success resets the count.
- ``open``: calls are refused at once (fail fast, no request leaves the process) until ``open_timeout_s`` has passed
  since the breaker opened.
- ``half_open``: at most ``half_open_requests`` probe calls are in flight at any moment; further calls are refused.
  The first probe success closes the breaker; the first probe failure re-opens it (and restarts the timeout).
- ``forced_open`` / ``disabled``: manual overrides (an operator kill switch / a bypass). Only :meth:`Breaker.reset`
  leaves them. In ``disabled`` every call is admitted and nothing is counted.

Why a machine: the breaker's states decide whether a request may leave the process at all; drawing them as a
statechart makes the probe and recovery rules reviewable, and the property tests prove the half-open limit.

The API a driver uses (time is the Trio clock, passed in; nothing here reads a clock or sleeps)::

    breaker = Breaker(failure_threshold=5, half_open_requests=3, open_timeout_s=60.0)
    if not breaker.try_acquire(trio.current_time()):
        ...  # fail fast; breaker.next_probe_at says when a probe will be admitted
    try:
        response = await send()
    except TransientError:
        breaker.on_failure(trio.current_time())   # only transient failures are reported
        raise
    except trio.Cancelled:
        breaker.on_ignored(trio.current_time())   # no verdict: frees the probe slot
        raise
    breaker.on_success(trio.current_time())       # any answer from the server, even a business reject

Results that arrive late (a call admitted while closed reporting after the breaker opened) are ignored in
``open`` / ``forced_open`` / ``disabled``. In ``half_open`` every reported result counts as a probe result.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from statemachine import State, StateMachine

from machines.observe import Lifecycle, TransitionListener


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


class BreakerChart(StateMachine):
    """Circuit breaker (closed / open / half-open, plus manual forced-open and disabled)."""

    closed = State("Closed", initial=True)
    open = State("Open")
    half_open = State("Half-open")
    forced_open = State("Forced open")
    disabled = State("Disabled")

    failure = (
        closed.to(open, cond="threshold_reached")
        | closed.to.itself(unless="threshold_reached")
        | half_open.to(open)
    )
    success = half_open.to(closed)
    timeout_elapsed = open.to(half_open)
    force_open = closed.to(forced_open) | open.to(forced_open) | half_open.to(forced_open) | disabled.to(forced_open)
    disable = closed.to(disabled) | open.to(disabled) | half_open.to(disabled) | forced_open.to(disabled)
    reset = open.to(closed) | half_open.to(closed) | forced_open.to(closed) | disabled.to(closed)

    def threshold_reached(self, failures: int = 0, threshold: int = 1) -> bool:
        return failures >= threshold


class Breaker(Lifecycle):
    """Typed driver-facing API of :class:`BreakerChart`; see the module docstring."""

    def __init__(
        self,
        failure_threshold: int,
        half_open_requests: int,
        open_timeout_s: float,
        *,
        name: str = "breaker",
        listeners: Iterable[TransitionListener] = (),
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if half_open_requests < 1:
            raise ValueError(f"half_open_requests must be >= 1, got {half_open_requests}")
        if open_timeout_s < 0:
            raise ValueError(f"open_timeout_s must be >= 0, got {open_timeout_s}")
        super().__init__(BreakerChart(), name, listeners)
        self.failure_threshold = failure_threshold
        self.half_open_requests = half_open_requests
        self.open_timeout_s = float(open_timeout_s)
        self._failures = 0
        self._probes_in_flight = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        return BreakerState(self._state_id)

    @property
    def failures(self) -> int:
        """Consecutive transient failures counted while closed."""
        return self._failures

    @property
    def probes_in_flight(self) -> int:
        """Calls admitted while half-open whose result has not been reported yet."""
        return self._probes_in_flight

    @property
    def next_probe_at(self) -> float | None:
        """When open: the time from which :meth:`try_acquire` admits a probe. Otherwise ``None``."""
        if self.state is BreakerState.OPEN and self._opened_at is not None:
            return self._opened_at + self.open_timeout_s
        return None

    def try_acquire(self, now: float) -> bool:
        """Admit one call (``True``) or refuse it (``False``); moves open -> half-open once the timeout has passed."""
        state = self.state
        if state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return True
        if state is BreakerState.FORCED_OPEN:
            return False
        if state is BreakerState.OPEN:
            due = self.next_probe_at
            if due is None or now < due:
                return False
            self._fire("timeout_elapsed", at=now, update=self._clear)
        if self._probes_in_flight >= self.half_open_requests:
            return False
        self._probes_in_flight += 1
        return True

    def on_success(self, now: float) -> None:
        """An admitted call got an answer from the server. Closes a half-open breaker."""
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures = 0
        elif state is BreakerState.HALF_OPEN:
            self._fire("success", at=now, update=self._clear)

    def on_failure(self, now: float, cause: str | None = None) -> None:
        """An admitted call failed transiently (timeout, 5xx, connection error). May open the breaker."""
        state = self.state
        if state is BreakerState.CLOSED:
            failures = self._failures + 1

            def update() -> None:
                if self.state is BreakerState.OPEN:
                    self._open_at(now)
                else:
                    self._failures = failures

            threshold = self.failure_threshold
            self._fire("failure", cause=cause, at=now, update=update, failures=failures, threshold=threshold)
        elif state is BreakerState.HALF_OPEN:
            self._fire("failure", cause=cause, at=now, update=lambda: self._open_at(now))

    def on_ignored(self, now: float) -> None:
        """An admitted call ended without a verdict (cancelled, or a non-transient error): frees its probe slot."""
        if self.state is BreakerState.HALF_OPEN and self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def force_open(self, cause: str | None = None) -> None:
        """Manual kill switch: refuse every call until :meth:`reset`. Idempotent."""
        if self.state is not BreakerState.FORCED_OPEN:
            self._fire("force_open", cause=cause, update=self._clear)

    def disable(self, cause: str | None = None) -> None:
        """Manual bypass: admit every call and count nothing until :meth:`reset`. Idempotent."""
        if self.state is not BreakerState.DISABLED:
            self._fire("disable", cause=cause, update=self._clear)

    def reset(self, cause: str | None = None) -> None:
        """Back to closed with all counters cleared (leaves forced-open and disabled)."""
        if self.state is BreakerState.CLOSED:
            self._clear()
        else:
            self._fire("reset", cause=cause, update=self._clear)

    def _open_at(self, now: float) -> None:
        self._clear()
        self._opened_at = now

    def _clear(self) -> None:
        self._failures = 0
        self._probes_in_flight = 0
        self._opened_at = None
