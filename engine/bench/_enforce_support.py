"""The simulator side of the enforcement-latency benchmark, run as its own process:
``python -m engine.bench._enforce_support --accounts N --limit L``.

Why a separate process: on a 2-core machine the simulator (hypercorn, the hub's encoder, the book) and the engine
must not share one interpreter, or every breach would wait for the other side's work and the figure would measure
their sum. Both timestamps are taken here, on this process's ``time.perf_counter``, so no clocks are compared:

- **event written**: :class:`Probe` wraps the simulator's ASGI app; for websocket scopes it wraps ``send`` and
  stamps the instant just before the frame carrying the breaching ``GatewayUserPosition`` (of the account being
  breached) is handed to hypercorn, i.e. written to the engine's socket;
- **close received**: for HTTP scopes it stamps the instant ``Position/closeContract`` reaches the app (request line
  and headers parsed by hypercorn, before the body is read), and reads the body to learn the account. The arrival of
  the engine's ``Position/searchOpen`` of that account (if it reads the position before it closes) is
  stamped the same way, to split the figure into "event -> decision and first request" and the rest.

A breach: a market order of ``limit + 1`` contracts placed straight through the book on a fresh account (each account
is breached once: after a breach the engine locks the account out until the daily reset, so a second breach there
would test the lockout path instead). The fill publishes order, trade, position and account events; the position
takes the account over ``maxContracts.total = limit``. The next breach starts once the close of this one arrived and
``--gap-ms`` passed (the engine finishes its follow-up reads meanwhile).

Protocol on stdin/stdout: ``READY <url> <user> <api key>`` once serving (the simulator's own credentials, never
logged); ``GO <count> <warmup>`` starts the breaches; ``RESULT <json>`` reports them; the process ends when its
stdin closes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import trio

from engine.bench._simproc import stop_process

CONTRACT = "CON.F.US.MES.Z26"
FIRST_ACCOUNT = 7001
USER, API_KEY = "bench-enforce", "bench-enforce-key"
CLOSE_PATH = "/api/Position/closeContract"
SEARCH_PATH = "/api/Position/searchOpen"
BREACH_TIMEOUT_S = 5.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


@dataclass
class Probe:
    """ASGI middleware stamping the breaching event's write and the close request's arrival (see the docstring)."""

    app: ASGIApp
    account: int | None = None
    """The account being breached now (None between breaches)."""
    written_at: float | None = None
    searched_at: float | None = None
    """When the engine's read of the account's positions (before its close) arrived: splits the latency."""
    closed_at: float | None = None
    closed: trio.Event = field(default_factory=trio.Event)
    stray_closes: int = 0

    def arm(self, account: int) -> None:
        self.account, self.written_at, self.searched_at, self.closed_at = account, None, None, None
        self.closed = trio.Event()

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, receive, self._watch_frames(send))
        elif scope["type"] == "http" and scope.get("path") in (CLOSE_PATH, SEARCH_PATH):
            arrived = time.perf_counter()
            body: list[bytes] = []

            async def reading() -> Message:
                message = await receive()
                if message.get("type") == "http.request":
                    body.append(bytes(message.get("body", b"")))
                return message

            await self.app(scope, reading, send)
            try:
                account = orjson.loads(b"".join(body)).get("accountId")
            except (orjson.JSONDecodeError, AttributeError):
                account = None
            current = account is not None and account == self.account
            if scope["path"] == SEARCH_PATH:
                if current and self.searched_at is None and self.written_at is not None:
                    self.searched_at = arrived
            elif current and self.closed_at is None:
                self.closed_at = arrived
                self.closed.set()
            else:
                self.stray_closes += 1
        else:
            await self.app(scope, receive, send)

    def _watch_frames(self, send: Callable[[Message], Awaitable[None]]) -> Callable[[Message], Awaitable[None]]:
        async def watching(message: Message) -> None:
            if message.get("type") == "websocket.send" and self.account is not None and self.written_at is None:
                now = time.perf_counter()
                text = message.get("text")
                if isinstance(text, str) and "GatewayUserPosition" in text and self._breaching(text):
                    self.written_at = now
            await send(message)

        return watching

    def _breaching(self, frame: str) -> bool:
        for record in frame.split("\x1e"):
            if "GatewayUserPosition" not in record:
                continue
            message = orjson.loads(record)
            for argument in message.get("arguments") or []:
                data = argument.get("data") if isinstance(argument, dict) else None
                if isinstance(data, dict) and data.get("accountId") == self.account and data.get("size", 0) > 0:
                    return True
        return False


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line.strip().decode()


async def _serve(args: argparse.Namespace) -> None:
    from engine.protocol.models import PlaceOrderRequest
    from simulator.app import build_app
    from simulator.config import AccountSpec, SimConfig
    from simulator.gateway import SimulatedGateway
    from simulator.server import serve

    accounts = [AccountSpec(FIRST_ACCOUNT + i, f"BREACH-{i + 1}", 50_000.0, user=USER) for i in range(args.accounts)]
    # real time: the engine's clock is the wall clock, and the simulator's tokens must not look expired to it
    gateway = SimulatedGateway(SimConfig(epoch=datetime.now(UTC), users={USER: API_KEY}, accounts=accounts,
                                         rate_limits=False, publish_market_data=False, tick_interval_s=3600.0))
    probe = Probe(build_app(gateway))
    stdin = trio.lowlevel.FdStream(os.dup(0))
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(lambda task_status: serve(gateway, app=probe, task_status=task_status))
        print(f"READY {url} {USER} {API_KEY}", flush=True)
        async for line in _lines(stdin):
            words = line.split()
            if not words or words[0] != "GO":
                continue
            count, warmup = int(words[1]), int(words[2])
            latencies: list[float] = []
            pre_reads: list[float] = []
            missed = 0
            for i in range(count + warmup):
                account = FIRST_ACCOUNT + i
                probe.arm(account)
                code, message, _ = gateway.book.place(PlaceOrderRequest(
                    account_id=account, contract_id=CONTRACT, type=2, side=0, size=args.limit + 1), USER)
                if code != 0:
                    raise SystemExit(f"placing the breaching order failed: {code} {message}")
                with trio.move_on_after(BREACH_TIMEOUT_S):
                    await probe.closed.wait()
                if probe.closed_at is None or probe.written_at is None:
                    missed += 1
                elif i >= warmup:
                    latencies.append(probe.closed_at - probe.written_at)
                    if probe.searched_at is not None:
                        pre_reads.append(probe.searched_at - probe.written_at)
                probe.account = None
                await trio.sleep(args.gap_ms / 1000)
            result = {"latencies_s": latencies, "to_pre_read_s": pre_reads, "missed": missed,
                      "stray_closes": probe.stray_closes}
            print("RESULT " + orjson.dumps(result).decode(), flush=True)
        nursery.cancel_scope.cancel()


@dataclass
class SimProcess:
    """The engine side's handle on the running simulator process."""

    process: trio.Process
    url: str
    user: str
    api_key: str = field(repr=False)
    _buffer: bytes = b""

    async def tell(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def read_line(self) -> str:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(1 << 20)
            if not chunk:
                raise RuntimeError("the simulator process exited early")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


@contextlib.asynccontextmanager
async def open_simulator(accounts: int, limit: int, gap_ms: float,
                         start_timeout_s: float = 120.0) -> AsyncIterator[SimProcess]:
    """Start the simulator process and wait for READY; stop it on exit."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "engine.bench._enforce_support", "--accounts", str(accounts), "--limit", str(limit),
         "--gap-ms", str(gap_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        handle = SimProcess(process, "", "", "")
        with trio.fail_after(start_timeout_s):
            words = (await handle.read_line()).split()
        if len(words) != 4 or words[0] != "READY":
            raise RuntimeError("the simulator process did not report READY")
        handle.url, handle.user, handle.api_key = words[1], words[2], words[3]
        yield handle
    finally:
        await stop_process(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench._enforce_support")
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--limit", type=int, default=1)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.limit < 1 or args.gap_ms < 0:
        parser.error("--accounts and --limit must be >= 1 and --gap-ms >= 0")
    trio.run(_serve, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
