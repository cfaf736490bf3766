"""Shared helpers for the machine tests: a transition recorder and the "every transition exercised" check.

Unit-test functions in this package take the ``rec`` fixture and pass it as a listener to the machines they build.
Each ``test_*_machine.py`` module ends with a test that runs every such function again with ONE recorder and
compares what was recorded with the chart's own list of transitions, so a transition added to a chart without a
test fails the suite.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from statemachine import StateMachine

from machines import Transition

Edge = tuple[str, str, str]  # (source, event, target)


class Recorder:
    """A transition listener that keeps everything it hears."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []

    def __call__(self, transition: Transition) -> None:
        self.transitions.append(transition)

    @property
    def edges(self) -> set[Edge]:
        return {(t.source, t.event, t.target) for t in self.transitions}

    @property
    def targets(self) -> list[str]:
        return [t.target for t in self.transitions]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def chart_edges(chart: type[StateMachine]) -> set[Edge]:
    """Every (source, event, target) the chart defines."""
    return {
        (transition.source.id, str(event), transition.target.id)
        for state in chart.states
        for transition in state.transitions
        for event in transition.events
    }


def run_all_recording_tests(namespace: Mapping[str, Any]) -> Recorder:
    """Call every ``test_*`` function of a module whose only parameter is ``rec`` with one shared recorder."""
    shared = Recorder()
    for name, function in sorted(namespace.items()):
        if not name.startswith("test_") or not callable(function):
            continue
        params = list(inspect.signature(function).parameters)
        marks = getattr(function, "pytestmark", [])
        if params == ["rec"] and not marks:
            function(shared)
        elif params and params[0] == "rec":
            for mark in marks:
                if mark.name == "parametrize":
                    _run_parametrized(function, mark.args, shared)
    return shared


def _run_parametrized(function: Callable[..., None], args: tuple[Any, ...], shared: Recorder) -> None:
    names = [n.strip() for n in args[0].split(",")] if isinstance(args[0], str) else list(args[0])
    for value in args[1]:
        if hasattr(value, "values") and hasattr(value, "marks"):  # pytest.param(...)
            row = tuple(value.values)
        elif len(names) == 1:
            row = (value,)
        else:
            row = tuple(value)
        function(shared, **dict(zip(names, row, strict=True)))


def assert_chained(transitions: list[Transition], initial: str, current: str) -> None:
    """Reported transitions form one unbroken path from the initial state to the current one."""
    state = initial
    for transition in transitions:
        assert transition.source == state, f"{transition} does not start where the machine was ({state})"
        state = transition.target
    assert state == current
