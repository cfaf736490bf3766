"""``python -m engine run``: run the engine against the Gateway (or, with ``--simulate``, against a built-in simulator).

Start-up is the seed's sequence: log in, recover unresolved order intents, connect the user hub, subscribe, reconcile
(the initial sync), connect the market hub, ready. The engine then watches every configured account (``accounts``;
default: every active account from Account/search) until Ctrl-C / SIGTERM or ``--duration``, and shuts down
gracefully (a mutation already sent finishes or is recorded ambiguous; the final mirrored state is saved). A second
Ctrl-C stops at once (the final save is still attempted).

Credentials come from TOPSTEPX_USERNAME / TOPSTEPX_API_KEY (or ``credentials:`` in the config file). Status lines
(what the connection is doing) go to stdout, logs to stderr.

--simulate starts the simulated Gateway in this process (on 127.0.0.1, a free port, real sockets) with a live market
and a scripted trader whose orders keep events flowing and sometimes break the risk rules, connects the engine to it
and shows the live dashboard (log lines without a terminal or with --no-dashboard). --chaos injects faults all the
time (``--faults PROFILE`` picks another schedule). On exit it prints a summary: run time, faults by kind,
reconnects, findings, enforcement actions, duplicate orders, 429s, and whether the final mirrored state equals the
simulator's.

Exit codes:
  0  clean stop
  1  unexpected error (see the log)
  2  bad configuration (a message names the key), or missing credentials / token-storage key
  3  permanent login failure (bad API key, agreements not signed, no API subscription)
  4  a hub gave up reconnecting (signalr.reconnection.maxAttempts) or the server closed it for good
  5  the database could not be opened or written
  6  --simulate only: the final mirrored state differs from the simulator's, or an order was duplicated
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import trio

from engine.cli.config import add_config_arguments, report_config_error, settings_from_args

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_CONFIG, EXIT_LOGIN, EXIT_GAVE_UP, EXIT_STORE, EXIT_MISMATCH = 0, 1, 2, 3, 4, 5, 6


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the engine (watch accounts, mirror state, enforce risk rules); --simulate for a demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    parser.add_argument("--duration", type=_seconds, default=None, metavar="SECONDS",
                        help="stop gracefully after this many seconds of being ready (default: until Ctrl-C)")
    parser.add_argument("--state-out", type=Path, default=None, metavar="FILE",
                        help="write the final mirrored state as JSON (accounts, open positions, working orders)")
    sim = parser.add_argument_group("demo (--simulate)")
    sim.add_argument("--simulate", action="store_true",
                     help="start the simulated Gateway in-process (loopback) with a scripted trader and connect to it")
    sim.add_argument("--chaos", action="store_true",
                     help="with --simulate: inject faults all the time (every kind within ~100 s, then again)")
    sim.add_argument("--faults", default=None, metavar="PROFILE",
                     help="with --chaos: the fault profile (default chaos; chaos-quick: every kind within ~30 s, "
                          "random-chaos, flaky-network)")
    sim.add_argument("--no-dashboard", action="store_true", help="print log lines instead of the live dashboard")
    sim.add_argument("--seed", type=int, default=0, help="with --simulate: seed of prices, faults and the trader")
    parser.set_defaults(handler=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--duration must be a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"--duration must be > 0, got {text!r}")
    return value


def status_printer(stream: Any = None) -> Callable[[str], None]:
    """Status lines on stdout, stamped with the local time of day."""

    def emit(line: str) -> None:
        out = stream if stream is not None else sys.stdout
        print(f"{datetime.now().astimezone():%H:%M:%S} {line}", file=out, flush=True)

    return emit


def run(args: argparse.Namespace) -> int:
    if args.chaos and not args.simulate:
        print("--chaos needs --simulate", file=sys.stderr)
        return EXIT_CONFIG
    if args.faults is not None and not args.chaos:
        print("--faults needs --chaos", file=sys.stderr)
        return EXIT_CONFIG
    if args.simulate:
        from engine.cli._simrun import run_simulated

        return run_simulated(args)
    from settings import ConfigError

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    creds = settings.credentials
    if not creds.username or creds.api_key is None:
        print("no credentials: set TOPSTEPX_USERNAME and TOPSTEPX_API_KEY (or credentials: in the config file)",
              file=sys.stderr)
        return EXIT_CONFIG
    from engine.logs import setup_logging

    setup_logging(settings)
    quiet_libraries()
    return run_engine(settings, duration_s=args.duration, state_out=args.state_out)


def quiet_libraries() -> None:
    """Per-request INFO lines of the HTTP and migration libraries drown the engine's own; keep their warnings."""
    for name in ("httpx", "httpcore", "alembic", "hypercorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_engine(settings: Any, *, duration_s: float | None, state_out: Path | None,
               engine_kwargs: dict[str, Any] | None = None) -> int:
    """Build and run an Engine in ``trio.run`` until a signal or the duration; map failures to exit codes."""
    from engine.app import Engine, dashboard_model
    from engine.auth.storage import TokenStorageError
    from engine.ui import Mode, run_status_log

    status = status_printer()
    try:
        engine = Engine(settings, status=status, **(engine_kwargs or {}))
    except TokenStorageError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_on_signal_or_duration, engine, duration_s, nursery.cancel_scope)

            async def status_log() -> None:
                await engine.ready_event.wait()
                await run_status_log(lambda: dashboard_model(engine, mode=Mode.REAL), interval_s=60.0,
                                     emit=status)

            nursery.start_soon(status_log)
            try:
                await engine.run()
            finally:
                nursery.cancel_scope.cancel()

    code = guarded(lambda: trio.run(main))
    if state_out is not None and engine.final_state is not None:
        write_state(state_out, engine.final_state)
        status(f"final state written to {state_out}")
    return code


