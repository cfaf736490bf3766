"""``python -m engine run --simulate``: the engine against a simulated Gateway served in this very process.

Why in-process but over real sockets: one command shows the whole engine working (and, with ``--chaos``, surviving
faults) with nothing to set up, yet every byte goes through the engine's real HTTP client and websocket code on
127.0.0.1, exactly as against TopstepX. The simulator runs in the same ``trio.run`` (its own nursery), the scripted
trader trades the simulated accounts over REST as "another front end", and the engine only knows the URLs.

Defaults chosen for the demo, each one only when the configuration does not set it: memory token storage (no key
needed), a SQLite database in a temporary directory, a rate limit that leaves room for the trader (who logs in as
the same user with its own API key, and the simulator keys its windows per user), and a few risk rules the trader
will break now and then (with the trading-session rule on, it also trades off-session on purpose).

Counting 429s honestly under chaos: the ``http_429`` fault answers 429 to whichever client asks next, engine or
trader. The engine's HTTP requests carry a label header (:data:`CLIENT_HEADER`), and :class:`StatusCounter` files
every 429 it sees by client and by cause (injected: the fault log's newest record is this request's ``http_429``,
taken with no checkpoint before the answer starts; otherwise a rate window refused it). "429s received" in the
summary is what the Gateway's rate windows refused the engine (its limiter's job is to keep that at 0); injected
ones are listed beside it, with the limiter's own count of every 429 it rode out.

The end of a run is a controlled comparison: the trader and the fault schedule stop, faults are disarmed and prices
freeze, the engine reconciles once more, waits until its mirror has caught up with the simulator (the events of what
was still in flight, an enforcement close or a fill, arrive after the reconciliation; :func:`caught_up`), stops
gracefully, and its final mirrored state is compared with the simulator's truth. The summary reports it with the
counters; duplicates are counted from the simulator's orders (more than one order per customTag).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

from engine.cli.config import config_path_from_args, parse_overrides, report_config_error
from engine.cli.run import (
    EXIT_CONFIG,
    EXIT_MISMATCH,
    EXIT_OK,
    guarded,
    quiet_libraries,
    status_printer,
    stop_on_signal_or_duration,
    write_state,
)

log = logging.getLogger(__name__)

SIM_USER = "sim"
SIM_API_KEY = "sim-key"
TRADER_API_KEY = "sim-trader-key"
"""The scripted trader's own API key (a second key of the same user: another front end on the same account)."""
CLIENT_HEADER = "x-sim-client"
ENGINE_CLIENT = "engine"
TRADER_REQUESTS_PER_MIN = 60
DEMO_RISK_RULES: dict[str, Any] = {
    "daily_loss_limit": {"enabled": True, "limit": 1000.0},
    "max_contracts": {"enabled": True, "total": 10},
    "max_trades_per_day": {"enabled": True, "limit": 60},
}
QUIESCE_S = 1.5
FINAL_SYNC_TIMEOUT_S = 30.0
CATCH_UP_TIMEOUT_S = 5.0
"""How long the final comparison waits for the mirror to show what the simulator holds before reporting the rest."""


class StatusCounter:
    """ASGI middleware counting the HTTP statuses the simulator answered, and its 429s by client and cause (see the
    module docstring)."""

    def __init__(self, app: Any, faults: Any = None) -> None:
        self.app = app
        self.faults = faults
        self.statuses: Counter[int] = Counter()
        self.rate_limited: Counter[tuple[str, str]] = Counter()
        """(client, cause) -> 429s; client ``engine`` or ``other``, cause ``injected`` or ``window``."""
        self._claimed = -1

    def _cause(self, path: str) -> str:
        log_ = self.faults.log if self.faults is not None else []
        newest = len(log_) - 1
        if newest > self._claimed and log_[newest].kind == "http_429" and log_[newest].context.get("path") == path:
            self._claimed = newest
            return "injected"
        return "window"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        label = dict(scope.get("headers") or []).get(CLIENT_HEADER.encode(), b"").decode("latin-1")
        client = ENGINE_CLIENT if label == ENGINE_CLIENT else "other"

        async def counting_send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
                self.statuses[status] += 1
                if status == 429:
                    self.rate_limited[(client, self._cause(str(scope.get("path"))))] += 1
            await send(message)

        await self.app(scope, receive, counting_send)


