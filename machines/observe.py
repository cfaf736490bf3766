"""Observable transitions: the one record every machine emits, and the base class of the lifecycle wrappers.

Why: drivers must be able to log and store every transition (an audit trail is how a resilience layer is debugged
after the fact), and they must do it the same way for all four machines. So every wrapper funnels its events
through :meth:`Lifecycle._fire`, which sends the event to the python-statemachine chart and, once the chart has
settled, hands one :class:`Transition` to every registered listener.

Listeners are called synchronously, after the state has changed, in registration order. A listener must not feed
events back into the same machine (record intent instead; the driver acts on it). An exception raised by a listener
propagates to the caller of the event method; the machine's state is already consistent at that point.

Events that are not allowed in the current state raise ``statemachine.exceptions.TransitionNotAllowed``
(re-exported as :data:`machines.TransitionNotAllowed`) and leave the machine unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from statemachine import StateMachine


@dataclass(frozen=True, slots=True)
class Transition:
    """One step of one machine: ``machine`` went from ``source`` to ``target`` on ``event``.

    ``source == target`` for self-transitions (a counted failure, a partial fill). ``cause`` is free text for
    humans (a disconnect reason, a reject message) and never holds a secret. ``at`` is the Trio-clock time the
    driver passed with the event, when the event carries one.
    """

    machine: str
    source: str
    target: str
    event: str
    cause: str | None = None
    at: float | None = None


TransitionListener = Callable[[Transition], None]


class Lifecycle:
    """Base of the typed wrappers: owns the chart instance and the listener list."""

    def __init__(self, chart: StateMachine, name: str, listeners: Iterable[TransitionListener] = ()) -> None:
        self._chart = chart
        self._name = name
        self._listeners: list[TransitionListener] = list(listeners)

    @property
    def name(self) -> str:
        """The machine name carried by every :class:`Transition` (e.g. ``"breaker"``, ``"order:abc123"``)."""
        return self._name

    def add_listener(self, listener: TransitionListener) -> None:
        """Call ``listener`` with every future transition of this machine."""
        self._listeners.append(listener)

    def remove_listener(self, listener: TransitionListener) -> None:
        """Stop calling ``listener``; a listener that is not registered is ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def _state_id(self) -> str:
        value: str = self._chart.current_state_value
        return value

    def _fire(
        self,
        event: str,
        *,
        cause: str | None = None,
        at: float | None = None,
        update: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Transition:
        """Send ``event`` to the chart (``kwargs`` reach its guards), run ``update``, then notify the listeners.

        ``update`` adjusts the wrapper's own bookkeeping for the new state, so that listeners see a consistent
        wrapper; it runs only when the chart accepted the event. Guard arguments must not be named like the
        library's injected ones (``event``, ``source``, ``target``, ``state``, ``transition``, ``model``, ``machine``).
        """
        source = self._state_id
        self._chart.send(event, **kwargs)
        if update is not None:
            update()
        return self._emit(Transition(self._name, source, self._state_id, event, cause, at))

    def _emit(self, transition: Transition) -> Transition:
        for listener in list(self._listeners):
            listener(transition)
        return transition
