"""Drive the dashboard from a Trio task: a ``rich.live.Live`` refreshed on the Trio clock, or periodic log lines.

Why no rich refresh thread: ``Live(auto_refresh=True)`` starts a thread that renders on the wall clock, outside Trio,
while the model it would read is owned by Trio tasks. With ``auto_refresh=False`` this task alone calls
``live.update(..., refresh=True)`` between ``trio.sleep`` calls, so every frame is built inside the Trio run, tests
drive it with a MockClock, and cancelling the task (the ``run`` command's nursery) stops the display cleanly.

A frame that fails to build (a bug in the model builder) is logged once per distinct error and the previous frame
stays up: the dashboard must never take the engine down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from rich.console import Console, RenderableType
from rich.live import Live

from engine.ui.model import DashboardModel
from engine.ui.render import render, status_line

log = logging.getLogger(__name__)

ModelSource = Callable[[], DashboardModel]


def is_interactive(console: Console | None = None) -> bool:
    """True when ``console`` (default: a new stdout console) is a real terminal that can redraw in place."""
    console = console if console is not None else Console()
    return console.is_terminal and not console.is_dumb_terminal


class _Frames:
    """Builds frames, remembering the last good one and which errors were already logged."""

    def __init__(self, get_model: ModelSource) -> None:
        self._get_model = get_model
        self._logged: set[str] = set()
        self.failures = 0

    def build(self) -> RenderableType | None:
        try:
            return render(self._get_model())
        except Exception as exc:
            self.failures += 1
            key = f"{type(exc).__name__}: {exc}"
            if key not in self._logged:
                self._logged.add(key)
                log.exception("dashboard frame failed (showing the previous one)")
            return None


async def run_dashboard(
    get_model: ModelSource,
    *,
    refresh_s: float = 0.5,
    console: Console | None = None,
    screen: bool = False,
) -> None:
    """Show the live dashboard until cancelled; ``get_model`` is called once per refresh (inside the Trio run).

    ``screen=True`` uses the terminal's alternate screen (restored on exit). Log records should go through a
    ``rich.logging.RichHandler(console=console)`` on the same console so they print above the live frame.
    """
    if not refresh_s > 0:
        raise ValueError(f"refresh_s must be > 0, got {refresh_s}")
    console = console if console is not None else Console()
    frames = _Frames(get_model)
    first = frames.build()
    live = Live(first if first is not None else "", console=console, auto_refresh=False, screen=screen,
                redirect_stdout=False, redirect_stderr=False, transient=False)
    with live:
        live.refresh()
        while True:
            await trio.sleep(refresh_s)
            frame = frames.build()
            if frame is not None:
                live.update(frame, refresh=True)


async def run_status_log(
    get_model: ModelSource,
    *,
    interval_s: float = 10.0,
    emit: Callable[[str], None] | None = None,
) -> None:
    """The no-terminal fallback: emit :func:`~engine.ui.render.status_line` every ``interval_s`` until cancelled
    (default: ``log.info``)."""
    if not interval_s > 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    write = emit if emit is not None else log.info
    logged: set[str] = set()
    while True:
        try:
            write(status_line(get_model()))
        except Exception as exc:
            key = f"{type(exc).__name__}: {exc}"
            if key not in logged:
                logged.add(key)
                log.exception("status line failed")
        await trio.sleep(interval_s)