class LabelledTransport(httpx.AsyncHTTPTransport):
    """The engine's HTTP transport in the demo: the real one, plus the label header :class:`StatusCounter` reads."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers[CLIENT_HEADER] = ENGINE_CLIENT
        return await super().handle_async_request(request)


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


def _explicit(raw: Any, user_overrides: Mapping[str, Any], env: Mapping[str, str], dotted: str) -> bool:
    """Whether the config file, an ``ENGINE_*`` variable or a ``--set`` flag sets ``dotted`` (or something in it)."""
    parts = [_norm(p) for p in dotted.split(".")]
    node = raw
    found = True
    for part in parts:
        if not isinstance(node, dict):
            found = False
            break
        match = next((v for k, v in node.items() if _norm(str(k)) == part), None)
        if match is None:
            found = False
            break
        node = match
    if found:
        return True
    prefix = "ENGINE_" + "__".join(p.upper() for p in dotted.split("."))
    if any(_norm(name).startswith(_norm(prefix)) for name in env):
        return True
    return any(_norm(key).startswith(".".join(parts)) for key in user_overrides)


def _settings(args: argparse.Namespace, base_url: str, tmp: Path) -> Any:
    from settings import load_settings

    path = config_path_from_args(args)
    raw: Any = {}
    if path is not None and path.is_file():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            raw = {}  # load_settings reports the problem properly
    user = parse_overrides(list(args.config_overrides or []))
    env = os.environ
    overrides: dict[str, Any] = {
        "api.base_url": base_url,
        "api.user_hub_url": f"{base_url}/hubs/user",
        "api.market_hub_url": f"{base_url}/hubs/market",
        "credentials.username": SIM_USER,
        "credentials.api_key": SIM_API_KEY,
    }
    defaults: dict[str, Any] = {
        "authentication.storage.type": "memory",
        "database.url": f"sqlite:///{tmp / 'engine.db'}",
        "error_handling.rate_limit.general.requests": 200 - TRADER_REQUESTS_PER_MIN - 10,
        "error_handling.rate_limit.history.requests": 25,
        "risk_rules": DEMO_RISK_RULES,
    }
    for key, value in defaults.items():
        if not _explicit(raw, user, env, key):
            overrides[key] = value
    overrides.update(user)
    # the simulator's credentials win over TOPSTEPX_* (those belong to the real Gateway)
    env_without_creds = {k: v for k, v in env.items() if k not in ("TOPSTEPX_USERNAME", "TOPSTEPX_API_KEY")}
    return load_settings(path, env=env_without_creds, overrides=overrides)


async def caught_up(engine: Any, truth: Callable[[], Mapping[str, Any]], timeout_s: float) -> bool:
    """Wait until the engine's mirror equals ``truth()`` on the watched accounts, looking again at every change of
    the mirror; False if it still differs after ``timeout_s`` (the summary then lists the differences).

    Why not a fixed pause: after the final reconciliation, what the engine had in flight (a risk close, an order's
    fill) still reaches the mirror as events, a few milliseconds later on an idle machine and whenever the scheduler
    gets to it under load. Equality is the condition the comparison needs; a pause only guessed how long it takes."""
    from engine.app import state_differences

    mirror = engine.mirror
    if mirror is None:
        return True
    changed = trio.Event()

    def on_change(_: object) -> None:
        changed.set()

    unsubscribe = mirror.subscribe(on_change)
    try:
        with trio.move_on_after(timeout_s):
            while state_differences(engine.snapshot(), truth(), engine.account_ids):
                await changed.wait()
                changed = trio.Event()
            return True
        return False
    finally:
        unsubscribe()


def run_simulated(args: argparse.Namespace) -> int:
    from settings import ConfigError
    from simulator.faults import PROFILES

    profile = getattr(args, "faults", None)
    if profile is not None and profile not in PROFILES:
        print(f"--faults: unknown fault profile {profile!r}; known: {', '.join(sorted(PROFILES))}", file=sys.stderr)
        return EXIT_CONFIG
    with tempfile.TemporaryDirectory(prefix="engine-sim-") as tmp:
        # validate the configuration before anything starts (the real base URL is known only once serving)
        try:
            _settings(args, "http://127.0.0.1:1", Path(tmp))
        except ConfigError as exc:
            return report_config_error(exc)
        result: dict[str, int] = {}
        code = guarded(lambda: trio.run(_main, args, Path(tmp), result))
        return code if code != EXIT_OK else result.get("code", EXIT_OK)


async def _main(args: argparse.Namespace, tmp: Path, result: dict[str, int]) -> None:
    from rich.console import Console

    from engine.app import Engine, dashboard_model, duplicate_orders, run_stats, state_differences
    from engine.logs import register_secret, setup_logging
    from engine.ui import Mode, is_interactive, run_dashboard, run_status_log, summary_lines
    from simulator.app import build_app
    from simulator.config import SimConfig, default_accounts
    from simulator.faults import kinds_injected
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve
    from simulator.trader import ScriptedTrader

    console = Console()
    dashboard = not args.no_dashboard and is_interactive(console)
    status = status_printer() if not dashboard else (lambda line: console.print(f"[dim]{line}[/dim]"))
    config = SimConfig(seed=args.seed, users={SIM_USER: SIM_API_KEY}, api_keys={SIM_USER: [TRADER_API_KEY]},
                       accounts=[dataclasses.replace(a, user=SIM_USER) for a in default_accounts()])
    gateway = SimulatedGateway(config)
    app = StatusCounter(build_app(gateway), gateway.faults)
    mode = Mode.CHAOS if args.chaos else Mode.SIMULATED
    profile = (getattr(args, "faults", None) or "chaos") if args.chaos else None
    detail = f"simulator seed {args.seed}" + (f", faults {profile}" if profile else "")

    async with trio.open_nursery() as sim_nursery:
        base: str = await sim_nursery.start(lambda task_status: serve(gateway, "127.0.0.1", 0, app=app,
                                                                      task_status=task_status))
        settings = _settings(args, base, tmp)
        handler = setup_logging(settings)
        register_secret(TRADER_API_KEY)
        quiet_libraries()
        if dashboard:
            from rich.logging import RichHandler

            from engine.logs import RedactionFilter

            root = logging.getLogger()
            root.removeHandler(handler)
            rich_handler = RichHandler(console=console, show_path=False, level=logging.WARNING)
            rich_handler.addFilter(RedactionFilter())
            root.addHandler(rich_handler)
        status(f"simulated Gateway at {base} (seed {args.seed}{f', faults {profile}' if profile else ''})")

        engine = Engine(settings, status=status, transport=LabelledTransport())
        tradeable = [a.id for a in config.accounts if a.can_trade]
        session = engine.rules.session if engine.rules.enabled else None
        session_open = (lambda: session.is_open(engine.clock.now())) if session is not None else None
        trader = ScriptedTrader(base, username=SIM_USER, api_key=TRADER_API_KEY, accounts=tradeable, seed=args.seed,
                                pace_per_min=30.0, breach_every=12, max_requests_per_min=TRADER_REQUESTS_PER_MIN,
                                session_open=session_open)
        extras = trio.CancelScope()

        def stats() -> Any:
            return run_stats(engine, faults_injected=len(gateway.faults.log),
                             duplicate_orders=duplicate_orders(gateway.snapshot()["orders"]),
                             rate_limited_429=app.rate_limited[(ENGINE_CLIENT, "window")])

        def model() -> Any:
            return dashboard_model(engine, mode=mode, mode_detail=detail, stats=stats())

        async def side_show(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            """The trader, the fault schedule and the display: started once the engine is ready."""
            with extras:
                async with trio.open_nursery() as nursery:
                    task_status.started()
                    await engine.ready_event.wait()
                    await nursery.start(trader.run)
                    status(f"scripted trader trading account(s) {', '.join(map(str, tradeable))}")
                    if profile is not None:
                        nursery.start_soon(gateway.faults.run_profile, profile)
                    if dashboard:
                        nursery.start_soon(lambda: run_dashboard(model, refresh_s=0.5, console=console))
                    else:
                        nursery.start_soon(lambda: run_status_log(model, interval_s=5.0, emit=status))

        async def finish() -> None:
            """Quiet the world, re-prove the mirror once more, then stop the engine gracefully."""
            extras.cancel()
            gateway.faults.disarm()
            gateway.config.tick_interval_s = 1e9  # freeze prices: nothing new triggers while we compare
            await trio.sleep(QUIESCE_S)
            with trio.move_on_after(FINAL_SYNC_TIMEOUT_S):
                for hub in engine.hubs():
                    await hub.wait_connected()
                if engine.reconciler is not None:
                    status("final reconciliation before the comparison")
                    await engine.reconciler.reconcile("manual")
                await caught_up(engine, gateway.snapshot, CATCH_UP_TIMEOUT_S)
            engine.stop()

        async with trio.open_nursery() as nursery:
            await nursery.start(side_show)
            nursery.start_soon(stop_on_signal_or_duration, engine, args.duration, nursery.cancel_scope, finish)
            try:
                await engine.run()
            finally:
                nursery.cancel_scope.cancel()

        truth = gateway.snapshot()
        final = engine.final_state or engine.snapshot()
        differences = state_differences(final, truth, engine.account_ids)
        summary = stats()
        sim_429 = app.statuses.get(429, 0)
        injected_429 = {client: app.rate_limited[(client, "injected")] for client in (ENGINE_CLIENT, "other")}
        if dashboard:
            console.print()
        lines = [*summary_lines(summary),
                 "Faults injected by kind: " + ", ".join(f"{kind} {n}" for kind, n in
                                                         kinds_injected(gateway.faults.log).items()),
                 f"429s answered by the simulator: {sim_429} (from its rate windows: to the engine "
                 f"{app.rate_limited[(ENGINE_CLIENT, 'window')]}, to the scripted trader "
                 f"{app.rate_limited[('other', 'window')]}; injected by chaos: to the engine "
                 f"{injected_429[ENGINE_CLIENT]}, to the scripted trader {injected_429['other']})",
                 f"429s the engine's limiter rode out (injected included): {engine.rate_limited_429()}",
                 f"Orders placed by the scripted trader: {trader.stats.orders_placed}",
                 "Final mirrored state equals the simulator's: "
                 + ("yes" if not differences else f"NO ({len(differences)} difference(s))")]
        lines += [f"  {d}" for d in differences[:20]]
        print("\n".join(["Summary", *(f"  {line}" for line in lines)]), flush=True)
        if args.state_out is not None:
            write_state(args.state_out, final)
        result["code"] = EXIT_MISMATCH if differences or summary.duplicate_orders else EXIT_OK
        sim_nursery.cancel_scope.cancel()


__all__ = ["EXIT_CONFIG", "StatusCounter", "run_simulated"]

