"""The simulator side of the loopback benchmarks, run as its own process: ``python -m engine.bench._simproc MODE``.

Why a separate process: on a 2-core machine the simulator (hypercorn, the hub's encoder) and the engine must not share
one interpreter, or the benchmark would measure their sum. The measured process (the engine side) starts this one,
reads one ``READY ...`` line from its stdout and then drives it:

- ``events``: serves a simulated Gateway and pre-generates ``--count`` events of :func:`~engine.bench._support.
  user_event_mix` (same seed, so every run gets the identical stream). Each ``GO`` line on stdin starts one run: the
  events are published on the gateway's bus in chunks of ``--chunk``, closed-loop, keeping at most ``--window``
  events ahead of the consumer's progress (decimal counts written on stdin), so the hub never cuts the client off as
  a slow consumer and the rate is the consumer's sustained one. ``READY <url> <token>`` (a simulator token for the
  hub; never logged).
- ``orders``: serves a simulated Gateway with ``--accounts`` accounts holding ``--orders`` working limit orders
  each, placed directly through the book (rate limits off). ``READY <url> <user> <api key>`` (the simulator's own
  credentials). Faults are armed by the engine side over ``POST /_sim/faults``.

The process ends when its stdin closes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import trio

from engine.bench._support import ACCOUNTS, EPOCH, MixEvent, user_event_mix

CONTRACT = "CON.F.US.EP.Z26"


@dataclass
class SimProcess:
    """The engine side's handle on a running simulator process."""

    process: trio.Process
    ready: list[str]
    """The words of the READY line after ``READY`` (url first)."""

    @property
    def url(self) -> str:
        return self.ready[0]

    async def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")


async def stop_process(process: trio.Process, grace_s: float = 5.0) -> None:
    """End a simulator process (shielded, so it runs on cancellation too): close its stdin, which tells it to stop,
    give it ``grace_s`` to exit, then kill it."""
    with trio.CancelScope(shield=True):
        if process.stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await process.stdin.aclose()
        with trio.move_on_after(grace_s):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def open_simproc(mode: str, *options: str, start_timeout_s: float = 120.0) -> AsyncIterator[SimProcess]:
    """Start ``python -m engine.bench._simproc MODE OPTIONS`` and wait for its READY line; stop it on exit."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "engine.bench._simproc", mode, *options], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(start_timeout_s):
            while b"\n" not in buffer:
                chunk = await process.stdout.receive_some(65536)
                if not chunk:
                    raise RuntimeError(f"the simulator process ({mode}) exited before it was ready")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        words = line.split()
        if not words or words[0] != "READY":
            raise RuntimeError(f"the simulator process ({mode}) did not report READY")
        yield SimProcess(process, words[1:])
    finally:
        await stop_process(process)


async def _lines(stream: trio.abc.ReceiveStream) -> Any:
    buffer = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield [line.strip() for line in lines if line.strip()]


async def _events(args: argparse.Namespace) -> None:
    from simulator.app import build_app
    from simulator.bus import HubEvent
    from simulator.config import SimConfig
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve

    gateway = SimulatedGateway(SimConfig(epoch=EPOCH, publish_market_data=False, rate_limits=False))
    app = build_app(gateway)
    mix: list[MixEvent] = list(user_event_mix(args.count, accounts=ACCOUNTS, working=args.working, seed=args.seed))
    events = [HubEvent("user", e.target, e.arguments, account_id=e.account_id) for e in mix]
    stdin = trio.lowlevel.FdStream(os.dup(0))
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(lambda task_status: serve(gateway, app=app, task_status=task_status))
        token = gateway.tokens.issue(next(iter(gateway.config.users)))
        print(f"READY {url} {token}", flush=True)
        acked = 0
        running = False
        published = 0
        lines = _lines(stdin)
        while True:
            if running and published < len(events) and published - acked < args.window:
                end = min(published + args.chunk, len(events))
                for event in events[published:end]:
                    gateway.bus.publish(event)
                published = end
                await trio.lowlevel.checkpoint()
                continue
            try:
                batch = await lines.__anext__()
            except StopAsyncIteration:
                break
            for line in batch:
                if line == b"GO":
                    # the previous run's socket must be gone (the hub server offers no event for this)
                    while len(app.hubs.connections) != 1:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                    running, published, acked = True, 0, 0
                elif line.isdigit():
                    acked = int(line)
        nursery.cancel_scope.cancel()


async def _orders(args: argparse.Namespace) -> None:
    from engine.protocol.models import PlaceOrderRequest
    from simulator.app import build_app
    from simulator.config import AccountSpec, SimConfig
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve

    user, api_key = "bench-user", "bench-api-key"
    accounts = [AccountSpec(5001 + i, f"BENCH-{i + 1}", 50_000.0, user=user) for i in range(args.accounts)]
    gateway = SimulatedGateway(SimConfig(users={user: api_key}, accounts=accounts,  # real time: the engine's clock
                                         publish_market_data=False, rate_limits=False))
    stdin = trio.lowlevel.FdStream(os.dup(0))
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(lambda task_status: serve(gateway, app=build_app(gateway),
                                                                  task_status=task_status))
        start = gateway.markets[CONTRACT].quote.last
        for spec in accounts:
            for n in range(args.orders):
                if n % 10 == 0:
                    await trio.sleep(0.001)  # distinct creation times, as orders placed over a session have
                request = PlaceOrderRequest(account_id=spec.id, contract_id=CONTRACT, type=1, side=0, size=1,
                                            limit_price=start - 500 - 0.25 * (n % 400), custom_tag=f"b-{spec.id}-{n}")
                code, message, _ = gateway.book.place(request, user)
                if code != 0:
                    raise SystemExit(f"placing bench order failed: {code} {message}")
        gateway.book.work_all()
        print(f"READY {url} {user} {api_key}", flush=True)
        while await stdin.receive_some(4096):
            pass
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench._simproc")
    sub = parser.add_subparsers(dest="mode", required=True)
    events = sub.add_parser("events")
    events.add_argument("--count", type=int, required=True)
    events.add_argument("--working", type=int, default=20)
    events.add_argument("--seed", type=int, default=0)
    events.add_argument("--chunk", type=int, default=500)
    events.add_argument("--window", type=int, default=4000)
    orders = sub.add_parser("orders")
    orders.add_argument("--accounts", type=int, default=10)
    orders.add_argument("--orders", type=int, default=100)
    args = parser.parse_args(argv)
    trio.run(_events if args.mode == "events" else _orders, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
