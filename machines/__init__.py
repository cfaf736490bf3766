"""Pure, synchronous state machines: connection, circuit breaker, token and order lifecycles.

Nothing here imports Trio or does I/O or reads a clock: time comes in as an argument. Drivers in :mod:`engine`
feed events in and act on the machine's state and the intents its callbacks record.

Each module holds a python-statemachine chart (``*Chart``: the states and transitions, drawn into ``statecharts/``)
and a small typed wrapper the drivers use (``Breaker``, ``ConnectionLifecycle``, ``TokenLifecycle``,
``OrderLifecycle``). Every wrapper reports each transition as a :class:`~machines.observe.Transition` to its
listeners. Events that are not allowed raise :class:`TransitionNotAllowed` and change nothing.
"""

from __future__ import annotations

from statemachine import StateMachine
from statemachine.exceptions import TransitionNotAllowed

from machines.breaker import Breaker, BreakerChart, BreakerState, Permit
from machines.connection import ConnectionChart, ConnectionLifecycle, ConnectionState, Hook, hook_of
from machines.observe import Lifecycle, Transition, TransitionListener
from machines.order import GatewayOrderStatus, OrderChart, OrderLifecycle, OrderState, OverfillError
from machines.token import StaleRevisionError, TokenChart, TokenLifecycle, TokenState

#: Every chart by its diagram name (``statecharts/<name>.md`` / ``.svg``).
CHARTS: dict[str, type[StateMachine]] = {
    "connection": ConnectionChart,
    "breaker": BreakerChart,
    "token": TokenChart,
    "order": OrderChart,
}

__all__ = [
    "CHARTS",
    "Breaker",
    "BreakerChart",
    "BreakerState",
    "ConnectionChart",
    "ConnectionLifecycle",
    "ConnectionState",
    "GatewayOrderStatus",
    "Hook",
    "Lifecycle",
    "OrderChart",
    "OrderLifecycle",
    "OrderState",
    "OverfillError",
    "Permit",
    "StaleRevisionError",
    "TokenChart",
    "TokenLifecycle",
    "TokenState",
    "Transition",
    "TransitionListener",
    "TransitionNotAllowed",
    "hook_of",
]