async def stop_on_signal_or_duration(
    engine: Any, duration_s: float | None, hard: trio.CancelScope,
    finish: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """First SIGINT/SIGTERM (or the duration after ready): graceful stop. A second signal: cancel at once.

    The graceful stop is ``engine.stop()``, or ``finish`` run in this task's nursery when given (``run --simulate``
    first syncs and compares against the simulator)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            def graceful() -> None:
                if finish is None:
                    engine.stop()
                else:
                    nursery.start_soon(finish)

            if duration_s is not None:
                async def timer() -> None:
                    await engine.ready_event.wait()
                    await trio.sleep(duration_s)
                    engine.status(f"--duration {duration_s:g} s reached: stopping")
                    graceful()

                nursery.start_soon(timer)
            stops = 0
            async for signum in signals:
                stops += 1
                name = signal.Signals(signum).name
                if stops == 1:
                    engine.status(f"{name}: stopping gracefully (again to stop at once)")
                    graceful()
                else:
                    engine.status(f"{name}: stopping now")
                    hard.cancel()


def guarded(body: Callable[[], object]) -> int:
    """Run ``body`` and turn the engine's failures into exit codes (with one clear line on stderr)."""
    from engine.app import first_leaf
    from engine.auth.storage import TokenStorageError
    from engine.gateway.errors import PermanentLoginError
    from engine.realtime import HubClosed
    from engine.store import StoreError
    from settings import ConfigError

    try:
        body()
    except KeyboardInterrupt:
        return EXIT_OK
    except BaseException as exc:  # every failure becomes an exit code
        table: list[tuple[type[BaseException], int, str]] = [
            (ConfigError, EXIT_CONFIG, "bad configuration"),
            (TokenStorageError, EXIT_CONFIG, "token storage"),
            (PermanentLoginError, EXIT_LOGIN, "login refused for good"),
            (HubClosed, EXIT_GAVE_UP, "hub closed"),
            (StoreError, EXIT_STORE, "database"),
        ]
        for kind, code, what in table:
            found = first_leaf(exc, [kind])
            if found is not None:
                if isinstance(found, ConfigError):
                    return report_config_error(found)
                print(f"{what}: {found}", file=sys.stderr)
                return code
        if first_leaf(exc, [KeyboardInterrupt]) is not None:
            return EXIT_OK
        log.error("the engine stopped on an unexpected error", exc_info=exc)
        print(f"unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def write_state(path: Path, state: dict[str, Any]) -> None:
    """``{"accounts", "positions", "orders"}`` as JSON, written atomically."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({k: state[k] for k in ("accounts", "positions", "orders")}, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
