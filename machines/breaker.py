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
    permit = breaker.try_acquire(trio.current_time())
    if permit is None:
        ...  # fail fast; breaker.next_probe_at says when a probe will be admitted
    try:
        response = await send()
    except TransientError:
        breaker.on_failure(trio.current_time(), permit)   # only transient failures are reported
        raise
    except BaseException:
        breaker.on_ignored(permit)                        # cancelled / a bug: no verdict, frees the slot
        raise
    breaker.on_success(trio.current_time(), permit)       # any answer from the server, even a business reject

Each :class:`Permit` is stamped with the breaker's *epoch*, which changes whenever the breaker changes state (and on
a manual reset). A result whose permit belongs to an older epoch is stale (a call admitted while closed that answers
after the breaker opened) and is ignored: so in ``half_open`` only the probes admitted in that very window count, and
a stale cancellation can never free a probe slot (the half-open limit holds exactly).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from statemachine import State, StateMachine

from machines.observe import Lifecycle, TransitionListener


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Permit:
    """Proof that :meth:`Breaker.try_acquire` admitted a call; hand it back with the call's result."""

    epoch: int
    probe: bool


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
        self._epoch = 0

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

    @property
    def epoch(self) -> int:
        """Changes on every change of state; permits of an older epoch are stale."""
        return self._epoch

    def try_acquire(self, now: float) -> Permit | None:
        """Admit one call (a :class:`Permit`) or refuse it (``None``); open -> half-open once the timeout passed."""
        state = self.state
        if state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return Permit(self._epoch, probe=False)
        if state is BreakerState.FORCED_OPEN:
            return None
        if state is BreakerState.OPEN:
            due = self.next_probe_at
            if due is None or now < due:
                return None
            self._fire("timeout_elapsed", at=now, update=self._clear)
        if self._probes_in_flight >= self.half_open_requests:
            return None
        self._probes_in_flight += 1
        return Permit(self._epoch, probe=True)

    def on_success(self, now: float, permit: Permit) -> None:
        """The admitted call got an answer from the server. A probe success closes the breaker."""
        if not self._current(permit):
            return
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures = 0
        elif state is BreakerState.HALF_OPEN:
            self._fire("success", at=now, update=self._clear)

    def on_failure(self, now: float, permit: Permit, cause: str | None = None) -> None:
        """The admitted call failed transiently (timeout, 5xx, connection error). May open the breaker."""
        if not self._current(permit):
            return
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

    def on_ignored(self, permit: Permit) -> None:
        """The admitted call ended without a verdict on the server (cancelled, a local error): frees its slot."""
        if self._current(permit) and permit.probe and self._probes_in_flight > 0:
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

    def _current(self, permit: Permit) -> bool:
        return permit.epoch == self._epoch

    def _open_at(self, now: float) -> None:
        self._clear()
        self._opened_at = now

    def _clear(self) -> None:
        self._epoch += 1
        self._failures = 0
        self._probes_in_flight = 0
        self._opened_at = None
