"""The Trio driver of :class:`machines.breaker.Breaker` (seed GAP-API-008): one per dependency (REST, user hub,
market hub).

The machine decides (closed / open / half-open, probe limit, epoch-stamped permits); this driver adds what needs a
clock and tasks: it reads the Trio clock, turns a refusal into :class:`~engine.gateway.errors.CircuitOpenError`
saying when the next probe is, tells a transient failure from an answer (only ``GatewayError.breaker_failure``
counts; a business rejection, a 401 or a 429 is an answer from a healthy server), and lets held work wait for the
breaker to close (:meth:`CircuitBreaker.wait_until_closed`, optionally driving the probe itself so that recovery
does not depend on other traffic). Every state change is a :class:`machines.observe.Transition` handed to the
listeners (logging here; the store later).

Usage::

    permit = breaker.admit("/api/Order/searchOpen")      # raises CircuitOpenError when refused
    try:
        result = await send()
    except BaseException as exc:
        breaker.record(permit, exc)
        raise
    breaker.record(permit, None)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from engine.gateway.errors import CircuitOpenError, GatewayError
from machines.breaker import Breaker, BreakerState, Permit
from machines.observe import Transition, TransitionListener

if TYPE_CHECKING:
    from settings import EngineSettings

log = logging.getLogger(__name__)


class CircuitBreaker:
    """One dependency's breaker, driven on the Trio clock. Single Trio run only."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        half_open_requests: int = 3,
        open_timeout_s: float = 60.0,
        log_events: bool = True,
    ) -> None:
        self.name = name
        self.machine = Breaker(failure_threshold, half_open_requests, open_timeout_s, name=f"breaker:{name}")
        self.machine.add_listener(self._on_transition)
        self._changed = trio.Event()
        self._log_events = log_events
        self.transitions: list[Transition] = []
        """Every transition so far (bounded to the last 1000), for tests and dashboards."""

    @classmethod
    def from_settings(cls, settings: EngineSettings, name: str) -> CircuitBreaker:
        cb = settings.error_handling.circuit_breaker
        return cls(
            name,
            failure_threshold=cb.failure_threshold,
            half_open_requests=cb.half_open_requests,
            open_timeout_s=cb.timeout_s,
            log_events=settings.logging.resilience.circuit_breaker,
        )

    # ------------------------------------------------------------------------------------------------ observation
    @property
    def state(self) -> BreakerState:
        return self.machine.state

    def add_listener(self, listener: TransitionListener) -> None:
        """Call ``listener`` with every future state change (synchronously, after the change)."""
        self.machine.add_listener(listener)

    def retry_in_s(self) -> float | None:
        """When open: seconds until a probe will be admitted (0 if due now); ``None`` otherwise."""
        due = self.machine.next_probe_at
        return None if due is None else max(0.0, due - trio.current_time())

    def _on_transition(self, transition: Transition) -> None:
        self.transitions.append(transition)
        del self.transitions[:-1000]
        if self._log_events and transition.source != transition.target:
            log.warning("circuit breaker %s: %s -> %s on %s%s", self.name, transition.source, transition.target,
                        transition.event, f" ({transition.cause})" if transition.cause else "")
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ------------------------------------------------------------------------------------------------ admission
    def admit(self, endpoint: str = "") -> Permit:
        """A permit for one call, or :class:`CircuitOpenError` (nothing may be sent)."""
        permit = self.machine.try_acquire(trio.current_time())
        if permit is None:
            raise CircuitOpenError(self.name, self.retry_in_s(), endpoint=endpoint)
        return permit

    def record(self, permit: Permit, error: BaseException | None) -> None:
        """Report the call's result: ``None`` = answered; a transient :class:`GatewayError` = failure; any other
        :class:`GatewayError` = answered (a healthy server said no); anything else (cancellation, a bug) = no
        verdict."""
        now = trio.current_time()
        if error is None:
            self.machine.on_success(now, permit)
        elif isinstance(error, GatewayError):
            if error.breaker_failure:
                self.machine.on_failure(now, permit, cause=type(error).__name__)
            else:
                self.machine.on_success(now, permit)
        else:
            self.machine.on_ignored(permit)
        self._poke()

    async def wait_until_closed(self, probe: Callable[[], Awaitable[object]] | None = None) -> None:
        """Return once the breaker is closed (or disabled).

        With ``probe`` (e.g. the client's ping, which itself goes through this breaker) the waiter drives recovery:
        when the open timeout has passed it sends the probe, whose success closes the breaker. Without it, the
        waiter relies on other traffic to probe. Wrap in a cancel scope to bound the wait.
        """
        while self.state not in (BreakerState.CLOSED, BreakerState.DISABLED):
            changed = self._changed
            state = self.state
            if state is BreakerState.OPEN:
                due = self.machine.next_probe_at
                if due is not None and trio.current_time() < due:
                    with trio.move_on_at(due):
                        await changed.wait()
                    continue
            if probe is not None and state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
                try:
                    await probe()
                except GatewayError as exc:
                    log.debug("breaker %s: probe failed: %s", self.name, exc)
                if self.state in (BreakerState.CLOSED, BreakerState.DISABLED):
                    return
                if self._changed is not changed:
                    continue
            await changed.wait()


__all__ = ["BreakerState", "CircuitBreaker"]
