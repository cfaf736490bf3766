"""``python -m engine simulate``: serve the simulated ProjectX Gateway (REST + both hubs) on one local port.

Why a CLI command: system tests, the ``run --simulate`` demo and anyone poking at the engine by hand need a gateway
that behaves like TopstepX (auth, rate windows, hubs, faults) without credentials or market hours. It prints the URLs
and credentials to configure a client with, then serves until Ctrl-C.

This is the one place in :mod:`engine` that imports :mod:`simulator` (the architecture's dependency rule).
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from typing import Any

import trio

DEFAULT_USER = "sim"
DEFAULT_API_KEY = "sim-key"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="serve the simulated ProjectX Gateway (REST + user/market hubs)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8700, help="TCP port (default 8700; 0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prices and faults (default 0)")
    parser.add_argument("--faults", default="none", metavar="PROFILE",
                        help="fault profile: none (default), flaky-network, chaos")
    parser.add_argument("--user", default=DEFAULT_USER, help=f"userName accepted by loginKey (default {DEFAULT_USER})")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY,
                        help=f"apiKey accepted by loginKey (default {DEFAULT_API_KEY})")
    parser.set_defaults(handler=run)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be within 0..65535, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from simulator.config import SimConfig, default_accounts
    from simulator.faults import PROFILES

    if args.faults not in PROFILES:
        print(f"unknown fault profile {args.faults!r}; known: {', '.join(sorted(PROFILES))}", file=sys.stderr)
        return 2
    config = SimConfig(
        seed=args.seed,
        users={args.user: args.api_key},
        accounts=[dataclasses.replace(account, user=args.user) for account in default_accounts()],
        fault_profile=args.faults,
    )
    try:
        trio.run(_serve, config, args.host, args.port)
    except KeyboardInterrupt:
        print("simulator stopped", flush=True)
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: Any, host: str, port: int) -> None:
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve

    gateway = SimulatedGateway(config)
    async with trio.open_nursery() as nursery:
        base: str = await nursery.start(lambda task_status: serve(gateway, host, port, task_status=task_status))
        user, api_key = next(iter(config.users.items()))
        accounts = ", ".join(str(a.id) for a in config.accounts)
        print(
            f"Simulated ProjectX Gateway (seed {config.seed}, faults {config.fault_profile})\n"
            f"  REST base URL : {base}\n"
            f"  User hub      : {base}/hubs/user\n"
            f"  Market hub    : {base}/hubs/market\n"
            f"  Credentials   : userName={user} apiKey={api_key}  (POST {base}/api/Auth/loginKey)\n"
            f"  Accounts      : {accounts}\n"
            f"  Test control  : {base}/_sim/state\n"
            "Serving until Ctrl-C.",
            flush=True,
        )
        # Ctrl-C and SIGTERM both end the run cleanly (a background shell job starts with SIGINT ignored).
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"simulator stopping ({signal.Signals(signum).name})", flush=True)
                nursery.cancel_scope.cancel()
                break
