"""``python -m engine order place|cancel``: run one order intent through the order manager and print its final outcome.

Why a command: the exactly-once path (customTag stored before sending, shielded request, verification of ambiguous
outcomes) is the same one the engine uses, so an operator can exercise it by hand, against the real Gateway
(credentials from ``TOPSTEPX_USERNAME`` / ``TOPSTEPX_API_KEY``, the store from ``database.url``) or, with
``--simulate``, against an in-process simulator (no account needed; a throw-away in-memory store).

Exit codes: 0 when the outcome is known (accepted, rejected, denied, absent), 3 when it could not be determined (the
intent stays unresolved in the store and the next start verifies it), 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
from pydantic import SecretStr

from engine.cli.config import add_config_arguments, report_config_error, settings_from_args
from engine.orders import IntentResult, OrderManager, PlaceIntent
from engine.protocol.enums import OrderSide, OrderType
from settings import ConfigError, EngineSettings

log = logging.getLogger(__name__)

EXIT_UNKNOWN = 3
SIDES = {"buy": OrderSide.BID, "sell": OrderSide.ASK}
TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP}
SIM_USER, SIM_KEY = "sim", "sim-key"  # the simulator's built-in user; not a real secret


@dataclass
class OrderSession:
    manager: OrderManager
    settings: EngineSettings
    simulated: bool


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--simulate", action="store_true",
                        help="run against an in-process simulated Gateway (no account needed)")
    add_config_arguments(parser)


@asynccontextmanager
async def open_order_session(settings: EngineSettings, *, simulate: bool) -> AsyncIterator[OrderSession]:
    """Client + store + running order manager (recovery done), against the Gateway or an in-process simulator."""
    from engine.gateway.client import GatewayClient
    from engine.store import open_store, open_store_from_settings

    async with trio.open_nursery() as nursery:
        if simulate:
            from simulator.app import build_app
            from simulator.config import SimConfig
            from simulator.gateway import SimulatedGateway
            from simulator.transport import SimulatorTransport

            gateway = SimulatedGateway(SimConfig(publish_market_data=False))
            await nursery.start(gateway.run)
            settings = settings.model_copy(update={
                "credentials": settings.credentials.model_copy(
                    update={"username": SIM_USER, "api_key": SecretStr(SIM_KEY)}),
            })
            client = GatewayClient.from_settings(settings, transport=SimulatorTransport(build_app(gateway)),
                                                 wall_clock=gateway.clock)
            store_cm = open_store("sqlite://")
        else:
            client = GatewayClient.from_settings(settings, token_store=_token_store(settings))
            gateway = None
            store_cm = open_store_from_settings(settings)
        async with client, store_cm as store:
            manager = OrderManager.from_settings(settings, client, store, wall_clock=client.clock)
            if gateway is not None:
                nursery.start_soon(_feed_simulated_events, gateway, manager)
            await nursery.start(manager.run)
            yield OrderSession(manager, settings, simulate)
            nursery.cancel_scope.cancel()


def _token_store(settings: EngineSettings) -> Any:
    from engine.auth.storage import open_token_store

    try:
        return open_token_store(settings)
    except Exception as exc:  # no encryption key configured: an in-memory token for this one command is fine
        log.info("token storage unavailable (%s): using an in-memory token", type(exc).__name__)
        return None


async def _feed_simulated_events(gateway: Any, manager: OrderManager) -> None:
    with gateway.bus.subscribe("user") as subscriber:
        while True:
            event = await subscriber.receive()
            manager.on_user_event(event.target, event.arguments)


def run_intent(args: argparse.Namespace, intent: Callable[[OrderManager], Awaitable[IntentResult]]) -> int:
    """Load the settings, run ``intent`` in a session, print the outcome; the exit code of the command."""
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        return report_config_error(exc)
    if not args.simulate and (settings.credentials.username is None or settings.credentials.api_key is None):
        print("no Gateway credentials: set TOPSTEPX_USERNAME and TOPSTEPX_API_KEY (or use --simulate)",
              file=sys.stderr)
        return 2

    async def main() -> IntentResult:
        async with open_order_session(settings, simulate=args.simulate) as session:
            return await intent(session.manager)

    try:
        result = trio.run(main)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_result(result, as_json=args.json)
    return 0 if result.known else EXIT_UNKNOWN


def print_result(result: IntentResult, *, as_json: bool) -> None:
    data = result.as_dict()
    if as_json:
        print(json.dumps(data, default=str, sort_keys=True))
        return
    parts = [f"{result.intent}: {result.kind.value}"]
    for key in ("order_id", "state", "filled_qty", "avg_price", "custom_tag", "code", "message", "reason"):
        if key in data:
            parts.append(f"{key}={data[key]}")
    print(" ".join(parts))


def _place(args: argparse.Namespace) -> int:
    order_type = TYPES[args.type]
    if order_type is OrderType.MARKET and args.price is not None:
        print("error: --price is not used with --type market", file=sys.stderr)
        return 2
    try:
        intent = PlaceIntent(
            args.account, args.contract, SIDES[args.side], args.size, order_type,
            limit_price=args.price if order_type is OrderType.LIMIT else None,
            stop_price=args.price if order_type is OrderType.STOP else None,
        )
    except ValueError as exc:
        print(f"error: {exc}".replace("price", "price (--price)", 1), file=sys.stderr)
        return 2
    return run_intent(args, lambda manager: manager.place(intent, key=args.key))


def _cancel(args: argparse.Namespace) -> int:
    return run_intent(args, lambda manager: manager.cancel(args.account, args.order, priority=args.priority))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("order", help="place or cancel one order through the exactly-once path",
                                   description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="order_action", metavar="ACTION", required=True)

    place = actions.add_parser("place", help="place one order and print its final outcome")
    place.add_argument("--account", type=int, required=True, help="account id")
    place.add_argument("--contract", required=True, help="contract id, e.g. CON.F.US.MES.Z26")
    place.add_argument("--side", choices=sorted(SIDES), required=True)
    place.add_argument("--size", type=int, required=True)
    place.add_argument("--type", choices=sorted(TYPES), default="market")
    place.add_argument("--price", type=float, default=None, help="limit price (limit) or stop price (stop)")
    place.add_argument("--key", default=None,
                       help="idempotency key: the same key never places twice on the account")
    add_session_arguments(place)
    place.set_defaults(handler=_place)

    cancel = actions.add_parser("cancel", help="cancel one order and print the outcome")
    cancel.add_argument("--account", type=int, required=True, help="account id")
    cancel.add_argument("--order", type=int, required=True, help="order id")
    cancel.add_argument("--priority", action="store_true", help="use the rate limiter's enforcement lane")
    add_session_arguments(cancel)
    cancel.set_defaults(handler=_cancel)
